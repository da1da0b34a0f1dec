"""Predicted nuclei of one image: own masks as small crops, a label image, a table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..nucleus_classes import ClassSet
from ..rle import encode_box_mask
from .resolve import own_pixels, paint_nuclei

FEATURE_COLUMNS = ("label", "score", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h")
# With several nucleus classes, the table also names each nucleus' class.
CLASS_COLUMNS = ("class", "class_probability")


@dataclass
class Prediction:
    """Nuclei predicted in one image, best score first.

    As the network gives them, each nucleus keeps its own mask (a crop at ``(top,
    left)``) and masks may overlap. :meth:`above` gives the nuclei shown at a score
    threshold, with overlaps resolved once (the higher-scoring nucleus keeps the shared
    pixels, a nucleus left with none is dropped): every output made from that set (the
    label image, the table, the measurements and outlines, the submission) describes the
    same nuclei with the same pixels.

    Attributes
    ----------
    height, width : int
        Image size.
    scores : numpy.ndarray
        ``(N,)`` float32 in decreasing order; nucleus ``i`` has label ``i + 1``.
    crops : list of tuple
        ``(top, left, mask)`` per nucleus, ``mask`` a tight bool crop.
    hit_cap : bool
        The network returned as many detections as its cap: results may be truncated.
    wider_than_overlap : int
        Nuclei that no tile saw whole in its core (wider than the tile overlap), kept once.
    classes : numpy.ndarray
        ``(N,)`` int64 class index of each nucleus in the model's
        :class:`~napari_nuclei.core.nucleus_classes.ClassSet` (all 0 by default).
    class_probabilities : numpy.ndarray
        ``(N,)`` float32 probability of each nucleus' class (1 by default).
    """

    height: int
    width: int
    scores: np.ndarray
    crops: list = field(default_factory=list)
    hit_cap: bool = False
    wider_than_overlap: int = 0
    classes: np.ndarray | None = None
    class_probabilities: np.ndarray | None = None

    def __post_init__(self):
        count = len(self.crops)
        self.classes = (np.zeros(count, np.int64) if self.classes is None
                        else np.asarray(self.classes, np.int64).reshape(count))
        self.class_probabilities = (
            np.ones(count, np.float32) if self.class_probabilities is None
            else np.asarray(self.class_probabilities, np.float32).reshape(count))

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_unsorted(cls, height, width, scores, crops, hit_cap=False, classes=None,
                      class_probabilities=None) -> Prediction:
        """Build from nuclei in any order (sorted here by decreasing score)."""
        order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
        count = len(order)
        classes = np.zeros(count, np.int64) if classes is None else np.asarray(classes,
                                                                              np.int64)
        probabilities = (np.ones(count, np.float32) if class_probabilities is None
                         else np.asarray(class_probabilities, np.float32))
        return cls(height, width, np.asarray(scores, dtype=np.float32)[order],
                   [crops[i] for i in order], hit_cap, classes=classes.reshape(count)[order],
                   class_probabilities=probabilities.reshape(count)[order])

    def _subset(self, keep, crops=None) -> Prediction:
        """The nuclei at indices ``keep`` (with ``crops`` in their place when given)."""
        keep = np.asarray(keep, np.int64).reshape(-1)
        crops = [self.crops[i] for i in keep] if crops is None else crops
        return Prediction(self.height, self.width, self.scores[keep], crops, self.hit_cap,
                          self.wider_than_overlap, self.classes[keep],
                          self.class_probabilities[keep])

    def counts_per_class(self, classes: ClassSet) -> dict[str, int]:
        """How many nuclei of each class of ``classes``, by name."""
        found = np.bincount(self.classes, minlength=len(classes))
        return {name: int(found[index]) for index, name in enumerate(classes.names)}

    def labels(self) -> np.ndarray:
        """``(H, W)`` int32 label image; label ``i + 1`` is nucleus ``i`` (of a resolved
        set, its mask exactly)."""
        labels = np.zeros((self.height, self.width), dtype=np.int32)
        return paint_nuclei(labels, 0, 0, ((index + 1, score, top, left, mask)
                                           for index, (score, (top, left, mask))
                                           in enumerate(zip(self.scores, self.crops,
                                                            strict=True))))

    def rles(self) -> list[dict]:
        """Each nucleus' own mask as compressed COCO RLE (string counts)."""
        return [encode_box_mask(mask, top, left, self.height, self.width)
                for top, left, mask in self.crops]

    def features(self, labels: np.ndarray | None = None,
                 classes: ClassSet | None = None) -> dict[str, np.ndarray]:
        """A table: label, score, own-mask area and box of each nucleus, and with several
        classes its class name and probability (:data:`CLASS_COLUMNS`).

        Parameters
        ----------
        labels : numpy.ndarray, optional
            The label image shown; when given, only nuclei visible in it are listed
            (a nucleus entirely covered by better-scoring ones is not), as a napari
            ``layer.features`` table wants.
        classes : ClassSet, optional
            The model's classes; the class columns are added when it has more than one.
        """
        boxes = np.array([(left, top, m.shape[1], m.shape[0]) for top, left, m in self.crops],
                         dtype=np.int64).reshape(-1, 4)
        table = {
            "label": np.arange(1, len(self) + 1, dtype=np.int64),
            "score": self.scores.astype(np.float64),
            "area": np.array([int(m.sum()) for _, _, m in self.crops], dtype=np.int64),
            "bbox_x": boxes[:, 0], "bbox_y": boxes[:, 1],
            "bbox_w": boxes[:, 2], "bbox_h": boxes[:, 3],
        }
        if classes is not None and len(classes) > 1:
            names = np.asarray(classes.names, dtype=object)
            table["class"] = names[self.classes] if len(self) else np.zeros(0, object)
            table["class_probability"] = self.class_probabilities.astype(np.float64)
        if labels is None:
            return table
        visible = np.isin(table["label"], np.unique(labels))
        return {key: column[visible] for key, column in table.items()}

    def above(self, score_thresh: float) -> Prediction:
        """The nuclei shown at ``score_thresh``: those scoring at least that much, with
        their overlaps resolved (:meth:`resolved`). No need to run the network again."""
        keep = int(np.searchsorted(-self.scores, -score_thresh, side="right"))
        return self._subset(np.arange(keep)).resolved()

    def resolved(self) -> Prediction:
        """The same nuclei with disjoint masks, as :meth:`labels` paints them.

        Each nucleus keeps the pixels painted with its label (the rule of
        :mod:`.resolve`: the best score keeps shared pixels), cropped tight; one left
        with no pixel is dropped. Nucleus ``i`` of the result has label ``i + 1`` in
        :meth:`labels`, and its mask is exactly the pixels of that label.

        Returns
        -------
        Prediction
            ``self`` when no two masks overlap.
        """
        labels = self.labels()
        kept, crops, changed = [], [], False
        for index, (top, left, mask) in enumerate(self.crops):
            own = own_pixels(labels, 0, 0, index + 1, top, left, mask)
            if own is None:
                changed = True  # hidden by better-scoring nuclei
                continue
            changed |= own[2].shape != mask.shape or int(own[2].sum()) != int(mask.sum())
            kept.append(index)
            crops.append(own)
        if not changed:
            return self
        return self._subset(kept, crops)
