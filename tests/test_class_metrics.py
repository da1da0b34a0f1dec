"""Scores per nucleus class (AP, PQ, F_c per class, mPQ, bPQ) on generated discs with
hand-computed answers, and the one-class report left exactly as it was."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import disk
from napari_nuclei.cli import main
from napari_nuclei.core.coco import coco_document, make_annotation
from napari_nuclei.core.metrics import evaluate
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.rle import encode_mask
from napari_nuclei.core.submission import submission_entries
from napari_nuclei.core.validate.fields import InvalidValue
from napari_nuclei.core.validate.schemas import check_detection

SHAPE = (64, 96)
# Category ids neither 1 nor in name order, so that ids and names must be kept apart.
CATEGORIES = [{"id": 7, "name": "tumor"}, {"id": 3, "name": "lymphocyte"},
              {"id": 5, "name": "stroma"}]
TUMOR, LYMPHOCYTE, STROMA = 7, 3, 5
# Centres of a 3 x 5 grid of non-touching discs of radius 6.
CELLS = [(12 + 20 * row, 12 + 18 * col) for row in range(3) for col in range(5)]


def nucleus(cell: int, shift: int = 0, radius: int = 6) -> dict:
    row, col = CELLS[cell]
    return encode_mask(disk(SHAPE, (row, col + shift), radius))


def document(gt: dict[int, list[tuple[int, int]]], categories=CATEGORIES) -> dict:
    """``{image_id: [(cell, category_id), ...]}`` as a COCO ground truth."""
    images = [{"id": i, "file_name": f"img{i}.png", "height": SHAPE[0], "width": SHAPE[1]}
              for i in sorted(gt)]
    annotations = []
    for image_id, nuclei in sorted(gt.items()):
        for cell, category in nuclei:
            annotations.append(make_annotation(len(annotations) + 1, image_id, nucleus(cell),
                                               category))
    classes = ClassSet.from_categories(categories)
    return coco_document(images, annotations, classes)


def submission(pred: dict[int, list[tuple]]) -> list:
    """``{image_id: [(cell, category_id[, score[, shift]]), ...]}`` as submission entries."""
    entries = []
    for image_id, nuclei in sorted(pred.items()):
        for cell, category, *rest in nuclei:
            score = rest[0] if rest else 0.9
            shift = rest[1] if len(rest) > 1 else 0
            entries += submission_entries(image_id, [nucleus(cell, shift)], [score], [category])
    return entries


# Three tumour nuclei, two lymphocytes, one stroma nucleus.
ONE_IMAGE = {1: [(0, TUMOR), (1, TUMOR), (2, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE),
                 (10, STROMA)]}


def test_perfect_prediction_scores_one_in_every_class():
    result = evaluate(document(ONE_IMAGE), submission(ONE_IMAGE))
    overall = result["overall"]
    assert set(overall["per_class"]) == {"tumor", "lymphocyte", "stroma"}
    for values in overall["per_class"].values():
        assert values["PQ"] == values["F_c"] == values["PQ_image_mean"] == 1.0
        assert values["AP"] == pytest.approx(1.0) and values["AP50"] == pytest.approx(1.0)
    assert overall["mPQ"] == overall["bPQ"] == overall["class_accuracy"] == 1.0
    counts = {name: (v["gt_nuclei"], v["predicted_nuclei"])
              for name, v in overall["per_class"].items()}
    assert counts == {"tumor": (3, 3), "lymphocyte": (2, 2), "stroma": (1, 1)}
    image = result["per_image"]["img1.png"]
    assert image["per_class"]["tumor"]["PQ"] == 1.0 and image["mPQ"] == 1.0


def test_one_swapped_class_lowers_f_c_of_both_classes():
    pred = {1: [(0, TUMOR), (1, TUMOR), (2, LYMPHOCYTE), (5, LYMPHOCYTE), (6, LYMPHOCYTE),
                (10, STROMA)]}
    overall = evaluate(document(ONE_IMAGE), submission(pred))["overall"]
    per_class = overall["per_class"]
    # tumor: TP 2, TN 3 (two lymphocyte and one stroma pairs), FN_c 1:
    # F_c = 2 * 5 / (2 * 5 + 2 * 1); lymphocyte the same with FP_c 1 in place of FN_c.
    assert per_class["tumor"]["F_c"] == 10 / 12
    assert per_class["lymphocyte"]["F_c"] == 10 / 12
    # stroma: TP 1, TN 5 (the swapped pair is neither stroma), nothing wrong.
    assert per_class["stroma"]["F_c"] == 1.0
    # PQ of the class's nuclei alone: 2 of 3 tumours found; 2 of 3 lymphocyte predictions.
    assert per_class["tumor"]["PQ"] == 2 / 2.5
    assert per_class["lymphocyte"]["PQ"] == 2 / 2.5
    assert per_class["stroma"]["PQ"] == 1.0
    assert overall["class_accuracy"] == 5 / 6
    assert overall["mPQ"] == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    assert overall["bPQ"] == 1.0 and overall["F1"] == 1.0  # detection itself is perfect


def test_a_missing_nucleus_counts_against_its_own_class_only():
    pred = {1: [n for n in ONE_IMAGE[1] if n[0] != 2]}
    overall = evaluate(document(ONE_IMAGE), submission(pred))["overall"]
    per_class = overall["per_class"]
    # tumor: TP 2, TN 3, FN_d 1: F_c = 2 * 5 / (2 * 5 + 1).
    assert per_class["tumor"]["F_c"] == 10 / 11
    assert per_class["tumor"]["PQ"] == 2 / 2.5
    assert per_class["lymphocyte"]["F_c"] == per_class["lymphocyte"]["PQ"] == 1.0
    assert per_class["stroma"]["F_c"] == per_class["stroma"]["PQ"] == 1.0
    assert overall["class_accuracy"] == 1.0
    assert per_class["tumor"]["gt_nuclei"] == 3 and per_class["tumor"]["predicted_nuclei"] == 2


def test_a_class_absent_from_an_image_is_skipped_in_mpq():
    gt = {1: [(0, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE), (7, LYMPHOCYTE)],
          2: [(0, TUMOR), (1, TUMOR)]}
    pred = {1: [(0, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE)],  # one lymphocyte missed
            2: [(0, TUMOR), (1, TUMOR)]}
    result = evaluate(document(gt, CATEGORIES[:2]), submission(pred))
    first, second = result["per_image"]["img1.png"], result["per_image"]["img2.png"]
    assert first["per_class"]["lymphocyte"]["PQ"] == 2 / 2.5
    assert first["mPQ"] == pytest.approx((1.0 + 0.8) / 2)
    # No lymphocyte on either side of image 2: no PQ there, and not part of its mean.
    assert second["per_class"]["lymphocyte"]["PQ"] is None
    assert second["per_class"]["lymphocyte"]["F_c"] == 1.0  # two TN pairs
    assert second["mPQ"] == 1.0
    overall = result["overall"]
    assert overall["mPQ"] == pytest.approx((0.9 + 1.0) / 2)
    assert overall["per_class"]["lymphocyte"]["PQ_image_mean"] == 0.8
    assert overall["per_class"]["lymphocyte"]["PQ"] == 2 / 2.5  # over the data set
    # bPQ: class-agnostic PQ per image, then the mean.
    assert overall["bPQ"] == pytest.approx((3 / 3.5 + 1.0) / 2)


def test_a_class_only_predicted_scores_zero_in_that_image():
    gt = {1: [(0, TUMOR), (1, TUMOR)]}
    pred = {1: [(0, TUMOR), (1, TUMOR), (9, LYMPHOCYTE)]}
    image = evaluate(document(gt, CATEGORIES[:2]), submission(pred))["per_image"]["img1.png"]
    assert image["per_class"]["lymphocyte"]["PQ"] == 0.0
    assert image["mPQ"] == 0.5
    assert image["per_class"]["lymphocyte"]["AP"] is None  # no ground truth to score


def test_ap_per_class_one_perfect_class_and_one_undetected():
    gt = {1: [(0, TUMOR), (1, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE)]}
    pred = {1: [(0, TUMOR), (1, TUMOR)]}
    overall = evaluate(document(gt, CATEGORIES[:2]), submission(pred))["overall"]
    assert overall["per_class"]["tumor"]["AP"] == pytest.approx(1.0)
    assert overall["per_class"]["tumor"]["AP50@cap"] == pytest.approx(1.0)
    assert overall["per_class"]["lymphocyte"]["AP"] == 0.0
    assert overall["per_class"]["lymphocyte"]["AP50"] == 0.0
    # The overall AP is COCO's own summary: the mean over the categories.
    assert overall["AP"] == pytest.approx(0.5) and overall["AP@cap"] == pytest.approx(0.5)
    assert overall["per_class"]["lymphocyte"]["F_c"] == 2 * 2 / (2 * 2 + 2)


def test_no_detections_at_all():
    gt = {1: [(0, TUMOR), (5, LYMPHOCYTE)]}
    overall = evaluate(document(gt, CATEGORIES), [])["overall"]
    assert overall["per_class"]["tumor"]["AP"] == 0.0
    assert overall["per_class"]["stroma"]["AP"] is None
    assert overall["per_class"]["tumor"]["PQ"] == 0.0
    assert overall["class_accuracy"] is None and overall["bPQ"] == 0.0


def test_a_detection_of_an_unknown_class_is_refused():
    with pytest.raises(ValueError, match="category_id 4 is not a category"):
        evaluate(document(ONE_IMAGE), submission({1: [(0, 4)]}))


# -- properties --------------------------------------------------------------------------

IDS = (TUMOR, LYMPHOCYTE, STROMA)
# Each cell: GT class (or none), predicted class (or none), predicted shift, score.
cell_plans = st.lists(st.tuples(st.sampled_from((None, *IDS)), st.sampled_from((None, *IDS)),
                                st.sampled_from((0, 1, 3, 5)), st.integers(1, 99)),
                      min_size=len(CELLS), max_size=len(CELLS))


def planned(plan, relabel=lambda c: c):
    gt = {1: [(cell, relabel(g)) for cell, (g, _, _, _) in enumerate(plan) if g]}
    pred = {1: [(cell, relabel(p), score / 100, shift)
                for cell, (_, p, shift, score) in enumerate(plan) if p]}
    return document(gt), submission(pred)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=cell_plans, order=st.permutations(IDS))
def test_relabelling_classes_permutes_the_per_class_scores(plan, order):
    mapping = dict(zip(IDS, order, strict=True))
    name = {c["id"]: c["name"] for c in CATEGORIES}
    before = evaluate(*planned(plan))["overall"]
    after = evaluate(*planned(plan, mapping.get))["overall"]
    for c in IDS:
        moved, kept = after["per_class"][name[mapping[c]]], before["per_class"][name[c]]
        assert moved.keys() == kept.keys()
        for key, value in kept.items():
            assert moved[key] == pytest.approx(value), key
    for key in ("mPQ", "bPQ", "class_accuracy", "AP", "PQ", "F1"):
        assert after[key] == pytest.approx(before[key]), key


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=cell_plans)
def test_bpq_is_the_one_class_pq_of_the_same_nuclei(plan):
    gt, detections = planned(plan)
    result = evaluate(gt, detections)["overall"]
    one_class = evaluate(
        {**gt, "annotations": [{**a, "category_id": 1} for a in gt["annotations"]],
         "categories": ClassSet.default().categories()},
        [{**d, "category_id": 1} for d in detections])
    assert "per_class" not in one_class["overall"]
    if gt["annotations"] or detections:
        assert result["bPQ"] == pytest.approx(one_class["per_image"]["img1.png"]["PQ"])
    else:
        assert result["bPQ"] is None
    for key in ("AJI", "precision", "recall", "F1", "PQ", "gt_nuclei", "predicted_nuclei"):
        assert result[key] == one_class["overall"][key], key


# -- the one-class report, exactly as before classes ------------------------------------

def pinned_case():
    """Two images: exact, shifted, missed, spurious and overlapping predictions and a
    crowd region, all of the one default class."""
    images = [{"id": i, "file_name": f"img{i}.png", "height": 64, "width": 80} for i in (1, 2)]
    shape = (64, 80)
    gt_nuclei = {1: [(12, 12, 6), (12, 40, 5), (40, 14, 7), (44, 44, 6), (30, 66, 5)],
                 2: [(20, 20, 8), (44, 56, 6)]}
    annotations = []
    for image_id, nuclei in gt_nuclei.items():
        for row, col, radius in nuclei:
            annotations.append(make_annotation(len(annotations) + 1, image_id,
                                               encode_mask(disk(shape, (row, col), radius))))
    annotations.append(make_annotation(len(annotations) + 1, 2,
                                       encode_mask(disk(shape, (50, 16), 9)), iscrowd=1))
    predicted = {1: [((12, 12, 6), 0.95), ((13, 41, 5), 0.9), ((44, 45, 6), 0.6),
                     ((46, 48, 5), 0.7), ((56, 70, 4), 0.3)],
                 2: [((20, 21, 8), 0.8), ((51, 16, 4), 0.5), ((8, 70, 3), 0.4)]}
    detections = []
    for image_id, nuclei in predicted.items():
        rles = [encode_mask(disk(shape, (r, c), rad)) for (r, c, rad), _ in nuclei]
        detections += submission_entries(image_id, rles, [s for _, s in nuclei])
    return coco_document(images, annotations), detections


PINNED = {
    "overall": {
        "AP": 0.3512871287128713, "AP50": 0.5445544554455446, "AP75": 0.3240924092409241,
        "AP@cap": 0.3512871287128713, "AP50@cap": 0.5445544554455446,
        "AP75@cap": 0.3240924092409241, "AJI": 0.39539347408829173,
        "precision": 0.42857142857142855, "recall": 0.42857142857142855,
        "F1": 0.42857142857142855, "PQ": 0.3612316421895861, "gt_nuclei": 7,
        "predicted_nuclei": 8},
    "per_image": {
        "img1.png": {
            "AP": 0.36633663366336633, "AP50": 0.5544554455445545,
            "AP75": 0.30693069306930687, "AP@cap": 0.36633663366336633,
            "AP50@cap": 0.5544554455445545, "AP75@cap": 0.30693069306930687,
            "AJI": 0.33819241982507287, "precision": 0.4, "recall": 0.4, "F1": 0.4,
            "PQ": 0.3375, "gt_nuclei": 5, "predicted_nuclei": 5},
        "img2.png": {
            "AP": 0.35346534653465334, "AP50": 0.5049504950495048,
            "AP75": 0.5049504950495048, "AP@cap": 0.35346534653465334,
            "AP50@cap": 0.5049504950495048, "AP75@cap": 0.5049504950495048,
            "AJI": 0.5056179775280899, "precision": 0.5, "recall": 0.5, "F1": 0.5,
            "PQ": 0.4205607476635514, "gt_nuclei": 2, "predicted_nuclei": 3}},
    "max_dets": 200,
}


def test_one_class_report_is_unchanged():
    result = evaluate(*pinned_case())
    assert result == PINNED
    assert list(result["overall"]) == list(PINNED["overall"])


# -- the gate and the command -----------------------------------------------------------

def test_the_gate_names_the_allowed_category_ids():
    entry = submission({1: [(0, 4)]})[0]
    sizes = {1: SHAPE}
    with pytest.raises(InvalidValue, match="^category_id must be 1, not 4$"):
        check_detection(entry, sizes)
    with pytest.raises(InvalidValue, match="^category_id must be one of 3, 7, not 4$"):
        check_detection(entry, sizes, category_ids=(3, 7))
    assert check_detection({**entry, "category_id": 7}, sizes, category_ids=(3, 7))


@pytest.fixture
def two_class_files(tmp_path):
    gt = {1: [(0, TUMOR), (1, TUMOR), (2, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE)]}
    pred = {1: [(0, TUMOR), (1, TUMOR), (5, LYMPHOCYTE), (6, LYMPHOCYTE)]}
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(document(gt, CATEGORIES[:2])))
    pred_path.write_text(json.dumps(submission(pred)))
    return gt_path, pred_path


def test_evaluate_command_prints_a_line_per_class(two_class_files, tmp_path, capsys):
    gt, pred = two_class_files
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert rows["class"] == ["GT", "AP", "AP50", "PQ", "F_c"]
    # Recall 2/3 reaches 67 of COCO's 101 recall points, at precision 1.
    assert rows["tumor"] == ["3", f"{67 / 101:.4f}", f"{67 / 101:.4f}", "0.8000",
                             f"{8 / 9:.4f}"]
    assert rows["lymphocyte"] == ["2", "1.0000", "1.0000", "1.0000", "1.0000"]
    assert any(line.startswith("mPQ 0.9000  bPQ 0.8889  class accuracy 1.0000")
               for line in lines), lines
    written = json.loads(out.read_text())["overall"]
    assert written["per_class"]["tumor"]["PQ_image_mean"] == pytest.approx(0.8)


def test_evaluate_command_one_class_prints_no_class_lines(tmp_path, capsys):
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(document({1: [(0, 1), (1, 1)]}, [])))
    pred_path.write_text(json.dumps(submission({1: [(0, 1)]})))
    assert main(["evaluate", "--gt", str(gt_path), "--pred", str(pred_path)]) == 0
    out = capsys.readouterr().out
    assert "mPQ" not in out and "F_c" not in out and "overall" in out


def test_evaluate_command_refuses_a_class_not_in_the_ground_truth(two_class_files, capsys):
    gt, pred = two_class_files
    entries = json.loads(pred.read_text())
    entries[1]["category_id"] = STROMA
    pred.write_text(json.dumps(entries))
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(pred) in err[0]
    assert "entry 1: category_id must be one of 3, 7, not 5" in err[0]
