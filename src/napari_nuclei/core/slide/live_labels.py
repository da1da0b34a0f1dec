"""A slide's labels while its job runs: coarse levels kept up to date as tiles are painted.

The engine writes the full-resolution labels chunk by chunk as tiles finish, but builds
the pyramid and its OME-Zarr metadata only at the end. So that a viewer can show the
labels filling in, the job process keeps its own coarse levels (``job/live.zarr``,
level ``k`` is ``s0[::2**k, ::2**k]``, the same nearest-neighbour rule as the final
pyramid), updated for each newly painted tile core: work per tile, not per slide. The
viewer reads them lazily next to ``s0`` (:func:`live_labels_layer_data`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import InputError
from ..validate import load_json
from .job import JOB, PLAN_NAME
from .outputs import LABELS_NAME, MIN_PYRAMID_SIDE
from .plan import SlidePlan
from .work import PAINTED

LIVE_NAME = "live.zarr"


def _level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Shapes of the coarse levels the final pyramid will have (level 1 first)."""
    shapes, shape = [], (height, width)
    while min(shape) // 2 >= MIN_PYRAMID_SIDE:
        shape = (-(-shape[0] // 2), -(-shape[1] // 2))
        shapes.append(shape)
    return shapes


def _plan(out_dir: Path) -> SlidePlan:
    return SlidePlan.from_json(load_json(out_dir / JOB / PLAN_NAME))


class LivePyramid:
    """The coarse levels of a running job's labels, updated tile core by tile core.

    Parameters
    ----------
    out_dir : Path
        The slide's output folder, its job started (``s0`` created).
    """

    def __init__(self, out_dir: str | Path):
        import zarr

        self.out_dir = Path(out_dir)
        self.plan = _plan(self.out_dir)
        self.base = zarr.open_array(str(self.out_dir / LABELS_NAME / "s0"), mode="r")
        group = zarr.open_group(str(self.out_dir / JOB / LIVE_NAME), mode="a", zarr_format=3)
        self.levels = []
        for k, shape in enumerate(_level_shapes(*self.base.shape), start=1):
            name = f"s{k}"
            self.levels.append(group[name] if name in group else group.create_array(
                name, shape=shape, chunks=(self.plan.stride,) * 2, dtype="uint32",
                fill_value=0))
        self.seen: set[int] = set()

    def update(self) -> int:
        """Bring the coarse levels up to date with the tiles painted since the last call;
        returns how many tile cores were added."""
        painted = {int(p.name) for p in (self.out_dir / JOB / PAINTED).iterdir()
                   if p.name.isdigit()}
        new = sorted(painted - self.seen)
        for index in new:
            self._add_core(*(int(v) for v in self.plan.tile_at(index).core))
        self.seen.update(new)
        return len(new)

    def _add_core(self, y0: int, x0: int, y1: int, x1: int) -> None:
        y1, x1 = min(y1, self.base.shape[0]), min(x1, self.base.shape[1])
        block = self.base[y0:y1, x0:x1]
        if not block.any():
            return
        for k, level in enumerate(self.levels, start=1):
            step = 2**k
            # The level-k pixels whose source pixel (k * step) lies in this core.
            a0, b0 = -(-y0 // step), -(-x0 // step)
            a1, b1 = -(-y1 // step), -(-x1 // step)
            if a1 > a0 and b1 > b0:
                level[a0:a1, b0:b1] = block[a0 * step - y0 :: step, b0 * step - x0 :: step][
                    : a1 - a0, : b1 - b0]


def remove_live_levels(out_dir: str | Path) -> None:
    """Delete the live levels of a finished job (the final pyramid replaces them)."""
    shutil.rmtree(Path(out_dir) / JOB / LIVE_NAME, ignore_errors=True)


def live_labels_layer_data(out_dir: str | Path, generation: int = 0) -> tuple:
    """A napari layer data tuple of a running job's labels: ``s0`` and the live coarse
    levels, lazily, on the slide's scale.

    Parameters
    ----------
    out_dir : str or Path
    generation : int
        Changes the dask names so that napari's chunk cache does not serve what an earlier
        refresh read.

    Returns
    -------
    tuple
        ``(levels, metadata, "labels")``.

    Raises
    ------
    InputError
        When the job has not created its labels yet.
    """
    import dask.array as da
    import zarr

    out_dir = Path(out_dir)
    try:
        plan = _plan(out_dir)
        base = zarr.open_array(str(out_dir / LABELS_NAME / "s0"), mode="r")
        group = zarr.open_group(str(out_dir / JOB / LIVE_NAME), mode="r")
    except (InputError, OSError, ValueError, KeyError, TypeError):
        raise InputError(out_dir, "has no labels yet (the slide job has not started)") \
            from None
    arrays = [base] + [group[f"s{k}"] for k in range(1, len(_level_shapes(*base.shape)) + 1)
                       if f"s{k}" in group]
    levels = [da.from_array(a, chunks=a.chunks, name=f"live-{out_dir.name}-{generation}-{k}",
                            asarray=True)
              for k, a in enumerate(arrays)]
    return _layer_tuple(out_dir, levels, plan.mpp, plan.factor)


class _Zeros:
    """A level the job has not written yet: background everywhere."""

    def __init__(self, shape, dtype):
        import numpy as np

        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __getitem__(self, key):
        import numpy as np

        rows, cols = key
        return np.zeros((len(range(*rows.indices(self.shape[0]))),
                         len(range(*cols.indices(self.shape[1])))), self.dtype)


class LiveLabels:
    """A running job's labels as a viewer sees them, kept current by a worker.

    ``s0`` and the coarse levels are read through a
    :class:`~napari_nuclei.core.slide.lazy.CachedPyramid`: after each tile, the worker
    relaying the job's reports calls :meth:`update`, which reads the ``s0`` pixels under
    the tile cores painted since and paints them into the blocks in memory at every
    level (the same nearest-neighbour rule as the final pyramid). A refresh of the
    viewer (:meth:`layer_data`) then reads nothing from disk on its thread.

    Parameters
    ----------
    out_dir : str or Path
        The slide's output folder, its job started.

    Raises
    ------
    InputError
        When the job has not created its labels yet.
    """

    def __init__(self, out_dir: str | Path):
        import zarr

        from .label_cache import CachedPyramid

        self.out_dir = Path(out_dir)
        try:
            self.plan = _plan(self.out_dir)
            self.base = zarr.open_array(str(self.out_dir / LABELS_NAME / "s0"), mode="r")
        except (InputError, OSError, ValueError, KeyError, TypeError):
            raise InputError(self.out_dir, "has no labels yet (the slide job has not "
                             "started)") from None
        try:
            group = zarr.open_group(str(self.out_dir / JOB / LIVE_NAME), mode="r")
        except (OSError, ValueError, KeyError, TypeError):
            group = None
        arrays = [self.base]
        for k, shape in enumerate(_level_shapes(*self.base.shape), start=1):
            name = f"s{k}"
            arrays.append(group[name] if group is not None and name in group
                          else _Zeros(shape, self.base.dtype))
        self.pyramid = CachedPyramid(arrays)
        # Only tiles painted hold labels in a job's output: the other blocks are served
        # as background, with no read.
        self.pyramid.painted = set()
        self.seen: set[int] = set()
        self.generation = 0

    def update(self) -> int:
        """Paint the tile cores painted since the last call into the blocks in memory;
        returns how many."""
        import numpy as np

        painted = {int(p.name) for p in (self.out_dir / JOB / PAINTED).iterdir()
                   if p.name.isdigit()}
        new = sorted(painted - self.seen)
        height, width = self.base.shape
        for index in new:
            y0, x0, y1, x1 = (int(v) for v in self.plan.tile_at(index).core)
            y1, x1 = min(y1, height), min(x1, width)
            if y1 > y0 and x1 > x0:
                self.pyramid.paint(y0, x0, np.asarray(self.base[y0:y1, x0:x1]))
        self.seen.update(new)
        return len(new)

    def layer_data(self) -> tuple:
        """A napari layer data tuple of the labels as they stand (new dask names each
        time, so that napari draws them again)."""
        self.generation += 1
        levels = self.pyramid.levels(f"live-{self.out_dir.name}-{self.generation}")
        return _layer_tuple(self.out_dir, levels, self.plan.mpp, self.plan.factor)


def empty_labels_layer_data(out_dir: str | Path, size: tuple[int, int],
                            mpp: float | None) -> tuple:
    """The layer data of a region's labels before its job has painted a tile: background
    at every level, read from nowhere, on the slide's level-0 grid.

    The dock makes the region's Labels layer from it before the job starts, so that
    napari builds no layer while the job runs: the job's refreshes swap the data in (and
    the pixel size, when the model predicts at another one).

    Parameters
    ----------
    out_dir : str or Path
        The region's output folder (it need not exist yet).
    size : tuple of int
        The slide's level-0 ``(width, height)``.
    mpp : float or None
        Its microns per pixel.
    """
    from .label_cache import CachedPyramid

    width, height = size
    shapes = [(height, width), *_level_shapes(height, width)]
    pyramid = CachedPyramid([_Zeros(shape, "uint32") for shape in shapes])
    pyramid.painted = set()  # no block painted: background, no read
    levels = pyramid.levels(f"empty-{Path(out_dir).name}")
    return _layer_tuple(Path(out_dir), levels, mpp, 1.0)


def _layer_tuple(out_dir: Path, levels: list, mpp: float | None, factor: float) -> tuple:
    pixel = (mpp or 1.0) / factor
    metadata = {"name": f"{out_dir.name} nuclei", "multiscale": len(levels) > 1,
                "scale": (pixel, pixel), "metadata": {"labels": str(out_dir / LABELS_NAME)}}
    if mpp:
        metadata["units"] = ("micrometer", "micrometer")
    return (levels if len(levels) > 1 else levels[0], metadata, "labels")
