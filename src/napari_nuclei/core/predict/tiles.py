"""Cut a large image into overlapping tiles and decide which tile owns each nucleus.

Tiles overlap by ``overlap`` pixels: each window is its *core* grown by half the
overlap, and cores lie on a regular grid, so they partition the image. A detection is
*whole* when its box does not touch an inner tile edge, and *cut* otherwise. A whole
detection is kept by the tile whose core holds its box centre: a nucleus narrower than the
overlap lies whole in that tile, so a nucleus cut by a tile border is found once, whole.

A nucleus wider than the overlap may be seen whole by no tile, or whole only by a tile
that does not own its centre. Such detections are *candidates*: one that matches a nucleus
some tile owns is dropped; the others are grouped by the pixels their tiles share, and each
group is kept once, by its best member (a whole view first, then the largest), cut views
merged into one mask (:func:`resolve_candidates`).
"""

from __future__ import annotations

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


def regular_grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Overlapping tiles whose cores lie on a regular grid of side ``tile - overlap``.

    Cores start at multiples of the stride, so they line up with array chunks of that
    side; the last core of each row and column runs to the image edge (up to twice the
    stride) rather than leaving a sliver tile with no context for the network. Each
    window is its core grown by half the overlap (clipped to the image).

    Parameters
    ----------
    height, width : int
        Image size.
    tile : int
        Window side (windows of the last row and column may be larger).
    overlap : int
        Overlap between neighbouring windows (even).

    Returns
    -------
    list of Tile
        Row by row.
    """
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} must be smaller than the tile size {tile}")
    stride = tile - overlap
    rows, cols = max(1, height // stride), max(1, width // stride)
    return [grid_tile(r, c, height, width, tile, overlap)
            for r in range(rows) for c in range(cols)]


def grid_tile(row: int, col: int, height: int, width: int, tile: int, overlap: int) -> Tile:
    """One tile of :func:`regular_grid`."""
    stride, half = tile - overlap, overlap // 2
    rows, cols = max(1, height // stride), max(1, width // stride)
    y0, x0 = row * stride, col * stride
    y1 = height if row == rows - 1 else y0 + stride
    x1 = width if col == cols - 1 else x0 + stride
    return Tile(max(0, y0 - half), max(0, x0 - half), min(height, y1 + half),
                min(width, x1 + half), (float(y0), float(x0), float(y1), float(x1)),
                (row > 0, col > 0, row < rows - 1, col < cols - 1))


def _global_boxes(tile: Tile, boxes: np.ndarray):
    return tuple(boxes[:, i] + (tile.left if i % 2 == 0 else tile.top) for i in range(4))


def cut_off(tile: Tile, boxes: np.ndarray) -> np.ndarray:
    """Which detections touch an inner edge of the tile (and may be cut off by it).

    Parameters
    ----------
    tile : Tile
    boxes : numpy.ndarray
        ``(N, 4)`` XYXY boxes in tile coordinates.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool.
    """
    cut = np.zeros(len(boxes), dtype=bool)
    if len(boxes) == 0:
        return cut
    x0, y0, x1, y1 = _global_boxes(tile, boxes)
    top_in, left_in, bottom_in, right_in = tile.inner
    if top_in:
        cut |= y0 <= tile.top + _EDGE_MARGIN
    if left_in:
        cut |= x0 <= tile.left + _EDGE_MARGIN
    if bottom_in:
        cut |= y1 >= tile.bottom - _EDGE_MARGIN
    if right_in:
        cut |= x1 >= tile.right - _EDGE_MARGIN
    return cut


def centred(tile: Tile, boxes: np.ndarray) -> np.ndarray:
    """Which detections have their box centre in the tile's core."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    x0, y0, x1, y1 = _global_boxes(tile, boxes)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    core_y0, core_x0, core_y1, core_x1 = tile.core
    return (cy >= core_y0) & (cy < core_y1) & (cx >= core_x0) & (cx < core_x1)


# Two views of one nucleus from two tiles agree on most of the pixels both tiles saw. The
# overlap is measured against the smaller view: a tile may see only a fragment of a
# nucleus that its edge cuts in two.
SAME_NUCLEUS_OVERLAP = 0.5


@dataclass
class Candidate:
    """A detection no tile owns outright: cut by its tile's edge, or whole but centred in
    another tile's core.

    Attributes
    ----------
    top, left : int
        Position of ``mask`` in the image.
    mask : numpy.ndarray
        Tight bool crop.
    score : float
    whole : bool
        The detection does not touch an inner edge of its tile.
    window : tuple of int
        ``(top, left, bottom, right)`` of the tile that saw it.
    key : tuple of int
        ``(tile index, rank)``: breaks ties the same way in every run.
    class_index : int
        The detection's nucleus class (0 for a one-class model).
    class_probability : float
        The probability of that class.
    """

    top: int
    left: int
    mask: np.ndarray
    score: float
    whole: bool
    window: tuple[int, int, int, int]
    key: tuple[int, int]
    class_index: int = 0
    class_probability: float = 1.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.top + self.mask.shape[0], self.left + self.mask.shape[1]

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _crop(top, left, mask, y0, x0, y1, x1) -> np.ndarray:
    """The part of a positioned mask inside a rectangle, as a full-size array."""
    out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
    h, w = mask.shape
    a0, b0 = max(y0, top), max(x0, left)
    a1, b1 = min(y1, top + h), min(x1, left + w)
    if a1 > a0 and b1 > b0:
        out[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0] = mask[a0 - top : a1 - top,
                                                         b0 - left : b1 - left]
    return out


