"""Paste each predicted mask inside its own box only.

Uses the same sampling as detectron2's ``paste_masks_in_image`` on CPU (pixel centres
mapped into the box, bilinear ``grid_sample``, threshold 0.5, a one-pixel margin around
the box), so the pixels are the same, but the work and memory follow the box area instead
of N full frames.
"""

from __future__ import annotations

import math

import numpy as np

MASK_THRESHOLD = 0.5


def paste_in_box(mask_prob, box, height: int, width: int):
    """Binary mask of one detection inside its box region.

    Parameters
    ----------
    mask_prob : torch.Tensor
        ``(M, M)`` mask probabilities of the detection.
    box : sequence of float
        ``(x0, y0, x1, y1)`` in image pixels.
    height, width : int
        Image size.

    Returns
    -------
    top, left : int
        Position of the region in the image.
    crop : numpy.ndarray
        ``(h, w)`` bool mask of the region.
    """
    import torch
    import torch.nn.functional as F

    x0, y0, x1, y1 = (float(v) for v in box)
    left = max(int(math.floor(x0)) - 1, 0)
    top = max(int(math.floor(y0)) - 1, 0)
    right = min(int(math.ceil(x1)) + 1, width)
    bottom = min(int(math.ceil(y1)) + 1, height)
    box_t = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
    ys = (torch.arange(top, bottom, dtype=torch.float32) + 0.5 - box_t[1]) / (
        box_t[3] - box_t[1]) * 2 - 1
    xs = (torch.arange(left, right, dtype=torch.float32) + 0.5 - box_t[0]) / (
        box_t[2] - box_t[0]) * 2 - 1
    grid = torch.stack(
        [xs[None, :].expand(len(ys), len(xs)), ys[:, None].expand(len(ys), len(xs))], dim=2
    )
    sampled = F.grid_sample(mask_prob[None, None].float(), grid[None], align_corners=False)
    return top, left, (sampled[0, 0] >= MASK_THRESHOLD).numpy()


def tight(top: int, left: int, crop: np.ndarray):
    """Shrink a region to the bounding box of its pixels; None when it has none."""
    rows = np.flatnonzero(crop.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(crop.any(axis=0))
    sub = crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return top + int(rows[0]), left + int(cols[0]), np.ascontiguousarray(sub)
