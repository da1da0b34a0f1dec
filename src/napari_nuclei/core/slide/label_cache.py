"""Label pyramids served from memory: blocks of every level kept in a cache with a memory
budget, so that what a worker has read or painted is shown without a read from disk on
the viewer's thread."""

from __future__ import annotations

import threading

import numpy as np

# Side of the square blocks a viewer's reads of cached labels are served in.
BLOCK = 1024
# Memory the blocks of one output may take: a 2,048² region at every level is ~22 MiB.
DEFAULT_BUDGET = 256 * 2**20


class BlockCache:
    """Blocks of label levels kept in memory, the least recently used dropped first.

    Shared between a worker, which reads and refreshes blocks, and a viewer's reading
    threads; blocks are replaced whole, never changed in place.
    """

    def __init__(self, budget: int = DEFAULT_BUDGET):
        from collections import OrderedDict

        self.budget = budget
        self.bytes = 0
        self._blocks: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
            return block

    def put(self, key, block: np.ndarray) -> None:
        with self._lock:
            old = self._blocks.pop(key, None)
            if old is not None:
                self.bytes -= old.nbytes
            self._blocks[key] = block
            self.bytes += block.nbytes
            while self.bytes > self.budget and len(self._blocks) > 1:
                _, dropped = self._blocks.popitem(last=False)
                self.bytes -= dropped.nbytes

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._blocks