def same_nucleus(a: Candidate, b_top: int, b_left: int, b_mask: np.ndarray,
                 b_window: tuple[int, int, int, int]) -> bool:
    """Whether two detections from two tiles are one nucleus: within the pixels both
    tiles saw, their masks share ``SAME_NUCLEUS_OVERLAP`` or more of the smaller one."""
    y0, x0 = max(a.window[0], b_window[0]), max(a.window[1], b_window[1])
    y1, x1 = min(a.window[2], b_window[2]), min(a.window[3], b_window[3])
    # Restrict further to the two boxes: only their common area can overlap.
    ay0, ax0, ay1, ax1 = a.box
    by0, bx0 = b_top, b_left
    by1, bx1 = b_top + b_mask.shape[0], b_left + b_mask.shape[1]
    y0, x0 = max(y0, min(ay0, by0)), max(x0, min(ax0, bx0))
    y1, x1 = min(y1, max(ay1, by1)), min(x1, max(ax1, bx1))
    if y1 <= y0 or x1 <= x0:
        return False
    first = _crop(a.top, a.left, a.mask, y0, x0, y1, x1)
    second = _crop(b_top, b_left, b_mask, y0, x0, y1, x1)
    smaller = min(np.count_nonzero(first), np.count_nonzero(second))
    return smaller > 0 and np.count_nonzero(first & second) >= SAME_NUCLEUS_OVERLAP * smaller


def _overlapping(box, boxes: np.ndarray) -> np.ndarray:
    """Indices of the ``(M, 4)`` top/left/bottom/right ``boxes`` that overlap ``box``."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    return np.flatnonzero((boxes[:, 0] < box[2]) & (box[0] < boxes[:, 2])
                          & (boxes[:, 1] < box[3]) & (box[1] < boxes[:, 3]))


def _rank(c: Candidate):
    return (c.whole, c.area, -c.key[0], -c.key[1])


@dataclass
class Neighbourhood:
    """What the tiles around a candidate found: owned nuclei and other candidates.

    Attributes
    ----------
    owned : list of tuple
        ``(top, left, mask, window)`` of nuclei owned by the tiles.
    candidates : list of Candidate
    """

    owned: list
    candidates: list

    def __post_init__(self):
        self._owned_boxes = np.array(
            [(y, x, y + m.shape[0], x + m.shape[1]) for y, x, m, _ in self.owned],
            dtype=np.int64).reshape(-1, 4)
        self._candidate_boxes = np.array([c.box for c in self.candidates],
                                         dtype=np.int64).reshape(-1, 4)


def resolve_candidate(candidate: Candidate, around: Neighbourhood) -> Candidate | None:
    """Keep a candidate once, or drop it.

    Parameters
    ----------
    candidate : Candidate
    around : Neighbourhood
        Owned nuclei of the neighbouring tiles, and the candidates of these tiles and of
        the candidate's own.

    Returns
    -------
    Candidate or None
        None when a tile owns the nucleus or another candidate of it is better; else the
        candidate, with the cut views of the same nucleus merged into its mask when it is
        itself cut.
    """
    tile = candidate.key[0]
    for i in _overlapping(candidate.box, around._owned_boxes):
        top, left, mask, window = around.owned[i]
        if same_nucleus(candidate, top, left, mask, window):
            return None
    group = [o for o in (around.candidates[i]
                         for i in _overlapping(candidate.box, around._candidate_boxes))
             if o.key != candidate.key
             and same_nucleus(candidate, o.top, o.left, o.mask, o.window)]
    others = [o for o in group if o.key[0] != tile]
    if candidate.whole:
        confirmed = any(not o.whole for o in others)
    else:
        window = candidate.window
        confirmed = any(o.top < window[0] or o.left < window[1] or o.box[2] > window[2]
                        or o.box[3] > window[3] for o in others)
    if not confirmed:
        # A cut view that no tile sees continue past the cut (a detection along a tile
        # edge, where the network lacks context), or a whole view that no other tile saw
        # cut (its owner saw it whole and did not detect it): the better-placed view
        # decides.
        return None
    if any(_rank(o) > _rank(candidate) for o in group):
        return None
    if candidate.whole:
        return candidate
    members = [candidate, *(o for o in group if not o.whole)]
    y0 = min(m.top for m in members)
    x0 = min(m.left for m in members)
    y1 = max(m.box[2] for m in members)
    x1 = max(m.box[3] for m in members)
    merged = np.zeros((y1 - y0, x1 - x0), bool)
    for m in members:
        merged |= _crop(m.top, m.left, m.mask, y0, x0, y1, x1)
    # The kept view, the best placed, tells the class.
    return Candidate(y0, x0, merged, max(m.score for m in members), False, candidate.window,
                     candidate.key, candidate.class_index, candidate.class_probability)
