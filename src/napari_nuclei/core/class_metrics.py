"""Scores per nucleus class, for ground truth with more than one class.

Every score here starts from the class-agnostic one-to-one matching of
:func:`~.metrics.match_nuclei`: label images with overlaps resolved (the better-scoring
prediction wins), a ground-truth and a predicted nucleus paired when their IoU is above
0.5 (such a pair is always unique). A ground-truth nucleus has its annotation's
``category_id``, a predicted one its submission entry's ``category_id``.

- **PQ per class** (Gamper et al. 2020, PanNuke): PQ of the nuclei of class ``c`` only,
  ground truth of ``c`` against predictions of ``c``. Since IoU > 0.5 matches are unique,
  that matching is the class-agnostic one restricted to pairs where both sides are
  ``c``: a prediction of ``c`` paired with a nucleus of another class is a false
  positive of ``c`` (and that nucleus a false negative of its own class).
- **mPQ**: per image, the mean over classes of those PQs, then the mean over images.
  A class absent from both the ground truth and the prediction of an image has no PQ
  there and is skipped (counted neither as 0 nor as 1); an image where every class is
  absent is skipped. A class only predicted scores PQ 0 in that image. (PanNuke's
  released script skips a class whenever its ground truth is empty in an image, so
  there predictions of a class absent from the ground truth cost nothing.)
- **bPQ**: class-agnostic PQ per image (the image's ``PQ``), the mean over images with a
  nucleus on either side.
- **PQ of a class over the data set**: from its TP, FP, FN and matched IoU summed over
  all images (``PQ`` in the per-class block, as the overall class-agnostic ``PQ`` is
  built); with few images the per-image mean (``PQ_image_mean``, PanNuke's per-class
  number) is noisy.
- **F_c** (Graham et al. 2019, HoVer-Net): among matched pairs, TP_c (both ``c``), TN_c
  (neither ``c``), FP_c (predicted ``c``, ground truth not), FN_c (ground truth ``c``,
  predicted not); FP_d and FN_d the unmatched predictions and ground truth of ``c``;
  F_c = 2(TP_c + TN_c) / (2(TP_c + TN_c) + 2 FP_c + 2 FN_c + FP_d + FN_d). HoVer-Net pairs
  nuclei by centroid distance; here they are paired by the IoU > 0.5 matching of
  ``F1``, which is HoVer-Net's detection quality F_d. A class with no nucleus on either
  side still has an F_c, from its TN pairs.
- **Class accuracy**: the share of matched pairs whose classes agree.

A score with nothing to score (no nucleus of the class on either side, no matched pair)
is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .nucleus_classes import ClassSet
from .validate.schemas import is_crowd


@dataclass
class ClassCounts:
    """The counts of one class that its PQ and F_c are built from.

    Attributes
    ----------
    tp, tn, fp, fn : int
        Matched pairs: both of the class, neither, predicted of the class only, ground
        truth of the class only.
    fp_d, fn_d : int
        Unmatched predictions and unmatched ground truth of the class.
    iou : float
        Sum of the IoU of the ``tp`` pairs.
    """

    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0
    fp_d: int = 0
    fn_d: int = 0
    iou: float = 0.0

    def __add__(self, other: ClassCounts) -> ClassCounts:
        return ClassCounts(*(a + b for a, b in zip(self.astuple(), other.astuple(),
                                                   strict=True)))

    def astuple(self) -> tuple:
        return (self.tp, self.tn, self.fp, self.fn, self.fp_d, self.fn_d, self.iou)

    def pq(self) -> float | None:
        """PQ of the class's nuclei alone; ``None`` when it has none on either side."""
        # Restricted to the class, its false positives are the predictions of the class
        # not paired with ground truth of the class, matched elsewhere or not at all.
        denominator = self.tp + 0.5 * (self.fp + self.fp_d) + 0.5 * (self.fn + self.fn_d)
        return self.iou / denominator if denominator else None

    def f_c(self) -> float | None:
        """HoVer-Net's F_c; ``None`` when there is nothing to count."""
        agree = 2 * (self.tp + self.tn)
        denominator = agree + 2 * (self.fp + self.fn) + self.fp_d + self.fn_d
        return agree / denominator if denominator else None


@dataclass
class ClassTally:
    """The counts of every class and of the matched pairs, for one image or summed."""

    counts: dict[int, ClassCounts]
    matched: int = 0
    agreed: int = 0

    def __add__(self, other: ClassTally) -> ClassTally:
        empty = ClassCounts()
        counts = {c: self.counts.get(c, empty) + other.counts.get(c, empty)
                  for c in dict.fromkeys([*self.counts, *other.counts])}
        return ClassTally(counts, self.matched + other.matched, self.agreed + other.agreed)

    def accuracy(self) -> float | None:
        """Share of matched pairs whose classes agree (``None`` without a pair)."""
        return self.agreed / self.matched if self.matched else None


def tally_classes(matches, gt_class: np.ndarray, pred_class: np.ndarray,
                  category_ids: Iterable[int]) -> ClassTally:
    """Count, class by class, the matches of one image.

    Parameters
    ----------
    matches : Matches
        From :func:`~.metrics.match_nuclei`.
    gt_class, pred_class : numpy.ndarray
        The category id of each label value (index: the label; index 0 unused).
    category_ids : iterable of int
        The classes counted.

    Returns
    -------
    ClassTally
    """
    pair_gt = gt_class[matches.pairs[:, 0]]
    pair_pred = pred_class[matches.pairs[:, 1]]
    lone_gt = gt_class[np.setdiff1d(matches.gt_labels, matches.pairs[:, 0])]
    lone_pred = pred_class[np.setdiff1d(matches.pred_labels, matches.pairs[:, 1])]
    counts = {}
    for c in category_ids:
        is_gt, is_pred = pair_gt == c, pair_pred == c
        counts[c] = ClassCounts(
            tp=int((is_gt & is_pred).sum()), tn=int((~is_gt & ~is_pred).sum()),
            fp=int((~is_gt & is_pred).sum()), fn=int((is_gt & ~is_pred).sum()),
            fp_d=int((lone_pred == c).sum()), fn_d=int((lone_gt == c).sum()),
            iou=float(matches.iou[is_gt & is_pred].sum()))
    return ClassTally(counts, len(matches.pairs), int((pair_gt == pair_pred).sum()))


