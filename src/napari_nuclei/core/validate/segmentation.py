"""COCO segmentations checked against their image before pycocotools sees them.

pycocotools trusts its input: runs adding up to more than height x width write past
its buffer, runs adding up to less leave pixels undefined, polygon coordinates far
outside the image allocate memory by their distance, and a ``size`` alone decides how
much is allocated. Every segmentation a user hands in is checked here first.
"""

from __future__ import annotations

import numpy as np

from .fields import InvalidValue, array, describe, integer
from .limits import check_pixels

# A run is at most height x width (< 2**35 under any sane limit): 7 characters of 5 bits.
_MAX_CHARS_PER_RUN = 7
# Polygon vertices may sit a little outside the image (edges drawn on the border).
_POLYGON_MARGIN = 2.0


def rle_size(rle, height: int | None = None, width: int | None = None) -> tuple[int, int]:
    """The ``size`` of an RLE as ``(height, width)``, equal to the image's when given."""
    size = rle.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise InvalidValue(f"RLE size must be a list [height, width], not {describe(size)}")
    h = integer(size[0], "RLE height", minimum=1)
    w = integer(size[1], "RLE width", minimum=1)
    if height is not None and (h, w) != (height, width):
        raise InvalidValue(f"RLE size {h}x{w} differs from the image ({height}x{width})")
    check_pixels(h, w, "RLE")
    return h, w


def compressed_runs(counts: str) -> np.ndarray:
    """Run lengths of a compressed COCO RLE string (``counts`` as pycocotools writes it).

    Each run is a little-endian number in 5-bit chunks (characters ``0`` to ``o``, bit 6
    marking continuation, bit 5 of the last chunk the sign); from the third run on, each
    is stored as the difference to the run two before it.

    Raises
    ------
    InvalidValue
        For characters outside that alphabet, a number cut off at the end or too long.
    """
    try:
        chunks = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise InvalidValue("RLE counts hold non-ASCII characters") from None
    if chunks.size == 0:
        return chunks
    if chunks.min() < 0 or chunks.max() > 63:
        raise InvalidValue("RLE counts hold characters that are not COCO RLE")
    more = (chunks & 0x20) != 0
    if more[-1]:
        raise InvalidValue("RLE counts end in the middle of a run")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _MAX_CHARS_PER_RUN:
        raise InvalidValue("RLE counts hold a run longer than any image")
    position = np.arange(chunks.size) - np.repeat(starts, lengths)
    values = np.add.reduceat((chunks & 0x1F) << (5 * position), starts)
    negative = (chunks[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * lengths)), values)
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def _check_runs(runs: np.ndarray, height: int, width: int) -> None:
    if runs.size and runs.min() < 0:
        raise InvalidValue("RLE counts hold a negative run")
    total = int(runs.sum())
    if total != height * width:
        raise InvalidValue(
            f"RLE runs cover {total:,} pixels, not the {height}x{width} = "
            f"{height * width:,} of its size"
        )


def check_rle(rle, height: int | None = None, width: int | None = None,
              compressed_only: bool = False) -> tuple[int, int]:
    """Check a COCO RLE (string or list ``counts``) against an image size.

    Parameters
    ----------
    rle : object
        ``{"size": [h, w], "counts": str | list of int}``.
    height, width : int, optional
        The image's size; when omitted only the limit on sizes applies.
    compressed_only : bool
        Refuse list ``counts`` (submissions hold compressed RLE only).

    Returns
    -------
    tuple of int
        The RLE's ``(height, width)``.
    """
    if not isinstance(rle, dict):
        raise InvalidValue(f"RLE must be an object, not {describe(rle)}")
    h, w = rle_size(rle, height, width)
    counts = rle.get("counts")
    if isinstance(counts, str):
        runs = compressed_runs(counts)
    elif isinstance(counts, list) and not compressed_only:
        # type(), not isinstance(): JSON's true/false are Python ints too.
        if not all(type(c) is int for c in counts):
            raise InvalidValue("uncompressed RLE counts must be a list of integers")
        runs = np.asarray(counts) if counts else np.zeros(0, np.int64)
        if runs.dtype.kind not in "iu":  # integers beyond 64 bits
            raise InvalidValue("uncompressed RLE counts hold a run longer than any image")
    else:
        wanted = "a string" if compressed_only else "a string or a list of run lengths"
        raise InvalidValue(f"RLE counts must be {wanted}, not {describe(counts)}")
    _check_runs(runs, h, w)
    return h, w


def check_polygons(polygons, height: int, width: int) -> None:
    """Check COCO polygons: a list of ``[x1, y1, x2, y2, ...]`` with at least 3 points
    each, inside the image."""
    array(polygons, "polygon segmentation")
    if not polygons:
        raise InvalidValue("segmentation is an empty list of polygons")
    for number, polygon in enumerate(polygons):
        where = f"polygon {number}"
        if not isinstance(polygon, list):
            raise InvalidValue(f"{where} must be a list of coordinates, not {describe(polygon)}")
        if not all(type(c) in (int, float) for c in polygon):  # true/false are ints too
            raise InvalidValue(f"{where} must hold numbers only")
        try:
            points = np.asarray(polygon, dtype=float)
        except OverflowError:
            raise InvalidValue(f"{where} holds a coordinate too large for a float") from None
        if points.size % 2 or points.size < 6:
            raise InvalidValue(f"{where} has {points.size} coordinates; a polygon needs "
                               "x, y pairs of at least 3 points")
        if not np.all(np.isfinite(points)):
            raise InvalidValue(f"{where} holds a coordinate that is not finite")
        xs, ys = points[0::2], points[1::2]
        if (xs.min() < -_POLYGON_MARGIN or ys.min() < -_POLYGON_MARGIN
                or xs.max() > width + _POLYGON_MARGIN or ys.max() > height + _POLYGON_MARGIN):
            raise InvalidValue(f"{where} reaches outside the {height}x{width} image")


def check_segmentation(segmentation, height: int, width: int) -> None:
    """Check any COCO segmentation (polygons, uncompressed or compressed RLE).

    Raises
    ------
    InvalidValue
        Saying what is wrong, for a segmentation pycocotools could not safely handle.
    """
    check_pixels(height, width)
    if isinstance(segmentation, list):
        check_polygons(segmentation, height, width)
    elif isinstance(segmentation, dict):
        check_rle(segmentation, height, width)
    else:
        raise InvalidValue("segmentation must be a list of polygons or an RLE object, "
                           f"not {describe(segmentation)}")
