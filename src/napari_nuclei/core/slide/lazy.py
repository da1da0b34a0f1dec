"""A slide and its predicted labels as lazy pyramids of dask arrays, for viewers.

Nothing is read when a pyramid is built: each level is a dask array whose chunks read
their region through the slide's reader (:mod:`.readers`) when a viewer asks for them, so
opening a 100,000-pixel slide costs the time to read its header. The layer data tuples
returned here are what napari's reader contributions return; they carry the pixel size
as the layer scale (in µm when the slide says), so a scale bar reads true. No napari
import happens here. Labels served from memory are read through :mod:`.label_cache`.
"""

from __future__ import annotations

import math
import threading
import weakref
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..validate import load_json
from .label_cache import BLOCK, DEFAULT_BUDGET, BlockCache, CachedPyramid  # noqa: F401
from .readers import Slide, open_slide

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


class RegionLevel:
    """A slide level seen as a ``(height, width, 3)`` uint8 array: indexing with slices
    or integers reads the region asked for through :meth:`_region` (a subclass's)."""

    ndim = 3
    dtype = np.dtype(np.uint8)
    shape: tuple[int, int, int]

    def _region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        rows, cols, channels = (k if isinstance(k, slice) else slice(k, k + 1) for k in key)
        y0, y1, ys = rows.indices(self.shape[0])
        x0, x1, xs = cols.indices(self.shape[1])
        if y1 <= y0 or x1 <= x0:
            region = np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        else:
            region = self._region(y0, y1, x0, x1)[::ys, ::xs]
        region = region[:, :, channels]
        squeeze = tuple(i for i, k in enumerate(key) if not isinstance(k, slice))
        return region.squeeze(axis=squeeze) if squeeze else region


class LevelArray(RegionLevel):
    """One level of a slide, read from the slide when indexed (dask asks chunk by
    chunk)."""

    def __init__(self, opened: _OpenSlide, level: int):
        self._opened, self.level = opened, level
        self.slide = opened.slide
        size = self.slide.levels[level]
        self.shape = (size.height, size.width, 3)

    def _region(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        with self._opened.lock:
            return self.slide.read(self.level, x0, y0, x1 - x0, y1 - y0)


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


def slide_layer_data(path: str | Path, mpp: float | None = None,
                     progressive: bool = False) -> tuple:
    """A napari layer data tuple of a slide: a lazy multiscale RGB image.

    Parameters
    ----------
    path : str or Path
        A slide file or OME-Zarr image folder (anything :func:`.readers.open_slide` reads).
    mpp : float, optional
        Pixel size in µm, overriding the file's.
    progressive : bool
        Levels that never decode on the reading thread
        (:mod:`.progressive`: coarse first, sharp once decoded in a thread), for a
        viewer that redraws when told; the coarsest level is read now. Otherwise dask
        arrays that read what is asked when it is asked.

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
    if progressive:
        from .progressive import progressive_pyramid

        levels = progressive_pyramid(_OpenSlide(slide))
    else:
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