def mean_defined(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not ``None`` (``None`` if there are none)."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def binary_pq(counts) -> float | None:
    """Class-agnostic PQ of one image's :class:`~.metrics.MatchCounts`; ``None`` without
    a nucleus on either side (where ``MatchCounts.scores`` reports 1)."""
    denominator = counts.tp + 0.5 * counts.fp + 0.5 * counts.fn
    return counts.matched_iou / denominator if denominator else None


class ClassScoring:
    """Per-class scores of :func:`~.metrics.evaluate`, gathered image by image.

    Parameters
    ----------
    gt : dict
        COCO instances document of the ground truth.
    detections : list of dict
        Submission entries of the images of ``gt``.
    classes : ClassSet
        The ground truth's classes.

    Raises
    ------
    ValueError
        For a detection whose ``category_id`` is no class of the ground truth.
    """

    def __init__(self, gt: dict, detections: list, classes: ClassSet):
        ids = classes.ids
        unknown = sorted({d["category_id"] for d in detections} - set(ids))
        if unknown:
            raise ValueError(f"detection category_id {unknown[0]} is not a category of the "
                             f"ground truth ({', '.join(map(str, ids))})")
        self.gt, self.detections, self.classes = gt, detections, classes
        self.total = ClassTally({c: ClassCounts() for c in ids})
        self._image_pq: dict[int, list] = {c: [] for c in ids}
        self._image_mpq: list = []
        self._image_bpq: list = []
        self._annotations: dict[int, list[dict]] = {}
        for ann in gt["annotations"]:
            self._annotations.setdefault(ann["image_id"], []).append(ann)

    def _category(self, annotation: dict) -> int:
        return annotation.get("category_id", self.classes.ids[0])

    def add_image(self, image_id: int, ordered: Sequence[dict], matches, counts,
                  dets: Sequence[dict], ap: dict[int, dict]) -> dict:
        """Score one image.

        Parameters
        ----------
        image_id : int
            The image.
        ordered : sequence of dict
            Its scored detections in label order (:func:`~.metrics.by_score`).
        matches : Matches
            Its ground truth against ``ordered`` (:func:`~.metrics.match_nuclei`).
        counts : MatchCounts
            The same, class-agnostic.
        dets : sequence of dict
            All its detections (for the predicted counts, as ``predicted_nuclei``).
        ap : dict of int to dict
            AP entries of each class for this image.

        Returns
        -------
        dict
            ``per_class``, ``mPQ``, ``bPQ``, ``class_accuracy`` of the image.
        """
        annotations = self._annotations.get(image_id, [])
        # Label i + 1 is the i-th nucleus, crowd regions left out: coco_to_labels' order.
        gt_class = np.array([0, *(self._category(a) for a in annotations if not is_crowd(a))],
                            dtype=np.int64)
        pred_class = np.array([0, *(d["category_id"] for d in ordered)], dtype=np.int64)
        tally = tally_classes(matches, gt_class, pred_class, self.classes.ids)
        self.total = self.total + tally
        pqs = {c: tally.counts[c].pq() for c in self.classes.ids}
        for c, value in pqs.items():
            self._image_pq[c].append(value)
        mpq, bpq = mean_defined(pqs.values()), binary_pq(counts)
        self._image_mpq.append(mpq)
        self._image_bpq.append(bpq)
        return {"per_class": self._block(tally, ap, annotations, dets), "mPQ": mpq,
                "bPQ": bpq, "class_accuracy": tally.accuracy()}

    def overall(self, ap: dict[int, dict]) -> dict:
        """``per_class``, ``mPQ``, ``bPQ``, ``class_accuracy`` over all images added."""
        block = self._block(self.total, ap, self.gt["annotations"], self.detections)
        for entry, c in zip(block.values(), self.classes.ids, strict=True):
            entry["PQ_image_mean"] = mean_defined(self._image_pq[c])
        return {"per_class": block, "mPQ": mean_defined(self._image_mpq),
                "bPQ": mean_defined(self._image_bpq),
                "class_accuracy": self.total.accuracy()}

    def _block(self, tally: ClassTally, ap: dict[int, dict], annotations: Sequence[dict],
               dets: Sequence[dict]) -> dict[str, dict]:
        """``{class name: {AP..., PQ, F_c, gt_nuclei, predicted_nuclei}}``."""
        gt_n = _count(self._category(a) for a in annotations if not is_crowd(a))
        pred_n = _count(d["category_id"] for d in dets)
        return {entry.name: {**ap[entry.id], "PQ": tally.counts[entry.id].pq(),
                             "F_c": tally.counts[entry.id].f_c(),
                             "gt_nuclei": gt_n.get(entry.id, 0),
                             "predicted_nuclei": pred_n.get(entry.id, 0)}
                for entry in self.classes}


def _count(values: Iterable[int]) -> dict[int, int]:
    counted: dict[int, int] = {}
    for value in values:
        counted[value] = counted.get(value, 0) + 1
    return counted
