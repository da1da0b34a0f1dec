"""Scores of predicted nuclei against ground truth.

- COCO mask AP@[.5:.95], AP50, AP75 with pycocotools' ``COCOeval`` exactly as stock
  (``maxDets = [1, 10, 100]``: what the competition's scorer reports) and again with the
  detection cap raised above the nuclei count (images hold hundreds of nuclei, so the
  stock cap ignores most of them).
- Nuclei metrics on label images (overlaps resolved: the better-scoring nucleus wins):
  aggregated Jaccard index (AJI, Kumar et al. 2017), precision / recall / F1 of one-to-one
  matching at IoU > 0.5 (a match above 0.5 is always unique), and panoptic quality
  PQ = sum of matched IoU / (TP + FP/2 + FN/2).
- COCO ``iscrowd`` regions are ignore regions, as in ``COCOeval``: they are not nuclei to
  find, and a detection lying mostly inside one (more than half its area, COCO's
  crowd overlap) is neither a false positive nor counted among the nuclei metrics.
- Ground truth of several classes adds AP per class (from the same ``COCOeval`` run) and
  the scores of :mod:`.class_metrics` (PQ and F_c per class, mPQ, bPQ).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from . import rle as rle_utils
from .coco import coco_to_labels
from .labels import rles_to_labels
from .validate.schemas import is_crowd

STOCK_MAX_DETS = 100


@contextlib.contextmanager
def _quiet():
    """pycocotools prints progress to stdout; keep the terminal for our own output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def coco_mask_ap(gt: dict, detections: list, max_dets: int = STOCK_MAX_DETS,
                 image_ids: list[int] | None = None) -> dict[str, float]:
    """Mask AP@[.5:.95], AP50 and AP75 from pycocotools' ``COCOeval``.

    Parameters
    ----------
    gt : dict
        COCO instances document of the ground truth.
    detections : list of dict
        Submission entries (``image_id``, ``category_id``, ``segmentation``, ``score``).
    max_dets : int
        Detections per image considered (the stock ``COCOeval`` uses 100).
    image_ids : list of int, optional
        Restrict to these images (all GT images by default).

    Returns
    -------
    dict
        ``AP``, ``AP50``, ``AP75`` as fractions (0 when nothing was detected). With
        several categories these are COCO's own summary: the mean over the categories
        that have ground truth.
    """
    if not detections:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
    _, stats = _run_cocoeval(gt, detections, max_dets, image_ids)
    return stats


def coco_mask_ap_by_class(gt: dict, detections: list, max_dets: int = STOCK_MAX_DETS,
                          image_ids: list[int] | None = None
                          ) -> tuple[dict[str, float], dict[int, dict]]:
    """:func:`coco_mask_ap` and, from the same ``COCOeval`` run, AP and AP50 per category.

    A category's AP averages its precision ``eval["precision"][:, :, k, 0, -1]`` (all
    areas, the last detection cap) over the IoU thresholds and recall points, leaving out
    the -1 entries as ``COCOeval.summarize`` does.

    Returns
    -------
    overall : dict
        As :func:`coco_mask_ap`.
    per_category : dict of int to dict
        ``{category_id: {"AP", "AP50"}}`` for each category of ``gt``; ``None`` for a
        category without ground truth in the images scored (nothing to score: COCO's -1).
    """
    category_ids = sorted(c["id"] for c in gt.get("categories", []))
    if not detections:
        # COCOeval cannot load an empty result list; a category with ground truth and
        # no detections has AP 0, one without ground truth has nothing to score.
        scope = None if image_ids is None else set(image_ids)
        present = {a.get("category_id") for a in gt["annotations"]
                   if not is_crowd(a) and (scope is None or a["image_id"] in scope)}
        return (coco_mask_ap(gt, detections),
                {c: dict.fromkeys(("AP", "AP50"), 0.0 if c in present else None)
                 for c in category_ids})
    evaluator, stats = _run_cocoeval(gt, detections, max_dets, image_ids)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # iou, recall, class
    at_50 = np.isclose(evaluator.params.iouThrs, 0.5)
    per_category = {}
    for k, category_id in enumerate(evaluator.params.catIds):
        values = (_mean_scored(precision[:, :, k]), _mean_scored(precision[at_50, :, k]))
        per_category[category_id] = {key: (None if v < 0 else v)
                                     for key, v in zip(("AP", "AP50"), values, strict=True)}
    return stats, per_category


