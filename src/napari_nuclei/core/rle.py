"""COCO run-length encoding of nucleus masks without full-frame copies.

pycocotools encodes a Fortran-ordered ``(H, W)`` array; for a small nucleus in a large
frame almost all of that work is scanning background. A mask known only inside its box
is encoded here from the few columns it spans (column-major runs, padded with the
background before and after), and pycocotools compresses the runs into the standard
string form. The result is identical to ``pycocotools.mask.encode`` of the full frame.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def _column_major_runs(strip: np.ndarray) -> np.ndarray:
    """Run lengths of a flat 0/1 vector, starting with a (possibly empty) run of zeros."""
    flat = strip.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges)
    if flat.size and flat[0]:
        runs = np.concatenate(([0], runs))
    return runs


def encode_box_mask(
    crop: np.ndarray, top: int, left: int, height: int, width: int
) -> dict:
    """Encode a mask given by its crop and position as full-frame compressed COCO RLE.

    Parameters
    ----------
    crop : numpy.ndarray
        ``(h, w)`` boolean (or 0/1) mask of the nucleus inside its box.
    top, left : int
        Position of the crop's top-left pixel in the frame.
    height, width : int
        Size of the full frame.

    Returns
    -------
    dict
        ``{"size": [height, width], "counts": str}``, equal to pycocotools' encoding of
        the full-frame mask.
    """
    h, w = crop.shape
    if top < 0 or left < 0 or top + h > height or left + w > width:
        raise ValueError(f"box {top, left, h, w} lies outside a {height}x{width} frame")
    if h == 0 or w == 0:
        runs = np.array([height * width])
    else:
        # Full-height strip of the columns the box spans, in column-major order.
        strip = np.zeros((w, height), dtype=np.uint8)
        strip[:, top : top + h] = np.asarray(crop, dtype=bool).T
        runs = _column_major_runs(strip)
        runs[0] += left * height
        tail = (width - left - w) * height
        if len(runs) % 2:  # ends with a run of zeros: extend it
            runs[-1] += tail
        elif tail:
            runs = np.append(runs, tail)
    rle = mask_utils.frPyObjects(
        {"size": [int(height), int(width)], "counts": [int(r) for r in runs]}, height, width
    )
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(top, left, bottom, right)`` (exclusive) of a boolean mask, or None."""
    import cv2

    x, y, w, h = cv2.boundingRect(mask.view(np.uint8) if mask.dtype == bool else mask)
    if w == 0 or h == 0:
        return None
    return y, x, y + h, x + w


def encode_mask(mask: np.ndarray) -> dict | None:
    """Encode a full-frame boolean mask as compressed COCO RLE; None when it is empty.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` bool.

    Returns
    -------
    dict or None
        ``{"size": [H, W], "counts": str}``.
    """
    box = mask_box(mask)
    if box is None:
        return None
    top, left, bottom, right = box
    return encode_box_mask(mask[top:bottom, left:right], top, left, *mask.shape)


def decode(rle: dict) -> np.ndarray:
    """Decode a COCO RLE (string or bytes counts) to an ``(H, W)`` bool mask."""
    return mask_utils.decode(with_bytes_counts(rle)).astype(bool)


def area(rle: dict) -> int:
    """Number of foreground pixels of a compressed RLE."""
    return int(mask_utils.area(with_bytes_counts(rle)))


def bbox(rle: dict) -> list[int]:
    """COCO box ``[x, y, w, h]`` of a compressed RLE (pixel-aligned, so integers)."""
    return [int(v) for v in mask_utils.toBbox(with_bytes_counts(rle))]


def with_bytes_counts(rle: dict) -> dict:
    """The RLE with ``bytes`` counts, as pycocotools' C functions require."""
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": rle["size"], "counts": counts.encode("ascii")}
    return rle
