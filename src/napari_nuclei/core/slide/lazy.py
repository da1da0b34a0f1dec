"""A slide and its predicted labels as lazy pyramids of dask arrays, for viewers.

Nothing is read when a pyramid is built: each level is a dask array whose chunks read
their region through the slide's reader (:mod:`.reader`) when a viewer asks for them, so
opening a 100,000-pixel slide costs the time to read its header. The layer data tuples
returned here are what napari's reader contributions return; they carry the pixel size
as the layer scale (in µm when the slide says), so a scale bar reads true. No napari
import happens here.
"""

from __future__ import annotations

import math
import threading
import weakref
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..validate import load_json
from .reader import Slide, open_slide

# Chunk side of the lazy levels: large enough that a screenful is a few dozen reads.
CHUNK = 512
UNIT = "micrometer"


class _OpenSlide:
    """A slide shared by the arrays of its levels, closed when the last one goes.

    Reads are serialised with one lock: tiffslide and OpenSlide handles are not meant to
    be shared by threads.
    """

    def __init__(self, slide: Slide):
        self.slide = slide
        self.lock = threading.Lock()
        weakref.finalize(self, slide.close)


class LevelArray:
    """One level of a slide seen as a ``(height, width, 3)`` uint8 array.

    Indexing reads only the region asked for (dask asks chunk by chunk).
    """

    ndim = 3
    dtype = np.dtype(np.uint8)

    def __init__(self, opened: _OpenSlide, level: int):
        self._opened, self.level = opened, level
        self.slide = opened.slide
        size = self.slide.levels[level]
        self.shape = (size.height, size.width, 3)

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        rows, cols, channels = (k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        y0, y1, _ = rows.indices(self.shape[0])
        x0, x1, _ = cols.indices(self.shape[1])
        if y1 <= y0 or x1 <= x0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)[:, :, channels]
        with self._opened.lock:
            region = self.slide.read(self.level, x0, y0, x1 - x0, y1 - y0)
        region = region[:, :, channels]
        squeeze = tuple(i for i, k in enumerate(key) if not isinstance(k, slice))
        return region.squeeze(axis=squeeze) if squeeze else region


def slide_pyramid(slide: Slide, chunk: int = CHUNK) -> list:
    """Dask arrays over every level of an opened slide, level 0 first (nothing is read).

    Parameters
    ----------
    slide : Slide
        Closed when the arrays are no longer used.
    chunk : int
        Chunk side in pixels.

    Returns
    -------
    list of dask.array.Array
        ``(height, width, 3)`` uint8 each.
    """
    import dask.array as da

    opened = _OpenSlide(slide)
    return [da.from_array(LevelArray(opened, level), chunks=(chunk, chunk, 3),
                          asarray=False, fancy=False, name=f"slide-{id(slide)}-{level}")
            for level in range(len(slide.levels))]


def _scale(mpp: float | None) -> tuple[tuple[float, float], tuple[str, str] | None]:
    return ((mpp, mpp), (UNIT, UNIT)) if mpp else ((1.0, 1.0), None)


def slide_layer_data(path: str | Path, mpp: float | None = None) -> tuple:
    """A napari layer data tuple of a slide: a lazy multiscale RGB image.

    Parameters
    ----------
    path : str or Path
        A slide file or OME-Zarr image folder (anything :func:`.reader.open_slide` reads).
    mpp : float, optional
        Pixel size in µm, overriding the file's.

    Returns
    -------
    tuple
        ``(levels, metadata, "image")``; the slide stays open while the arrays live.

    Raises
    ------
    SlideError
        When the file is not a slide.
    """
    slide = open_slide(path)
    levels = slide_pyramid(slide)
    scale, units = _scale(mpp or slide.mpp)
    metadata = {
        "name": Path(path).name,
        "rgb": True,
        "multiscale": len(levels) > 1,
        # Given, so that napari computes nothing from the pixels when the layer is added.
        "contrast_limits": (0, 255),
        "scale": scale,
        "metadata": {"slide": str(Path(path).resolve()), "mpp": mpp or slide.mpp,
                     "backend": slide.backend},
    }
    if units:
        metadata["units"] = units
    return (levels if len(levels) > 1 else levels[0], metadata, "image")


def labels_layer_data(out_dir: str | Path) -> tuple:
    """A napari layer data tuple of a ``predict-slide`` output: its OME-Zarr labels as a
    lazy multiscale Labels layer, on the slide's scale.

    Parameters
    ----------
    out_dir : str or Path
        The slide's output folder (``OUT/<slide>``), or its ``nuclei.ome.zarr`` (NGFF 0.5
        or 0.4).

    Returns
    -------
    tuple
        ``(levels, metadata, "labels")``.

    Raises
    ------
    InputError
        When the folder holds no labels written by ``predict-slide``.
    """
    import dask.array as da
    import zarr

    from .ngff import is_zarr_group, ngff_multiscales
    from .outputs import LABELS_NAME

    path = Path(out_dir)
    if path.name != LABELS_NAME:
        path = path / LABELS_NAME
    if not is_zarr_group(path):
        raise InputError(path.parent, f"holds no {LABELS_NAME} (not a predict-slide output "
                         "folder)")
    group = zarr.open_group(str(path), mode="r")
    multiscales = ngff_multiscales(group)
    if not multiscales:
        raise InputError(path, "has no multiscales metadata yet: the slide job is not "
                         "finished (run predict-slide again to finish it)")
    first = multiscales[0]
    levels = [da.from_zarr(group[d["path"]]) for d in first["datasets"]]
    scale = first["datasets"][0]["coordinateTransformations"][0]["scale"]
    unit = next((a.get("unit") for a in first.get("axes", []) if isinstance(a, dict)), None)
    metadata = {
        "name": f"{path.parent.name} nuclei",
        "multiscale": len(levels) > 1,
        "scale": tuple(float(s) for s in scale[-2:]),
        "metadata": {"labels": str(path.resolve())},
    }
    if unit:
        metadata["units"] = (unit, unit)
    return (levels if len(levels) > 1 else levels[0], metadata, "labels")


