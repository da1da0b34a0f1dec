"""Metrics on hand-built cases with known answers, and AP equal to pycocotools' own."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from napari_nuclei.core.coco import labels_to_coco
from napari_nuclei.core.labels import iter_label_rles
from napari_nuclei.core.metrics import coco_mask_ap, evaluate, match_labels
from napari_nuclei.core.submission import submission_entries


def squares(shape=(60, 80), size=10, count=6):
    """A label image with ``count`` separate squares, labels 1..count."""
    labels = np.zeros(shape, np.int32)
    for i in range(count):
        top, left = 5 + (i // 3) * 25, 5 + (i % 3) * 25
        labels[top : top + size, left : left + size] = i + 1
    return labels


def as_submission(labels, image_id=1, scores=None):
    rles = [rle for _, rle in iter_label_rles(labels)]
    scores = scores if scores is not None else [0.9] * len(rles)
    return submission_entries(image_id, rles, scores)


def test_perfect_prediction_scores_one():
    gt = squares()
    counts = match_labels(gt, gt).scores()
    assert counts == {"AJI": 1.0, "precision": 1.0, "recall": 1.0, "F1": 1.0, "PQ": 1.0}
    result = evaluate(labels_to_coco(gt, "a.png"), as_submission(gt))
    for key in ("AP", "AP50", "AP75", "AP@cap", "AJI", "F1", "PQ"):
        assert result["overall"][key] == pytest.approx(1.0), key


def test_one_missed_nucleus():
    gt = squares()
    pred = gt.copy()
    pred[pred == 6] = 0
    scores = match_labels(gt, pred).scores()
    assert scores["precision"] == 1.0
    assert scores["recall"] == pytest.approx(5 / 6)
    assert scores["F1"] == pytest.approx(5 / 5.5)
    assert scores["PQ"] == pytest.approx(5 / 5.5)
    assert scores["AJI"] == pytest.approx(500 / 600)  # the missed one adds its area to U


def test_one_split_nucleus():
    gt = squares()
    pred = gt.copy()
    block = pred[5:15, 5:15]
    block[:, 6:] = 7  # nucleus 1 split 60/40 into labels 1 and 7
    scores = match_labels(gt, pred).scores()
    # The 60% part still matches (IoU 0.6 > 0.5); the 40% part is a false positive.
    assert scores["precision"] == pytest.approx(6 / 7)
    assert scores["recall"] == 1.0
    assert scores["PQ"] == pytest.approx((5 + 0.6) / (6 + 0.5))
    # AJI: nucleus 1 pairs with the 60-pixel part (C += 60, U += 100); the unused
    # 40-pixel part is added to the union once more: C = 500 + 60, U = 600 + 40.
    assert scores["AJI"] == pytest.approx(560 / 640)


def test_one_merged_pair():
    gt = np.zeros((30, 40), np.int32)
    gt[5:15, 5:15] = 1
    gt[5:15, 15:25] = 2
    pred = (gt > 0).astype(np.int32)  # one prediction covering both
    scores = match_labels(gt, pred).scores()
    # IoU of each with the merged prediction is exactly 0.5: not a match.
    assert (scores["precision"], scores["recall"], scores["F1"], scores["PQ"]) == (0, 0, 0, 0)
    # Both nuclei pair with the merged prediction: C = 100 + 100, U = 200 + 200.
    assert scores["AJI"] == pytest.approx(0.5)


def test_ap_equals_pycocotools_cocoeval(tmp_path):
    rng = np.random.default_rng(0)
    gt_labels = squares(count=6)
    pred = gt_labels.copy()
    pred[5:15, 5:10] = 0  # half of nucleus 1
    pred[40:50, 55:65] = 9  # a false positive
    gt = labels_to_coco(gt_labels, "a.png")
    dets = as_submission(pred, scores=list(rng.uniform(0.2, 1.0, 7)))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        stock = COCOeval(coco_gt, coco_gt.loadRes(dets), "segm")
        stock.evaluate()
        stock.accumulate()
        stock.summarize()
    ours = coco_mask_ap(gt, dets)
    assert [ours["AP"], ours["AP50"], ours["AP75"]] == list(stock.stats[:3])


def test_raised_cap_counts_nuclei_the_stock_cap_ignores():
    # 150 nuclei, all found: the stock COCOeval only looks at the 100 best-scoring.
    labels = np.zeros((150, 200), np.int32)
    for i in range(150):
        row, col = divmod(i, 15)
        labels[row * 15 + 2 : row * 15 + 10, col * 13 + 2 : col * 13 + 10] = i + 1
    gt = labels_to_coco(labels, "dense.png")
    dets = as_submission(labels, scores=list(np.linspace(1.0, 0.5, 150)))
    result = evaluate(gt, dets)
    assert result["max_dets"] > 150
    assert result["overall"]["AP@cap"] == pytest.approx(1.0)
    assert result["overall"]["AP"] < 0.7


def test_raised_cap_equals_stock_when_under_100_detections():
    gt_labels = squares(count=6)
    pred = gt_labels.copy()
    pred[5:15, 5:10] = 0
    dets = as_submission(pred, scores=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    gt = labels_to_coco(gt_labels, "a.png")
    stock = coco_mask_ap(gt, dets)
    assert coco_mask_ap(gt, dets, max_dets=500) == pytest.approx(stock)