def _run_cocoeval(gt: dict, detections: list, max_dets: int,
                  image_ids: list[int] | None):
    """One ``COCOeval`` "segm" run (evaluated and accumulated) and its AP, AP50, AP75."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        if max_dets != STOCK_MAX_DETS:
            evaluator.params.maxDets = [1, 10, max_dets]
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        if max_dets == STOCK_MAX_DETS:
            evaluator.summarize()
            stats = evaluator.stats[:3]
        else:
            stats = _summarize_at_last_cap(evaluator)
    # -1 means "nothing to score" (no ground truth): reported as 0.
    return evaluator, {k: max(float(v), 0.0)
                       for k, v in zip(("AP", "AP50", "AP75"), stats, strict=True)}


def _mean_scored(values: np.ndarray) -> float:
    """Mean of the precision entries COCO scores (-1: no ground truth), -1 if none."""
    values = values[values > -1]
    return float(values.mean()) if values.size else -1.0


def _summarize_at_last_cap(evaluator) -> list[float]:
    """AP, AP50, AP75 at the last ``maxDets`` entry, averaged as ``COCOeval.summarize`` does.

    (``summarize`` itself reads AP@[.5:.95] at a fixed 100 detections, so it cannot
    report a raised cap.)
    """
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # iou, recall, class; area all
    thresholds = evaluator.params.iouThrs
    return [_mean_scored(precision),
            _mean_scored(precision[np.isclose(thresholds, 0.5)]),
            _mean_scored(precision[np.isclose(thresholds, 0.75)])]


@dataclass
class MatchCounts:
    """Sums over nuclei that the overall scores are built from."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    matched_iou: float = 0.0
    aji_intersection: int = 0
    aji_union: int = 0

    def __add__(self, other: MatchCounts) -> MatchCounts:
        return MatchCounts(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple:
        return (self.tp, self.fp, self.fn, self.matched_iou, self.aji_intersection,
                self.aji_union)

    def scores(self) -> dict[str, float]:
        """AJI, precision, recall, F1, PQ (1.0 when there is nothing on either side)."""
        detected, actual = self.tp + self.fp, self.tp + self.fn
        denominator = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return {
            "AJI": self.aji_intersection / self.aji_union if self.aji_union else 1.0,
            "precision": self.tp / detected if detected else 1.0,
            "recall": self.tp / actual if actual else 1.0,
            "F1": self.tp / denominator if denominator else 1.0,
            "PQ": self.matched_iou / denominator if denominator else 1.0,
        }


@dataclass(frozen=True)
class Matches:
    """The nuclei of a ground-truth and a predicted label image and their one-to-one
    matches at IoU > 0.5.

    Attributes
    ----------
    gt_labels, pred_labels : numpy.ndarray
        Label values of the nuclei present in each image (0, background, left out).
    pairs : numpy.ndarray
        ``(n, 2)``: the ground-truth and the predicted label of each match.
    iou : numpy.ndarray
        ``(n,)``: the IoU of each match.
    """

    gt_labels: np.ndarray
    pred_labels: np.ndarray
    pairs: np.ndarray
    iou: np.ndarray


def match_labels(gt: np.ndarray, pred: np.ndarray) -> MatchCounts:
    """Compare two label images nucleus by nucleus.

    Parameters
    ----------
    gt, pred : numpy.ndarray
        ``(H, W)`` integer label images, 0 background.

    Returns
    -------
    MatchCounts
    """
    return match_nuclei(gt, pred)[0]


def match_nuclei(gt: np.ndarray, pred: np.ndarray) -> tuple[MatchCounts, Matches]:
    """:func:`match_labels`, and which nuclei it matched (for scores per class)."""
    gt_ids, gt_index = np.unique(gt, return_inverse=True)
    pred_ids, pred_index = np.unique(pred, return_inverse=True)
    n_pred = len(pred_ids)
    # Label 0 (background) sorts first when present; nuclei are numbered from there.
    g0 = 1 if gt_ids[0] == 0 else 0
    p0 = 1 if pred_ids[0] == 0 else 0
    gt_area = np.bincount(gt_index.ravel(), minlength=len(gt_ids))[g0:]
    pred_area = np.bincount(pred_index.ravel(), minlength=n_pred)[p0:]
    # Intersections of the (gt, pred) pairs that share pixels, one pass over the pixels.
    # Kept sparse: a dense n_gt x n_pred table grows with the product of the nuclei counts
    # (tens of GB for tens of thousands of tiny nuclei on each side).
    pairs, inter = np.unique(gt_index.ravel().astype(np.int64) * n_pred + pred_index.ravel(),
                             return_counts=True)
    g, p = np.divmod(pairs, n_pred)
    nuclei = (g >= g0) & (p >= p0)
    g, p, inter = g[nuclei] - g0, p[nuclei] - p0, inter[nuclei]
    union = gt_area[g] + pred_area[p] - inter
    iou = inter / union

    matched = iou > 0.5
    tp = int(matched.sum())
    counts = MatchCounts(tp=tp, fp=len(pred_area) - tp, fn=len(gt_area) - tp,
                         matched_iou=float(iou[matched].sum()))
    gt_labels, pred_labels = gt_ids[g0:], pred_ids[p0:]
    matches = Matches(gt_labels, pred_labels,
                      np.stack([gt_labels[g[matched]], pred_labels[p[matched]]], axis=1),
                      iou[matched])
    # AJI: each true nucleus with its best-IoU prediction (lowest label on ties).
    order = np.lexsort((p, -iou, g))
    best = order[np.r_[True, g[order][1:] != g[order][:-1]]] if g.size else order
    touched = np.zeros(len(gt_area), dtype=bool)
    touched[g[best]] = True
    used = np.zeros(len(pred_area), dtype=bool)
    used[p[best]] = True
    counts.aji_intersection = int(inter[best].sum())
    counts.aji_union = (int(union[best].sum()) + int(gt_area[~touched].sum())
                        + int(pred_area[~used].sum()))
    return counts, matches


def by_score(detections: list) -> list:
    """Detections in increasing score: the order :func:`prediction_labels` paints them in,
    so the ``i``-th is label ``i + 1`` (ties keep their order)."""
    return sorted(detections, key=lambda d: d["score"])


def prediction_labels(detections: list, height: int, width: int) -> np.ndarray:
    """Label image of one image's detections; the higher score wins overlapping pixels."""
    return rles_to_labels([d["segmentation"] for d in by_score(detections)], height, width)


def outside_crowd(detections: list, crowd_rles: list[dict]) -> list:
    """The detections not lying mostly inside an ``iscrowd`` region.

    Uses COCO's overlap with a crowd region: the intersection over the detection's
    own area, above one half.
    """
    if not crowd_rles or not detections:
        return detections
    from pycocotools import mask as mask_utils

    overlap = mask_utils.iou([rle_utils.with_bytes_counts(d["segmentation"]) for d in detections],
                             [rle_utils.with_bytes_counts(r) for r in crowd_rles],
                             [1] * len(crowd_rles))
    keep = np.asarray(overlap).reshape(len(detections), -1).max(axis=1) <= 0.5
    return [d for d, kept in zip(detections, keep, strict=True) if kept]


def evaluate(gt: dict, detections: list) -> dict:
    """All metrics, per image and overall.

    Parameters
    ----------
    gt : dict
        COCO instances document of the ground truth.
    detections : list of dict
        Submission entries; those of images without ground truth are left out.

    Returns
    -------
    dict
        ``{"overall": {...}, "per_image": {file_name: {...}}, "max_dets": cap}`` where
        each block holds ``AP``, ``AP50``, ``AP75`` (stock ``COCOeval``, 100 detections
        per image), the same with the raised cap (``AP@cap`` ...), ``AJI``,
        ``precision``, ``recall``, ``F1``, ``PQ`` and the nuclei counts.

        When the ground truth has more than one category, each block also holds
        ``per_class`` (``{class name: {"AP", "AP50", "AP@cap", "AP50@cap", "PQ", "F_c",
        "gt_nuclei", "predicted_nuclei"}}``, overall with ``PQ_image_mean`` too),
        ``mPQ``, ``bPQ`` and ``class_accuracy``, as :mod:`.class_metrics` defines them;
        ``AP`` ... are then COCO's mean over the categories.

    Raises
    ------
    ValueError
        With several categories, for a detection of a category not in the ground truth.
    """
    known = {image["id"] for image in gt["images"]}
    detections = [d for d in detections if d["image_id"] in known]
    # One category (the default nucleus, or files written before classes) keeps the
    # class-agnostic report exactly as it has always been; a model's classes are then
    # scored as that one category, since the ground truth says nothing of classes.
    one_class = len(gt.get("categories") or []) <= 1
    if one_class:
        only = (gt.get("categories") or [{"id": 1}])[0]["id"]
        detections = [d if d.get("category_id") == only else {**d, "category_id": only}
                      for d in detections]
    by_image: dict[int, list] = {}
    for det in detections:
        by_image.setdefault(det["image_id"], []).append(det)
    gt_counts: dict[int, int] = {}
    crowd: dict[int, list] = {}
    for ann in gt["annotations"]:
        if is_crowd(ann):
            crowd.setdefault(ann["image_id"], []).append(ann["segmentation"])
        else:
            gt_counts[ann["image_id"]] = gt_counts.get(ann["image_id"], 0) + 1
    most = max([*gt_counts.values(), *(len(v) for v in by_image.values()), STOCK_MAX_DETS])
    cap = int(np.ceil((most + 1) / 100) * 100)
    categories = gt.get("categories") or []
    scoring = None
    if len(categories) > 1:
        from .class_metrics import ClassScoring
        from .nucleus_classes import ClassSet

        scoring = ClassScoring(gt, detections, ClassSet.from_categories(categories))

    def ap_block(image_ids=None):
        """AP entries of the images, and with classes those of each class."""
        if scoring is None:
            stock = coco_mask_ap(gt, detections, STOCK_MAX_DETS, image_ids)
            raised = coco_mask_ap(gt, detections, cap, image_ids)
            return {**stock, **_at_cap(raised)}, None
        stock, stock_classes = coco_mask_ap_by_class(gt, detections, STOCK_MAX_DETS, image_ids)
        raised, raised_classes = coco_mask_ap_by_class(gt, detections, cap, image_ids)
        return ({**stock, **_at_cap(raised)},
                {c: {**stock_classes[c], **_at_cap(raised_classes[c])} for c in stock_classes})

    total = MatchCounts()
    per_image = {}
    for image in gt["images"]:
        dets = by_image.get(image["id"], [])
        ordered = by_score(outside_crowd(dets, crowd.get(image["id"], [])))
        counts, matches = match_nuclei(coco_to_labels(gt, image["id"]),
                                       prediction_labels(ordered, image["height"],
                                                         image["width"]))
        total = total + counts
        ap, ap_classes = ap_block([image["id"]])
        per_image[image["file_name"]] = {
            **ap, **counts.scores(),
            "gt_nuclei": gt_counts.get(image["id"], 0), "predicted_nuclei": len(dets),
        }
        if scoring is not None:
            per_image[image["file_name"]].update(
                scoring.add_image(image["id"], ordered, matches, counts, dets, ap_classes))
    ap, ap_classes = ap_block()
    overall = {**ap, **total.scores(), "gt_nuclei": sum(gt_counts.values()),
               "predicted_nuclei": len(detections)}
    if scoring is not None:
        overall.update(scoring.overall(ap_classes))
    return {"overall": overall, "per_image": per_image, "max_dets": cap}


def _at_cap(scores: dict) -> dict:
    """AP entries renamed for the raised detection cap (``AP`` -> ``AP@cap``)."""
    return {f"{k}@cap": v for k, v in scores.items()}