def output_slide_path(out_dir: str | Path) -> Path:
    """The slide a ``predict-slide`` output folder was made from (its job plan says)."""
    from .job import JOB, PLAN_NAME

    plan = Path(out_dir) / JOB / PLAN_NAME
    try:
        return Path(load_json(plan)["slide"])
    except (InputError, ValueError, KeyError, TypeError):
        raise InputError(out_dir, "is not a predict-slide output folder (no readable "
                         f"{JOB}/{PLAN_NAME})") from None


# -- labels served from memory --------------------------------------------------------
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
                top, left = by * b, bx * b
                a0, a1 = max(y0, top), min(y1, top + block.shape[0])
                c0, c1 = max(x0, left), min(x1, left + block.shape[1])
                if a1 > a0 and c1 > c0:
                    out[a0 - y0 : a1 - y0, c0 - x0 : c1 - x0] = \
                        block[a0 - top : a1 - top, c0 - left : c1 - left]
        return out

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
        what a viewer sees next is the labels as painted)."""
        y1, x1 = y0 + values.shape[0], x0 + values.shape[1]
        b = self.block
        for level in range(len(self.arrays)):
            step = 2**level
            (a0, c0, a1, c1), blocks = self._blocks_under(level, y0, x0, y1, x1)
            if not blocks:
                continue
            # The level's pixels whose level-0 source lies in the rectangle.
            sampled = values[a0 * step - y0 :: step, c0 * step - x0 :: step][
                : a1 - a0, : c1 - c0]
            for by, bx in blocks:
                block = self._read_block(level, by, bx).copy()
                top, left = by * b, bx * b
                r0, r1 = max(a0, top), min(a1, top + block.shape[0])
                s0, s1 = max(c0, left), min(c1, left + block.shape[1])
                if r1 > r0 and s1 > s0:
                    block[r0 - top : r1 - top, s0 - left : s1 - left] = \
                        sampled[r0 - a0 : r1 - a0, s0 - c0 : s1 - c0]
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


def cached_labels_layer_data(out_dir: str | Path, region=None,
                             pyramid: CachedPyramid | None = None,
                             generation: int = 0) -> tuple:
    """:func:`labels_layer_data` served from memory: run it in a worker.

    Parameters
    ----------
    out_dir : str or Path
    region : tuple of int, optional
        The predicted region, level-0 slide pixels ``(x, y, width, height)``: its labels
        are read into memory now, coarsest level first, as far as the budget allows.
    pyramid : CachedPyramid, optional
        The pyramid a viewer showed the same labels with while the job ran: its blocks
        in memory are kept.
    generation : int
        Part of the dask names (a new one makes napari read the labels again).

    Returns
    -------
    tuple
        ``((levels, metadata, "labels"), pyramid)``.
    """
    import zarr

    levels, meta, kind = labels_layer_data(out_dir)
    levels = levels if isinstance(levels, list) else [levels]
    path = Path(meta["metadata"]["labels"])
    group = zarr.open_group(str(path), mode="r")
    arrays = _level_arrays(group, len(levels))
    if pyramid is not None and len(pyramid.arrays) == len(arrays):
        pyramid = pyramid.with_sources(arrays)
    else:
        pyramid = CachedPyramid(arrays)
    if region is not None:
        x, y, width, height = region
        factor, margin = _label_factor(path.parent)
        extent = (math.floor(y * factor), math.floor(x * factor),
                  math.ceil((y + height) * factor), math.ceil((x + width) * factor))
        if pyramid.painted is None:
            # Nuclei are kept by their centre, inside the region: their masks reach out
            # of it by less than a tile.
            pyramid.extent = (max(0, extent[0] - margin), max(0, extent[1] - margin),
                              extent[2] + margin, extent[3] + margin)
        pyramid.prefetch(*extent)
    cached = pyramid.levels(f"labels-{path.parent.name}-{generation}")
    return (cached if len(cached) > 1 else cached[0], meta, kind), pyramid


def _level_arrays(group, count: int) -> list:
    from .ngff import ngff_multiscales

    datasets = ngff_multiscales(group)[0]["datasets"][:count]
    return [group[d["path"]] for d in datasets]


def _label_factor(out_dir: Path) -> tuple[float, int]:
    """Label pixels per level-0 pixel of a ``predict-slide`` output and its tile side in
    label pixels (its job plan's)."""
    from .job import JOB, PLAN_NAME

    try:
        plan = load_json(Path(out_dir) / JOB / PLAN_NAME)
        return float(plan["factor"]), int(plan["tile"])
    except (InputError, ValueError, KeyError, TypeError):
        return 1.0, 2**31
