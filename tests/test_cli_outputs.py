"""Files the user already has are not replaced by a command's outputs without --overwrite."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei import cli


def one_line_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("command", [
    ["convert", SAMPLE_DATA / "train"],
    ["export", "--labels", SAMPLE_DATA, "--images", SAMPLE_DATA / "test"],
    ["evaluate", "--gt", SAMPLE_DATA / "test_gt", "--pred", SAMPLE_DATA / "x.json"],
    ["predict", "--model", SAMPLE_DATA / "no_run", "--images", SAMPLE_DATA / "test"],
])
def test_an_existing_output_file_is_kept(tmp_path, capsys, command):
    mine = tmp_path / "mine.json"
    mine.write_text("precious")
    assert cli.main([str(a) for a in command] + ["-o", str(mine)]) == 2
    assert one_line_error(capsys).endswith("mine.json: exists: use --overwrite to replace "
                                           "it, or another -o (nothing was changed)")
    assert mine.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json"]


def test_overwrite_replaces_it(tmp_path, capsys):
    mine = tmp_path / "mine.json"
    mine.write_text("precious")
    assert cli.main(["convert", str(SAMPLE_DATA / "train"), "-o", str(mine), "-q",
                     "--overwrite"]) == 0
    assert mine.read_text().startswith("{")
    assert cli.main(["convert", str(SAMPLE_DATA / "train"), "-o", str(tmp_path), "-q"]) == 2
    assert "is a folder: -o wants the file to write" in one_line_error(capsys)


def test_predict_keeps_corrected_labels_and_tables(tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "fluo_r1c1.tif").write_bytes(b"corrected in napari")
    args = ["predict", "--model", str(tmp_path / "no_run"), "--images",
            str(SAMPLE_DATA / "test"), "-o", str(tmp_path / "sub.json")]
    assert cli.main([*args, "--labels-dir", str(labels)]) == 2
    assert "fluo_r1c1.tif: exists: use --overwrite" in one_line_error(capsys)
    assert (labels / "fluo_r1c1.tif").read_bytes() == b"corrected in napari"
    table = tmp_path / "nuclei.csv"
    table.write_text("mine")
    assert cli.main([*args, "--measurements", str(table)]) == 2
    assert "nuclei.csv: exists" in one_line_error(capsys)
    # With --overwrite the check lets the command go on (here to the missing model).
    assert cli.main([*args, "--labels-dir", str(labels), "--overwrite"]) == 2
    assert "no_run" in one_line_error(capsys)
    assert not (tmp_path / "sub.json").exists()
