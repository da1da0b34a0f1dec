"""Prediction: box-only pasting, tiles and stitching, label images, the CLI round trip."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import SAMPLE_DATA, disk
from napari_nuclei.core.models import RawDetections
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.core.predict.paste import paste_in_box
from napari_nuclei.core.predict.predictor import predict_image
from napari_nuclei.core.predict.tiles import regular_grid

CLI = [sys.executable, "-m", "napari_nuclei.cli"]


def cli(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_paste_in_box_matches_detectron2_paste_masks_in_image():
    from detectron2.layers.mask_ops import paste_masks_in_image

    generator = torch.Generator().manual_seed(0)
    height, width = 90, 120
    probs = torch.rand((12, 28, 28), generator=generator)
    xy = torch.rand((12, 2), generator=generator) * torch.tensor([100.0, 70.0])
    wh = 3 + torch.rand((12, 2), generator=generator) * 30
    boxes = torch.cat([xy, (xy + wh).clamp(max=torch.tensor([width, height]))], dim=1)
    boxes[0] = torch.tensor([0.0, 0.0, 25.3, 17.8])  # touching the frame
    full = paste_masks_in_image(probs, boxes, (height, width), threshold=0.5).numpy()
    for i in range(len(boxes)):
        top, left, crop = paste_in_box(probs[i], boxes[i].tolist(), height, width)
        ours = np.zeros((height, width), bool)
        ours[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        np.testing.assert_array_equal(ours, full[i])


def test_cores_of_the_regular_grid_partition_the_image():
    tiles = regular_grid(700, 530, 256, 64)
    owner = np.zeros((700, 530), np.int32)
    yy, xx = np.mgrid[:700, :530] + 0.5
    for tile in tiles:
        y0, x0, y1, x1 = tile.core
        owner += (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)
        # Each window is its core grown by half the overlap, within the image.
        assert (tile.top, tile.left) == (max(0, y0 - 32), max(0, x0 - 32))
        assert (tile.bottom, tile.right) == (min(700, y1 + 32), min(530, x1 + 32))
    assert (owner == 1).all()


class OracleModel:
    """Stands in for the network: 'detects' every nucleus visible in the pixels it is
    given, exactly as far as it is visible (cut off at the tile border)."""

    min_size_test = 256
    max_size_test = 256
    detections_per_image = 1000
    score_thresh = None
    weights = None
    device = "cpu"
    classes = ClassSet.default()

    def __init__(self, labels):
        self.labels = labels
        self.calls = []

    def resize_scale(self, height, width):
        return min(256 / min(height, width), 256 / max(height, width))

    def detect_down_to(self, score):
        pass

    def infer_batch(self, images, resize=True):
        return [self.infer(image, resize) for image in images]

    def infer(self, bgr, resize=True):
        assert not resize
        # Find which tile we were given by matching its pixels against the image.
        top, left = self._locate(bgr)
        self.calls.append((top, left))
        window = self.labels[top : top + bgr.shape[0], left : left + bgr.shape[1]]
        boxes, probs = [], []
        for value in np.unique(window)[1:]:
            ys, xs = np.nonzero(window == value)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            crop = torch.from_numpy((window[y0:y1, x0:x1] == value).astype(np.float32))
            probs.append(torch.nn.functional.interpolate(crop[None, None], (28, 28),
                                                         mode="nearest")[0, 0])
            boxes.append((x0, y0, x1, y1))
        return RawDetections(np.asarray(boxes, np.float32).reshape(-1, 4),
                             np.linspace(0.99, 0.5, len(boxes)).astype(np.float32),
                             torch.stack(probs) if probs else torch.zeros((0, 28, 28)), False)

    def _locate(self, bgr):
        channels = bgr.astype(np.int64)
        marker = channels[:, :, 0] + 256 * channels[:, :, 1] + 65536 * channels[:, :, 2]
        return int(marker[0, 0]) // 1000, int(marker[0, 0]) % 1000


def test_tiled_prediction_finds_a_nucleus_across_a_tile_border_once_and_whole():
    size = 600  # more than twice the 256-pixel input size
    labels = np.zeros((size, size), np.int32)
    centres = [(40, 40), (300, 300), (128, 200), (200, 128), (450, 520), (560, 90)]
    tiles = regular_grid(size, size, 256, 64)
    # Put one nucleus right on the first inner tile border of each axis.
    border_x, border_y = tiles[0].right - 1, tiles[0].bottom - 1
    centres += [(100, border_x), (border_y, 60), (border_y, border_x)]
    for value, centre in enumerate(centres, start=1):
        labels[disk(labels.shape, centre, 14)] = value
    # Encode each pixel's position in the image so the oracle knows which tile it sees.
    yy, xx = np.mgrid[:size, :size]
    code = yy * 1000 + xx
    image = np.stack([code % 256, code // 256 % 256, code // 65536], axis=2)
    model = OracleModel(labels)
    prediction = predict_image(model, image[:, :, ::-1].astype(np.uint8).copy(),
                               tile_size=256, overlap=64)
    assert len(model.calls) == len(tiles) > 4
    assert len(prediction) == len(centres)
    found = prediction.labels()
    for value in range(1, len(centres) + 1):
        truth = labels == value
        hits = np.unique(found[truth & (found > 0)])
        assert len(hits) == 1, f"nucleus {value} split or missed"
        iou = (truth & (found == hits[0])).sum() / (truth | (found == hits[0])).sum()
        assert iou > 0.9, f"nucleus {value} not whole (IoU {iou:.2f})"


def _position_coded_image(size):
    yy, xx = np.mgrid[:size, :size]
    code = yy * 1000 + xx
    image = np.stack([code % 256, code // 256 % 256, code // 65536], axis=2)
    return image[:, :, ::-1].astype(np.uint8).copy()


def test_nucleus_wider_than_the_overlap_is_kept_once_whole_and_counted():
    size, overlap = 704, 32  # three tiles a side, overlapping by exactly 32 pixels
    tiles = regular_grid(size, size, 256, overlap)
    assert tiles[0].right - tiles[1].left == overlap
    border_x = tiles[0].right - overlap // 2  # the middle of the first vertical overlap
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.ogrid[:size, :size]
    # Two ellipses wider than the overlap across the border (each tile sees a part of
    # them) and a small nucleus.
    labels[((yy - 100) / 18.0) ** 2 + ((xx - border_x) / 45.0) ** 2 <= 1] = 1
    labels[disk(labels.shape, (300, 120), 10)] = 2
    labels[((yy - 420) / 15.0) ** 2 + ((xx - border_x) / 40.0) ** 2 <= 1] = 3
    model = OracleModel(labels)
    prediction = predict_image(model, _position_coded_image(size), tile_size=256,
                               overlap=overlap)
    assert len(prediction) == 3
    assert prediction.wider_than_overlap == 2
    found = prediction.labels()
    for value in (1, 2, 3):
        truth = labels == value
        hits = np.unique(found[truth & (found > 0)])
        assert len(hits) == 1, f"nucleus {value} split or missed"
        iou = (truth & (found == hits[0])).sum() / (truth | (found == hits[0])).sum()
        assert iou > 0.9, f"nucleus {value} not whole (IoU {iou:.2f})"


def test_overlap_follows_the_largest_training_nucleus(tmp_path):
    from napari_nuclei.core.predict.overlap import largest_training_nucleus, overlap_for

    assert largest_training_nucleus(tmp_path) is None
    assert overlap_for(None, 1000) == 124  # an eighth of the tile without a size
    (tmp_path / "train_annotations.json").write_text(json.dumps(
        {"annotations": [{"bbox": [0, 0, 30, 12]}, {"bbox": [5, 5, 8, 41.5]}]}))
    assert largest_training_nucleus(tmp_path) == 42
    (tmp_path / "settings.json").write_text(json.dumps({"largest_nucleus_px": 50}))
    assert largest_training_nucleus(tmp_path) == 50
    assert overlap_for(50, 1000) == 66
    assert overlap_for(400, 256) == 128  # at most half the tile


def test_prediction_label_image_lets_the_higher_score_win():
    low = (5, 5, np.ones((10, 10), bool))
    high = (10, 10, np.ones((10, 10), bool))
    prediction = Prediction.from_unsorted(30, 30, [0.4, 0.9], [low, high])
    labels = prediction.labels()
    assert labels[12, 12] == 1  # overlap: label 1 is the 0.9 nucleus
    assert labels[6, 6] == 2
    features = prediction.features()
    assert list(features["score"]) == pytest.approx([0.9, 0.4])
    assert list(features["area"]) == [100, 100]
    assert len(prediction.above(0.5)) == 1


@pytest.fixture(scope="module")
def predicted(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict")
    result = cli("predict", "--model", tiny_run[0], "--images", SAMPLE_DATA / "test",
                 "-o", out / "submission.json", "--labels-dir", out / "labels", "-q")
    assert result.returncode == 0, result.stderr
    return out


def test_submission_loads_and_scores_like_evaluate(predicted, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_json = tmp_path / "gt.json"
    assert cli("convert", SAMPLE_DATA / "test_gt", "-o", gt_json, "-q").returncode == 0
    submission = json.loads((predicted / "submission.json").read_text())
    assert {d["image_id"] for d in submission} == {1, 2}  # ids from test_img_ids.json
    assert all(d["category_id"] == 1 and 0 <= d["score"] <= 1 for d in submission)
    result = cli("evaluate", "--gt", gt_json, "--pred", predicted / "submission.json",
                 "-o", tmp_path / "metrics.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_json))
        scored = [d for d in submission if d["image_id"] in coco_gt.getImgIds()]
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(scored), "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert metrics["overall"]["AP"] == evaluator.stats[0]
    assert f"{evaluator.stats[0]:.4f}" in result.stdout
    for key in ("AJI", "F1", "PQ", "AP@cap", "precision", "recall"):
        assert 0 <= metrics["overall"][key] <= 1
    assert metrics["overall"]["AP50"] > 0.05  # the tiny model finds some nuclei


def test_label_images_export_back_to_a_valid_submission(predicted, tmp_path):
    import tifffile

    labels = tifffile.imread(predicted / "labels" / "fluo_r1c1.tif")
    assert labels.dtype == np.int32 and labels.shape == (256, 256) and labels.max() > 0
    # A hand correction: delete nucleus 1, draw a new one.
    labels[labels == 1] = 0
    labels[200:215, 10:25] = 10_000  # a label the score table does not know
    tifffile.imwrite(predicted / "labels" / "fluo_r1c1.tif", labels)
    out = tmp_path / "corrected.json"
    result = cli("export", "--labels", predicted / "labels", "--images", SAMPLE_DATA / "test",
                 "--submission", "-o", out)
    assert result.returncode == 0, result.stderr
    entries = json.loads(out.read_text())
    first = [e for e in entries if e["image_id"] == 1]
    assert len(first) == len(np.unique(labels)) - 1
    assert max(e["score"] for e in first) == 1.0  # the hand-drawn nucleus
    coco = tmp_path / "corrected_coco.json"
    assert cli("export", "--labels", predicted / "labels", "--images", SAMPLE_DATA / "test",
               "-o", coco).returncode == 0
    assert len(json.loads(coco.read_text())["images"]) == 2


def test_detection_cap_is_warned(tiny_run, tmp_path):
    result = cli("predict", "--model", tiny_run[0], "--images", SAMPLE_DATA / "test" /
                 "fluo_r1c1.png", "-o", tmp_path / "s.json", "--max-dets", "5", "-q")
    assert result.returncode == 0, result.stderr
    assert "reached the detection cap (5)" in result.stderr
    # Five detections; one hidden entirely by better-scoring ones is not a nucleus shown.
    assert 1 <= len(json.loads((tmp_path / "s.json").read_text())) <= 5


def test_missing_model_is_one_clear_line(tmp_path):
    result = cli("predict", "--model", tmp_path / "nope", "--images", SAMPLE_DATA / "test",
                 "-o", tmp_path / "s.json")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nope" in result.stderr
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("change, problem", [
    (lambda e: e.update(bbox=[0, 0, 1, 1]), "does not match its mask's box"),
    (lambda e: e.update(score=1.5), "not in [0, 1]"),
    (lambda e: e.update(image_id=99), "not a known image"),
    (lambda e: e["segmentation"].update(size=[10, 10]), "differs from the image"),
])
def test_validator_rejects_malformed_entries(tmp_path, change, problem):
    from napari_nuclei.core.errors import InputError
    from napari_nuclei.core.rle import encode_mask
    from napari_nuclei.core.submission import submission_entries, write_submission

    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:12] = True
    entries = submission_entries(1, [encode_mask(mask)], [0.8])
    change(entries[0])
    out = tmp_path / "s.json"
    with pytest.raises(InputError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        write_submission(out, entries, {1: (20, 30)})
    assert not out.exists()


def test_image_entries_are_the_shown_nuclei_or_the_corrections():
    from pycocotools import mask as maskUtils

    from napari_nuclei.core.export import image_entries

    first = (2, 2, np.ones((6, 6), bool))
    second = (4, 4, np.ones((6, 6), bool))  # overlaps the first
    prediction = Prediction.from_unsorted(20, 20, [0.9, 0.6], [first, second])
    labels = prediction.labels()
    untouched = image_entries(7, prediction, 0.5)
    assert [e["score"] for e in untouched] == pytest.approx([0.9, 0.6])
    # The second keeps what the first left of it: an L within the same box.
    assert [e["bbox"] for e in untouched] == [[2, 2, 6, 6], [4, 4, 6, 6]]
    assert sum(maskUtils.area([e["segmentation"] for e in untouched])) == 36 + 36 - 16
    assert len(image_entries(7, prediction, 0.7)) == 1
    edited = labels.copy()
    edited[edited == 2] = 0
    edited[15:18, 15:18] = 9
    corrected = image_entries(7, prediction, 0.5, edited, {1: 0.9, 2: 0.6})
    assert [e["score"] for e in corrected] == pytest.approx([1.0, 0.9])
    assert all(e["image_id"] == 7 for e in corrected)
