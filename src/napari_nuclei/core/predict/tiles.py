"""Cut a large image into overlapping tiles and decide which tile owns each nucleus.

Tiles overlap by at least ``overlap`` pixels. Each axis is split into *cores* at the
middle of every overlap, so cores partition the image. A detection is kept by a tile only
when its box centre lies in the tile's core and its box does not touch an inner tile edge
(there it would be cut off; being smaller than half the overlap, it lies whole in the
neighbouring tile). A nucleus cut by a tile border is therefore found once, whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A box this close to an inner tile edge is taken to be cut off by it.
_EDGE_MARGIN = 1.0


@dataclass(frozen=True)
class Tile:
    """One tile: its pixel window and the core region whose nuclei it owns."""

    top: int
    left: int
    bottom: int
    right: int
    core: tuple[float, float, float, float]  # y0, x0, y1, x1
    inner: tuple[bool, bool, bool, bool]  # top, left, bottom, right edges are inside


def _axis(length: int, tile: int, overlap: int):
    if length <= tile:
        return [(0, length)], [(0.0, float(length))]
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = np.round(np.linspace(0, length - tile, count)).astype(int)
    windows = [(int(s), int(s) + tile) for s in starts]
    cuts = [(windows[i][1] + windows[i + 1][0]) / 2 for i in range(count - 1)]
    bounds = [0.0, *cuts, float(length)]
    return windows, [(bounds[i], bounds[i + 1]) for i in range(count)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Overlapping tiles covering an image, row by row.

    Parameters
    ----------
    height, width : int
        Image size.
    tile : int
        Tile side in pixels.
    overlap : int
        Minimum overlap between neighbouring tiles (more than twice the largest
        nucleus diameter).

    Returns
    -------
    list of Tile
    """
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} must be smaller than the tile size {tile}")
    rows, row_cores = _axis(height, tile, overlap)
    cols, col_cores = _axis(width, tile, overlap)
    tiles = []
    for r, ((top, bottom), (cy0, cy1)) in enumerate(zip(rows, row_cores, strict=True)):
        for c, ((left, right), (cx0, cx1)) in enumerate(zip(cols, col_cores, strict=True)):
            inner = (r > 0, c > 0, r < len(rows) - 1, c < len(cols) - 1)
            tiles.append(Tile(top, left, bottom, right, (cy0, cx0, cy1, cx1), inner))
    return tiles


def owned(tile: Tile, boxes: np.ndarray) -> np.ndarray:
    """Which detections of a tile it keeps.

    Parameters
    ----------
    tile : Tile
        The tile.
    boxes : numpy.ndarray
        ``(N, 4)`` XYXY boxes in tile coordinates.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    x0, y0, x1, y1 = (boxes[:, i] + (tile.left if i % 2 == 0 else tile.top) for i in range(4))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    core_y0, core_x0, core_y1, core_x1 = tile.core
    keep = (cy >= core_y0) & (cy < core_y1) & (cx >= core_x0) & (cx < core_x1)
    top_in, left_in, bottom_in, right_in = tile.inner
    if top_in:
        keep &= y0 > tile.top + _EDGE_MARGIN
    if left_in:
        keep &= x0 > tile.left + _EDGE_MARGIN
    if bottom_in:
        keep &= y1 < tile.bottom - _EDGE_MARGIN
    if right_in:
        keep &= x1 < tile.right - _EDGE_MARGIN
    return keep
