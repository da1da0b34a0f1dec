import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLE_DATA, disk, write_dsb_sample, write_png
from napari_nuclei.cli import main
from napari_nuclei.core.convert import convert_dataset
from napari_nuclei.core.dataset import open_dataset


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "napari_nuclei.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def assert_clean_failure(capsys, argv, fragment, named, output):
    """Exit status 2, one line naming the file and the problem, no output file."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert fragment in err[0] and str(named) in err[0]
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*"))  # no temp file left either


def test_convert_sample_data(tmp_path, capsys):
    out = tmp_path / "ann.json"
    assert main(["convert", str(SAMPLE_DATA), "-o", str(out), "-q"]) == 0
    assert "3 images, 108 nuclei" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["annotations"]) == 108


def test_missing_images_folder(dsb_root, tmp_path, capsys):
    (dsb_root / "train" / "zz" / "masks").mkdir(parents=True)
    out = tmp_path / "out" / "a.json"
    assert_clean_failure(capsys, ["convert", str(dsb_root), "-o", str(out)],
                         "missing images/ folder", dsb_root / "train" / "zz", out)


def test_truncated_mask(dsb_root, tmp_path, capsys):
    mask = dsb_root / "train" / "b_img" / "masks" / "m002.png"
    data = mask.read_bytes()
    mask.write_bytes(data[: len(data) - 30])
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(dsb_root), "-o", str(out), "-q"],
                         "truncated PNG", mask, out)


def test_unreadable_image(dsb_root, tmp_path, capsys):
    image = dsb_root / "train" / "c_img" / "images" / "c_img.png"
    image.write_bytes(b"this is not a png")
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(dsb_root), "-o", str(out), "-q"],
                         "not a PNG file", image, out)


def test_mask_size_differs(dsb_root, tmp_path, capsys):
    mask = dsb_root / "train" / "a_img" / "masks" / "m003.png"
    write_png(mask, np.full((64, 81), 255, np.uint8))
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(dsb_root), "-o", str(out), "-q"],
                         "size 64x81 differs from its image a_img.png (64x80)", mask, out)


def test_id_without_image(dsb_root, tmp_path, capsys):
    image = dsb_root / "train" / "a_img" / "images" / "a_img.png"
    image.unlink()
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(dsb_root), "-o", str(out)],
                         "image file missing", image, out)


def test_test_ids_not_json(test_folder, tmp_path, capsys):
    ids = test_folder / "test_img_ids.json"
    ids.write_text('[{"id": 1,')
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(test_folder), "-o", str(out)],
                         "not valid JSON", ids, out)


def test_test_ids_do_not_match_folder(test_folder, tmp_path, capsys):
    write_png(test_folder / "extra.png", np.zeros((5, 5), np.uint8))
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(test_folder), "-o", str(out)],
                         "does not list 1 image(s) of the folder: extra.png",
                         test_folder / "test_img_ids.json", out)


def test_test_ids_declare_wrong_size(test_folder, tmp_path, capsys):
    ids = json.loads((test_folder / "test_img_ids.json").read_text())
    ids[0]["height"] = 51
    (test_folder / "test_img_ids.json").write_text(json.dumps(ids))
    out = tmp_path / "a.json"
    assert_clean_failure(capsys, ["convert", str(test_folder), "-o", str(out), "-q"],
                         "entry 0: declares y.png as 51x20", test_folder / "test_img_ids.json",
                         out)


def test_existing_output_survives_a_failed_run(dsb_root, tmp_path, capsys):
    out = tmp_path / "a.json"
    out.write_text("previous result")
    (dsb_root / "train" / "a_img" / "images" / "a_img.png").write_bytes(b"")
    assert main(["convert", str(dsb_root), "-o", str(out), "-q"]) == 2
    assert out.read_text() == "previous result"


def test_warnings_are_printed_and_conversion_goes_on(tmp_path, capsys):
    shape = (30, 30)
    write_dsb_sample(tmp_path / "data" / "train", "s", np.zeros(shape, np.uint8),
                     [disk(shape, (10, 10), 5), disk(shape, (12, 12), 5), np.zeros(shape, bool)])
    out = tmp_path / "a.json"
    assert main(["convert", str(tmp_path / "data"), "-o", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 empty mask(s) skipped" in err
    assert "warning: 1 mask(s) overlap another nucleus" in err
    assert len(json.loads(out.read_text())["annotations"]) == 2


def test_stopping_a_conversion_leaves_no_output(dsb_root, tmp_path):
    out = tmp_path / "a.json"

    def stop_after_first(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_dataset(open_dataset(dsb_root), out, on_progress=stop_after_first)
    assert list(tmp_path.iterdir()) == [dsb_root]


def test_console_script_reports_without_traceback(tmp_path):
    result = run_cli("convert", tmp_path / "nowhere", "-o", tmp_path / "a.json")
    assert result.returncode == 2
    assert result.stderr.strip() == f"napari-nuclei: error: {tmp_path / 'nowhere'}: no such " \
                                    "file or folder"


@pytest.mark.parametrize("command", [[], ["convert"], ["info"]])
def test_help(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: napari-nuclei" in result.stdout


def test_info_lists_what_a_bug_report_needs():
    result = run_cli("info")
    assert result.returncode == 0
    for key in ("Python", "torch", "CUDA available", "detectron2", "napari", "Qt binding",
                "pycocotools"):
        assert key in result.stdout
    assert "detectron2-dist" in result.stdout or "site-packages" in result.stdout
