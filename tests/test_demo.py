"""``napari-nuclei demo`` end to end, with few iterations: every file it promises."""

import json
import re
import subprocess
import sys

import cv2
import pytest
from pycocotools.coco import COCO

pytestmark = [pytest.mark.slow, pytest.mark.gui]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("detectron2")
    out = tmp_path_factory.mktemp("demo") / "demo_output"
    result = subprocess.run([sys.executable, "-m", "napari_nuclei.cli", "demo", "--out",
                             str(out), "--iters", "20"], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return out, result.stdout


def test_every_file_is_written(demo):
    out, _ = demo
    for name in ("annotations.json", "submission.json", "metrics.json",
                 "corrected_labels.json", "loss.png", "overlay_fluo_r1c1.png",
                 "overlay_he_tile_1000.png", "napari.png", "run/model_final.pth",
                 "run/metrics.jsonl", "run/config.yaml", "labels/he_tile_1000.tif"):
        assert (out / name).is_file(), name


def test_json_files_are_valid(demo):
    out, _ = demo
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.getImgIds()) == 3 and len(coco.getAnnIds()) == 108
    submission = json.loads((out / "submission.json").read_text())
    assert {e["image_id"] for e in submission} <= {1, 2} and submission
    assert all(set(e) == {"image_id", "category_id", "bbox", "score", "segmentation"}
               for e in submission)
    corrected = json.loads((out / "corrected_labels.json").read_text())
    assert len(corrected["images"]) == 2


def test_pictures_have_their_sizes(demo):
    out, _ = demo
    sizes = {name: cv2.imread(str(out / name)).shape for name in
             ("loss.png", "overlay_fluo_r1c1.png", "overlay_he_tile_1000.png", "napari.png")}
    assert sizes["loss.png"][:2] == (600, 800)
    assert sizes["overlay_he_tile_1000.png"][:2] == (1000, 1000)
    assert min(sizes["overlay_fluo_r1c1.png"][:2]) >= 768  # the 256 tile, enlarged
    assert sizes["napari.png"][0] >= 800 and sizes["napari.png"][1] >= 1200


def test_summary_equals_metrics_json(demo):
    out, stdout = demo
    metrics = json.loads((out / "metrics.json").read_text())
    overall = metrics["overall"]
    for key in ("AP", "AP50", "AP75", "AP@cap", "AJI", "precision", "recall", "F1", "PQ"):
        assert 0.0 <= overall[key] <= 1.0, key
    assert "fluo_r1c1/images/fluo_r1c1.png" in metrics["per_image"]
    summary = re.search(r"summary \((.*)\)", stdout).group(1)
    for pair in summary.split(", "):
        key, value = pair.split("=")
        assert float(value) == pytest.approx(overall[key], abs=5e-5), key
