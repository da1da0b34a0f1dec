"""Worker and thread counts are bounded by the machine, checked before any work."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.cli import main
from napari_nuclei.core.errors import OptionError
from napari_nuclei.core.jobs import usable_cores


@pytest.mark.parametrize("argv", [
    ["convert", str(SAMPLE_DATA), "--workers", "0"],
    ["convert", str(SAMPLE_DATA), "--workers", "-3"],
    ["convert", str(SAMPLE_DATA), "--workers", "100000"],
    ["train", "--data", str(SAMPLE_DATA), "--workers", "100000"],
    ["predict-slide", "x.tif", "--model", "m", "--workers", "100000"],
    ["predict-slide", "x.tif", "--model", "m", "--threads", "0"],
])
def test_counts_beyond_the_machine_are_refused_by_the_parser(argv, tmp_path, capsys):
    out = ["-o", str(tmp_path / "out.json")] if argv[0] != "train" else [
        "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as stopped:
        main(argv + out)
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(err) == 1, err
    assert f"to {usable_cores()}, got" in err[0], err[0]
    assert not any(tmp_path.iterdir())


def test_the_core_refuses_what_the_parser_would(tmp_path):
    from napari_nuclei.core.convert import convert_dataset
    from napari_nuclei.core.dataset import open_dataset

    dataset = open_dataset(SAMPLE_DATA)
    for workers in (0, -1, usable_cores() + 1):
        with pytest.raises(OptionError, match="workers"):
            convert_dataset(dataset, tmp_path / "a.json", workers=workers)
    assert not (tmp_path / "a.json").exists()
    convert_dataset(dataset, tmp_path / "a.json", workers=usable_cores())
    assert (tmp_path / "a.json").is_file()
