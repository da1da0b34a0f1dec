"""The one rule for overlapping nuclei: each pixel belongs to the best-ranked mask over it.

The network gives each nucleus its own mask, and masks of neighbours may overlap. Every
output (label image, table, outlines, submission, COCO export) describes the nuclei as
:func:`paint_nuclei` paints them: a pixel covered by several masks goes to the nucleus
with the highest score, and on equal scores to the lowest id. A nucleus's own pixels are
those painted with its id (:func:`own_pixels`); one left with none is not a nucleus of
the result. Images and slides both paint with this function, so the same detections give
the same pixels whether they came from an image or from a slide.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def rank(score: float, nucleus_id: int) -> tuple[float, int]:
    """The order in which nuclei win pixels: higher score, then lower id."""
    return (float(score), -int(nucleus_id))


def paint_nuclei(block: np.ndarray, top: int, left: int,
                 nuclei: Iterable[tuple[int, float, int, int, np.ndarray]]) -> np.ndarray:
    """Paint nuclei into a label block, the best-ranked nucleus winning shared pixels.

    Parameters
    ----------
    block : numpy.ndarray
        ``(H, W)`` integer labels, changed in place; its pixel ``(0, 0)`` is image pixel
        ``(top, left)``. Pixels no nucleus covers keep their value.
    top, left : int
        Position of the block in the image.
    nuclei : iterable of tuple
        ``(id, score, mask_top, mask_left, mask)``: each nucleus's id, score and bool
        mask crop positioned in the image (crops may reach outside the block).

    Returns
    -------
    numpy.ndarray
        ``block``.
    """
    height, width = block.shape
    reaching = [n for n in nuclei
                if n[2] < top + height and n[2] + n[4].shape[0] > top
                and n[3] < left + width and n[3] + n[4].shape[1] > left]
    # Worst first, so that each better-ranked nucleus paints over it.
    for nucleus_id, _, y, x, mask in sorted(reaching, key=lambda n: rank(n[1], n[0])):
        a0, b0 = max(y, top), max(x, left)
        a1, b1 = min(y + mask.shape[0], top + height), min(x + mask.shape[1], left + width)
        part = mask[a0 - y : a1 - y, b0 - x : b1 - x]
        block[a0 - top : a1 - top, b0 - left : b1 - left][part] = nucleus_id
    return block


def own_pixels(labels: np.ndarray, top: int, left: int, nucleus_id: int, mask_top: int,
               mask_left: int, mask: np.ndarray) -> tuple[int, int, np.ndarray] | None:
    """The pixels a nucleus holds in a painted label image, cropped tight.

    Parameters
    ----------
    labels : numpy.ndarray
        Painted labels (:func:`paint_nuclei`) covering the nucleus's own mask crop; its
        pixel ``(0, 0)`` is image pixel ``(top, left)``.
    top, left : int
    nucleus_id : int
    mask_top, mask_left : int
        Position of the nucleus's own mask crop.
    mask : numpy.ndarray
        Its own bool mask crop (only pixels inside it can be the nucleus's).

    Returns
    -------
    tuple or None
        ``(top, left, mask)`` of the pixels labelled with its id, or None when better
        nuclei took all of them.
    """
    y, x = mask_top - top, mask_left - left
    own = labels[y : y + mask.shape[0], x : x + mask.shape[1]] == nucleus_id
    rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
    if rows.size == 0:
        return None
    return (mask_top + int(rows[0]), mask_left + int(cols[0]),
            own[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
