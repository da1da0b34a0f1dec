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
    ``find_objects`` keeps one entry per value up to the largest, so sparse values
    (a nucleus labelled 2**31 - 1) are first renumbered 1..n; the values yielded are
    the original ones.

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
    dense, values = dense_labels(labels)
    for index, box in enumerate(ndimage.find_objects(dense)):
        if box is None:
            continue
        rows, cols = box
        crop = dense[box] == index + 1
        yield int(values[index]), rle_utils.encode_box_mask(crop, rows.start, cols.start,
                                                            height, width)


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels renumbered 1..n when their values are sparse, and the original values.

    Work sized by the largest label value (``find_objects``, ``bincount``) then stays
    proportional to the image however large the values are.

    Parameters
    ----------
    labels : numpy.ndarray
        Non-negative integer label image.

    Returns
    -------
    tuple of numpy.ndarray
        ``(dense, values)``: ``dense`` has values 0..n (0 stays background) and
        ``values[i]`` is the original value of dense label ``i + 1``.
    """
    largest = int(labels.max()) if labels.size else 0
    if largest <= labels.size:  # already bounded by the image: keep it as it is
        return labels, np.arange(1, largest + 1)
    values, inverse = np.unique(labels, return_inverse=True)
    if values[0] != 0:  # no background pixel: shift so that 0 stays unused
        values = np.concatenate(([0], values))
        inverse = inverse + 1
    return inverse.reshape(labels.shape).astype(np.int32), values[1:]


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
