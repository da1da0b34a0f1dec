"""A slide's levels for a viewer whose thread never decodes a tile.

Reading the view of a slide at full resolution decodes a few dozen JPEG tiles: 70 to
300 ms here, on the viewer's thread when napari slices the layer. Here the levels are
served from decoded blocks in memory. A block not decoded yet is drawn at once from the
slide's coarsest level (kept whole in memory, read when the slide is opened) and asked
for from a decoding thread, the newest view first; once blocks are decoded, listeners
are told (at most every ``NOTIFY_S`` seconds), and the viewer draws the view again, sharp.
The same idea as any slide viewer's coarse-then-sharp tiles.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from .lazy import RegionLevel

BLOCK = 512  # block side in pixels: the unit decoded and kept
DEFAULT_BUDGET = 512 * 2**20  # bytes of decoded blocks kept (least recently used go)
COARSE_MAX_PIXELS = 4096 * 4096  # a coarsest level larger than this is not kept whole
NOTIFY_S = 0.1
BACKGROUND = 245  # drawn where nothing is known yet (a slide's glass is near white)


class TileStore:
    """Decoded blocks of every level of one slide, filled by a decoding thread.

    Parameters
    ----------
    opened : object
        The opened slide as the lazy levels share it: ``.slide`` (a :class:`Slide`,
        closed when ``opened`` goes) and ``.lock`` (serialises reads of the slide, whose
        handle is not shared by threads); kept open while the store lives.
    budget : int
        Bytes of decoded blocks kept.
    """

    def __init__(self, opened, budget: int = DEFAULT_BUDGET):
        self._opened = opened
        self.slide, self.lock, self.budget = opened.slide, opened.lock, budget
        self.shapes = [(size.height, size.width) for size in self.slide.levels]
        self._blocks: OrderedDict = OrderedDict()
        self._bytes = 0
        self._wanted: OrderedDict = OrderedDict()  # blocks asked for, newest last
        self._condition = threading.Condition()
        self._closed = False
        self.listeners: list[Callable[[], None]] = []
        self.decoded = 0  # blocks decoded so far (for tests and benchmarks)
        self.coarse = self._read_coarsest()
        # The thread holds the store only while it works (see _decode_forever).
        self.thread = threading.Thread(target=_decode_forever, args=(weakref.ref(self),),
                                       name="slide tiles", daemon=True)
        self.thread.start()

    def _read_coarsest(self) -> np.ndarray | None:
        height, width = self.shapes[-1]
        if height * width > COARSE_MAX_PIXELS:
            return None
        with self.lock:
            return np.ascontiguousarray(self.slide.read(len(self.shapes) - 1, 0, 0, width,
                                                        height))

    # -- the viewer's thread -------------------------------------------------------------
    def region(self, level: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The pixels of a level's region: decoded blocks where they are in memory, the
        coarsest level (or background) elsewhere, those blocks asked for. No decoding."""
        out = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        missing = []
        b = BLOCK
        for by in range(y0 // b, -(-y1 // b)):
            for bx in range(x0 // b, -(-x1 // b)):
                top, left = max(y0, by * b), max(x0, bx * b)
                bottom, right = min(y1, (by + 1) * b), min(x1, (bx + 1) * b)
                block = self._get((level, by, bx))
                target = out[top - y0:bottom - y0, left - x0:right - x0]
                if block is not None:
                    target[:] = block[top - by * b:bottom - by * b,
                                      left - bx * b:right - bx * b]
                else:
                    self._coarse_into(target, level, top, bottom, left, right)
                    missing.append((level, by, bx))
        if missing:
            self._want(missing)
        return out

    def _coarse_into(self, target: np.ndarray, level: int, top: int, bottom: int,
                     left: int, right: int) -> None:
        coarse = self.coarse
        if coarse is None or level == len(self.shapes) - 1:
            target[:] = BACKGROUND
            return
        (height, width), (ch, cw) = self.shapes[level], coarse.shape[:2]
        rows = np.minimum((np.arange(top, bottom) + 0.5) * ch / height, ch - 1).astype(int)
        cols = np.minimum((np.arange(left, right) + 0.5) * cw / width, cw - 1).astype(int)
        target[:] = coarse[rows[:, None], cols[None, :]]

    def _get(self, key):
        if self.coarse is not None and key[0] == len(self.shapes) - 1:
            (_, by, bx), b = key, BLOCK
            return self.coarse[by * b:(by + 1) * b, bx * b:(bx + 1) * b]
        with self._condition:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
            return block

    def _want(self, keys: list) -> None:
        with self._condition:
            for key in keys:
                self._wanted.pop(key, None)
                self._wanted[key] = True  # the newest view's blocks are decoded first
            self._condition.notify()

    def close(self) -> None:
        """Stop the decoding thread (blocks kept are dropped)."""
        with self._condition:
            self._closed = True
            self._blocks.clear()
            self._wanted.clear()
            self._condition.notify()

    # -- the decoding thread -------------------------------------------------------------
    def _next_wanted(self, timeout: float):
        with self._condition:
            if not self._wanted and not self._closed:
                self._condition.wait(timeout)
            if self._closed or not self._wanted:
                return None
            key, _ = self._wanted.popitem(last=True)
            return key

    def _decode(self, key) -> None:
        level, by, bx = key
        height, width = self.shapes[level]
        b = BLOCK
        y0, x0 = by * b, bx * b
        with self.lock:
            block = np.ascontiguousarray(self.slide.read(level, x0, y0, min(b, width - x0),
                                                         min(b, height - y0)))
        with self._condition:
            if self._closed:
                return
            if key not in self._blocks:
                self._blocks[key] = block
                self._bytes += block.nbytes
            while self._bytes > self.budget and len(self._blocks) > 1:
                _, dropped = self._blocks.popitem(last=False)
                self._bytes -= dropped.nbytes
            self.decoded += 1

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


def _decode_forever(store_ref) -> None:
    """Body of the decoding thread: holds the store only while working, so that a store
    no viewer uses any more is collected (and its thread ends)."""
    import time

    last_notice, unannounced = 0.0, False
    while True:
        store = store_ref()
        if store is None:
            return
        key = store._next_wanted(timeout=0.5 if not unannounced else NOTIFY_S)
        if store._closed:
            return
        if key is not None:
            try:
                store._decode(key)
                unannounced = True
            except Exception:  # a damaged tile: drawn from the coarse level, as it is
                pass
        now = time.monotonic()
        if unannounced and (key is None or now - last_notice >= NOTIFY_S):
            store._notify()
            last_notice, unannounced = now, False
        del store


class ProgressiveLevel(RegionLevel):
    """One level of a :class:`TileStore` as a ``(height, width, 3)`` uint8 array for a
    viewer; indexing never decodes (see the module's description)."""

    def __init__(self, store: TileStore, level: int):
        self.store, self.level = store, level
        height, width = store.shapes[level]
        self.shape = (height, width, 3)
        self.size = height * width * 3

    def _region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return self.store.region(self.level, y0, y1, x0, x1)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:, :]
        return whole if dtype is None else whole.astype(dtype, copy=False)


def progressive_pyramid(opened, budget: int = DEFAULT_BUDGET) -> list:
    """The levels of an opened slide (see :class:`TileStore`) as
    :class:`ProgressiveLevel` arrays, level 0 first; their ``store``'s ``listeners`` are
    told when blocks were decoded (a viewer joins them to redraw)."""
    store = TileStore(opened, budget)
    return [ProgressiveLevel(store, level) for level in range(len(store.shapes))]