class CachedPyramid:
    """Levels of a label pyramid (level ``k`` is level 0 taken every ``2**k`` pixels),
    read in blocks through a :class:`BlockCache`.

    A viewer reads the levels as dask arrays (:meth:`levels`); what a worker has read
    (:meth:`prefetch`) or painted (:meth:`paint`) is served from memory, so that drawing
    or refreshing the labels reads nothing from disk on the viewer's thread.

    Parameters
    ----------
    arrays : list of array-like
        The levels, level 0 first (zarr arrays: read only for blocks not in memory).
    cache : BlockCache, optional
        Shared with another pyramid of the same labels (a live job's and its finished
        pyramid's).
    block : int
        Block side in pixels.
    """

    def __init__(self, arrays, cache: BlockCache | None = None, block: int = BLOCK):
        self.arrays = list(arrays)
        self.cache = cache if cache is not None else BlockCache()
        self.block = block
        self.dtype = np.dtype(self.arrays[0].dtype)
        # Where labels may be: blocks elsewhere are background, served without a read
        # (a viewer's view mostly shows the slide around its predicted region).
        self.extent: tuple[int, int, int, int] | None = None  # level-0 rectangle
        self.painted: set | None = None  # blocks painted (None: any block may hold some)

    def with_sources(self, arrays) -> CachedPyramid:
        """The same labels read from other arrays (the blocks in memory are kept)."""
        other = CachedPyramid(arrays, self.cache, self.block)
        other.extent, other.painted = self.extent, self.painted
        return other

    def _blank(self, level: int, by: int, bx: int) -> bool:
        if self.painted is not None and (level, by, bx) not in self.painted:
            return True
        if self.extent is None:
            return False
        (a0, c0, a1, c1), _ = self._blocks_under(level, *self.extent)
        b = self.block
        return not (by * b < a1 and a0 < (by + 1) * b and bx * b < c1 and c0 < (bx + 1) * b)

    def _served_blank(self, level: int, by: int, bx: int) -> bool:
        """Whether a block is served as background without being in memory."""
        return (level, by, bx) not in self.cache and self._blank(level, by, bx)

    def shape(self, level: int) -> tuple[int, int]:
        return tuple(int(n) for n in self.arrays[level].shape[-2:])

    def _read_block(self, level: int, by: int, bx: int) -> np.ndarray:
        key = (level, by, bx)
        block = self.cache.get(key)
        if block is None:
            b = self.block
            if self._blank(level, by, bx):
                height, width = self.shape(level)
                shape = (min(b, height - by * b), min(b, width - bx * b))
                return np.broadcast_to(np.zeros((), self.dtype), shape)  # nothing kept
            block = np.asarray(self.arrays[level][by * b : (by + 1) * b,
                                                  bx * b : (bx + 1) * b])
            self.cache.put(key, block)
        return block

    def read(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """``level[y0:y1, x0:x1]``, assembled from its blocks."""
        b = self.block
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), self.dtype)
        for by in range(y0 // b, -(-y1 // b)):
            for bx in range(x0 // b, -(-x1 // b)):
                block = self._read_block(level, by, bx)
                shared = self._shared(by, bx, block.shape, y0, y1, x0, x1)
                if shared is not None:
                    in_block, in_rectangle = shared
                    out[in_rectangle] = block[in_block]
        return out

    def _shared(self, by: int, bx: int, shape: tuple, y0: int, y1: int, x0: int,
                x1: int) -> tuple | None:
        """Where block ``(by, bx)``, of ``shape``, meets rows ``y0:y1`` and columns
        ``x0:x1`` of its level: ``(in the block, in the rectangle)``, each a pair of
        slices; None where they do not meet."""
        top, left = by * self.block, bx * self.block
        a0, a1 = max(y0, top), min(y1, top + shape[0])
        c0, c1 = max(x0, left), min(x1, left + shape[1])
        if a1 <= a0 or c1 <= c0:
            return None
        return ((slice(a0 - top, a1 - top), slice(c0 - left, c1 - left)),
                (slice(a0 - y0, a1 - y0), slice(c0 - x0, c1 - x0)))

    def _blocks_under(self, level: int, top: int, left: int, bottom: int, right: int):
        """Blocks of ``level`` under a level-0 rectangle, with the rectangle in level
        pixels."""
        step, b = 2**level, self.block
        height, width = self.shape(level)
        a0, c0 = -(-top // step), -(-left // step)
        a1, c1 = min(height, -(-bottom // step)), min(width, -(-right // step))
        if a1 <= a0 or c1 <= c0:
            return (a0, c0, a1, c1), []
        return (a0, c0, a1, c1), [(by, bx) for by in range(a0 // b, -(-a1 // b))
                                  for bx in range(c0 // b, -(-c1 // b))]

    def prefetch(self, top: int, left: int, bottom: int, right: int) -> int:
        """Read into memory the blocks under a level-0 rectangle, coarsest level first,
        as far as the cache's budget allows; returns the blocks read."""
        read = 0
        for level in reversed(range(len(self.arrays))):
            _, blocks = self._blocks_under(level, top, left, bottom, right)
            if self.cache.bytes + len(blocks) * self.block**2 * self.dtype.itemsize > \
                    self.cache.budget:
                break
            for by, bx in blocks:
                self._read_block(level, by, bx)
            read += len(blocks)
        return read

    def paint(self, y0: int, x0: int, values: np.ndarray) -> None:
        """Level-0 pixels changed at ``(y0, x0)`` to ``values``: every level's blocks in
        memory under them take the new pixels (blocks not in memory are read, so that
        what a viewer sees next is the labels as painted).

        Background painted where the blocks are served as background already changes
        nothing and is not kept: a region's job marks every tile of the slide outside
        the region painted, and keeping those blocks would fill the budget with zeros
        and push out the region's own blocks, to be read again on the viewer's thread.
        """
        y1, x1 = y0 + values.shape[0], x0 + values.shape[1]
        background = not values.any()
        for level in range(len(self.arrays)):
            step = 2**level
            (a0, c0, a1, c1), blocks = self._blocks_under(level, y0, x0, y1, x1)
            if not blocks:
                continue
            # The level's pixels whose level-0 source lies in the rectangle.
            sampled = values[a0 * step - y0 :: step, c0 * step - x0 :: step][
                : a1 - a0, : c1 - c0]
            for by, bx in blocks:
                if background and self._served_blank(level, by, bx):
                    continue
                block = self._read_block(level, by, bx).copy()
                shared = self._shared(by, bx, block.shape, a0, a1, c0, c1)
                if shared is not None:
                    in_block, in_rectangle = shared
                    block[in_block] = sampled[in_rectangle]
                    self.cache.put((level, by, bx), block)
                    if self.painted is not None:  # once in memory: never read meanwhile
                        self.painted.add((level, by, bx))

    def levels(self, name: str) -> list:
        """The levels as arrays for a viewer (level 0 first), named ``name-<level>``.

        They are not dask arrays: napari reads a dask array through dask's scheduler,
        whose overhead alone, repeated at every refresh, stalls its thread for tens of
        milliseconds; these read the blocks in memory directly.
        """
        return [_CachedLevel(self, level, f"{name}-{level}")
                for level in range(len(self.arrays))]


class _CachedLevel:
    """One level of a :class:`CachedPyramid` as a 2D array for napari: indexing reads
    the blocks in memory (and, for blocks not in memory, the level's array)."""

    ndim = 2

    def __init__(self, pyramid: CachedPyramid, level: int, name: str = ""):
        self.pyramid, self.level, self.name = pyramid, level, name
        self.shape = pyramid.shape(level)
        self.dtype = pyramid.dtype
        self.size = self.shape[0] * self.shape[1]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self.pyramid.read(self.level, 0, self.shape[0], 0, self.shape[1])
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (3 - len(key)) + key[at + 1 :]
        key = tuple(int(k) if isinstance(k, np.integer) else k for k in key)
        key = key + (slice(None),) * (2 - len(key))
        if not all(isinstance(k, slice | int) for k in key) or len(key) != 2:
            return np.asarray(self)[key]  # fancy indexing: on the whole level
        ranges = []
        for k, size in zip(key, self.shape, strict=True):
            if isinstance(k, int):
                if not -size <= k < size:
                    raise IndexError(f"index {k} is out of bounds for size {size}")
                k = k % size
                k = slice(k, k + 1)
            ranges.append(range(*k.indices(size)))
        rows, cols = ranges
        if not len(rows) or not len(cols):
            return np.zeros((len(rows), len(cols)), self.dtype)[
                tuple(0 if isinstance(k, int) else slice(None) for k in key)]
        y0, y1 = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
        x0, x1 = min(cols[0], cols[-1]), max(cols[0], cols[-1]) + 1
        region = self.pyramid.read(self.level, y0, y1, x0, x1)
        if rows.step != 1 or cols.step != 1:
            region = region[rows[0] - y0 :: rows.step, cols[0] - x0 :: cols.step][
                : len(rows), : len(cols)]
        return region[tuple(0 if isinstance(k, int) else slice(None) for k in key)]
