"""Instance label images to COCO RLE and back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from scipy import ndimage

from . import rle as rle_utils


def iter_label_rles(labels: np.ndarray) -> Iterator[tuple[int, dict]]:
    """Yield ``(label value, compressed RLE)`` for each nucleus of a label image.

    Each nucleus is encoded from its own box (``scipy.ndimage.find_objects``), so the
    cost follows the nuclei's area, not the number of nuclei times the frame size.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(H, W)`` non-negative integer label image; 0 is background.

    Yields
    ------
    tuple of (int, dict)
        Label values in increasing order with their RLE.
    """
    height, width = labels.shape
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        value = index + 1
        rows, cols = box
        crop = labels[box] == value
        yield value, rle_utils.encode_box_mask(crop, rows.start, cols.start, height, width)


def rles_to_labels(
    rles: Iterable[dict], height: int, width: int, values: Iterable[int] | None = None
) -> np.ndarray:
    """Paint RLE masks into an int32 label image; where masks overlap, later ones win.

    Parameters
    ----------
    rles : iterable of dict
        Compressed COCO RLEs of size ``(height, width)``. Pass them in increasing
        priority (for predictions: increasing score, so the best-scoring mask wins).
    height, width : int
        Size of the label image.
    values : iterable of int, optional
        Label value for each mask; ``1, 2, ...`` by default.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` int32 label image.
    """
    labels = np.zeros((height, width), dtype=np.int32)
    values_iter = iter(values) if values is not None else None
    for number, rle in enumerate(rles, start=1):
        value = next(values_iter) if values_iter is not None else number
        if list(rle["size"]) != [height, width]:
            raise ValueError(f"mask of size {rle['size']} does not fit a {height}x{width} image")
        x, y, w, h = rle_utils.bbox(rle)
        if w == 0 or h == 0:
            continue
        # Assign inside the box only: a full-frame boolean index costs 20x more.
        crop = rle_utils.decode(rle)[y : y + h, x : x + w]
        labels[y : y + h, x : x + w][crop] = value
    return labels
