"""Predicted nuclei of one image: own masks as small crops, a label image, a table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rle import encode_box_mask
from .resolve import own_pixels, paint_nuclei

FEATURE_COLUMNS = ("label", "score", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h")


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
    """

    height: int
    width: int
    scores: np.ndarray
    crops: list = field(default_factory=list)
    hit_cap: bool = False
    wider_than_overlap: int = 0

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_unsorted(cls, height, width, scores, crops, hit_cap=False) -> Prediction:
        """Build from nuclei in any order (sorted here by decreasing score)."""
        order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
        return cls(height, width, np.asarray(scores, dtype=np.float32)[order],
                   [crops[i] for i in order], hit_cap)

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

    def features(self, labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A table: label, score, own-mask area and box of each nucleus.

        Parameters
        ----------
        labels : numpy.ndarray, optional
            The label image shown; when given, only nuclei visible in it are listed
            (a nucleus entirely covered by better-scoring ones is not), as a napari
            ``layer.features`` table wants.
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
        if labels is None:
            return table
        visible = np.isin(table["label"], np.unique(labels))
        return {key: column[visible] for key, column in table.items()}

    def above(self, score_thresh: float) -> Prediction:
        """The nuclei shown at ``score_thresh``: those scoring at least that much, with
        their overlaps resolved (:meth:`resolved`). No need to run the network again."""
        keep = int(np.searchsorted(-self.scores, -score_thresh, side="right"))
        return Prediction(self.height, self.width, self.scores[:keep], self.crops[:keep],
                          self.hit_cap, self.wider_than_overlap).resolved()

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
        scores, crops, changed = [], [], False
        for index, (score, (top, left, mask)) in enumerate(zip(self.scores, self.crops,
                                                               strict=True)):
            own = own_pixels(labels, 0, 0, index + 1, top, left, mask)
            if own is None:
                changed = True  # hidden by better-scoring nuclei
                continue
            changed |= own[2].shape != mask.shape or int(own[2].sum()) != int(mask.sum())
            scores.append(score)
            crops.append(own)
        if not changed:
            return self
        return Prediction(self.height, self.width, np.asarray(scores, np.float32), crops,
                          self.hit_cap, self.wider_than_overlap)
