"""Predict whole slides: a generator that streams tiles through the model into the outputs.

:func:`iter_predict_slide` yields a :class:`TileDone` after every tile and can be closed
between tiles (the GUI's stop button, Ctrl-C in the CLI); run again with the same
arguments, it continues where it stopped. :mod:`napari_nuclei.core.slide.cluster` runs
the same steps on a Dask cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import OptionError
from ..jobs import Notice
from ..predict.overlap import largest_training_nucleus, model_run_dir, overlap_for
from .job import (
    JOB,
    PREVIEW_NAME,
    OutputOptions,
    SlideJob,
    SlideResult,
    check_job_folder,
    load_result,
    prepare_folder,
)
from .measure import check_stain_vectors
from .ngff import DEFAULT_NGFF, NGFF_VERSIONS
from .output_lock import hold_output
from .outputs import LABELS_NAME, prepare_labels_store
from .pixel_size import resolve_pixel_size, run_training_mpp
from .plan import MEASURED_ON_LABELS, SlidePlan, ids_per_tile, slide_bytes
from .prefetch import prefetch
from .reader import Slide, SlideError, open_slide
from .regions import REGIONS_NAME, write_regions
from .tissue import make_overview, write_preview
from .work import predict_batches, read_tile, read_window

_SLIDE_SUFFIXES = (".ome.zarr", ".ome.tiff", ".ome.tif", ".zarr", ".tiff", ".tif", ".svs",
                   ".ndpi", ".scn", ".mrxs", ".vms", ".bif", ".png", ".jpg", ".jpeg")
# Mean channel spread (of 255) under which an overview is taken as grey, not a stain.
_GREY_SPREAD = 4.0


@dataclass(frozen=True)
class SlideOptions:
    """How to predict a slide (the ``predict-slide`` options).

    Attributes
    ----------
    tile_size : int or None
        Tile window side in prediction pixels (default: the run's test input size).
    overlap : int or None
        Tile overlap (default: from the largest training nucleus).
    mpp : float or None
        The slide's pixel size, overriding the file's.
    tissue_mask : bool or str
        How background tiles are found and skipped: ``auto``, ``brightfield``,
        ``fluorescence`` or ``none`` (True: ``auto``; False: ``none``).
    region : tuple of int or None
        ``(x, y, w, h)`` in level-0 pixels.
    regions : Path or None
        GeoJSON of region polygons (level-0 pixels).
    stain : str
        ``auto``, ``he`` or ``intensity``.
    stain_vectors : tuple of float
        Hematoxylin then eosin optical densities (R, G, B each) for ``he``; empty for
        QuPath's "H&E default".
    outputs : OutputOptions
    overwrite : bool
        Replace the job of another slide or settings in the output folder.
    batch_size : int
        Tiles per forward pass (more on a GPU); the nuclei found do not depend on it.
    ngff : str
        NGFF version of the labels: ``0.5`` (zarr 3, the default) or ``0.4`` (zarr 2,
        which QuPath and Bio-Formats read).
    """

    tile_size: int | None = None
    overlap: int | None = None
    mpp: float | None = None
    tissue_mask: bool | str = True
    region: tuple[int, int, int, int] | None = None
    regions: Path | None = None
    stain: str = "auto"
    outputs: OutputOptions = field(default_factory=OutputOptions)
    overwrite: bool = False
    batch_size: int = 1
    ngff: str = DEFAULT_NGFF
    stain_vectors: tuple[float, ...] = ()

    def __post_init__(self):
        if self.stain_vectors:
            try:
                # Frozen: the checked, plain-float values replace what was given.
                object.__setattr__(self, "stain_vectors",
                                   check_stain_vectors(self.stain_vectors))
            except ValueError as exc:
                raise OptionError("stain_vectors", str(exc)) from None
        if (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int)
                or self.batch_size < 1):
            raise OptionError("batch_size", f"must be a whole number of at least 1 (got "
                              f"{self.batch_size!r})")
        if self.ngff not in NGFF_VERSIONS:
            raise OptionError("ngff", f"must be one of {', '.join(NGFF_VERSIONS)} (got "
                              f"{self.ngff!r})")


@dataclass(frozen=True)
class ModelFacts:
    """What planning needs to know of the model (without its weights).

    ``model`` and ``checkpoint`` are resolved paths and ``weights_sha256`` the digest of
    the checkpoint's bytes, so that a job records which network made it: another run
    folder of the same name, or the same folder trained further, is another model.
    """

    model: str
    checkpoint: str
    input_size: int
    detections_per_image: int
    largest_nucleus: int | None
    mpp: float | None
    score_thresh: float | None = None
    weights_sha256: str = ""
    classes: tuple = ()  # ClassSet.to_json() of a model of several classes

    @classmethod
    def of(cls, model) -> ModelFacts:
        run_dir = model_run_dir(model)
        given = getattr(model, "weights", None)
        weights = Path(given).expanduser().resolve() if given is not None else None
        score = getattr(model, "score_thresh", None)
        return cls(str(run_dir.resolve()) if run_dir else "", str(weights or ""),
                   model.min_size_test, model.detections_per_image,
                   largest_training_nucleus(run_dir) if run_dir else None,
                   run_training_mpp(run_dir),
                   float(score) if isinstance(score, int | float) else None,
                   file_digest(weights) if weights is not None else "",
                   _classes_of(model))


def _classes_of(model) -> tuple:
    """A model's classes as a plan records them (empty for one class)."""
    classes = model.classes
    return tuple(classes.to_json()) if len(classes) > 1 else ()


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes (empty for no file), computed once per version."""
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    if not Path(path).is_file():
        return ""
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class TileDone:
    """Progress of a slide: ``done`` of ``total`` tiles predicted, ``nuclei`` so far;
    ``tile`` is the tile just predicted (-1 in the first report, before any)."""

    slide: str
    done: int
    total: int
    nuclei: int
    tile: int


def slide_name(path: Path) -> str:
    """A slide's name without its format suffixes (``a.ome.tif`` -> ``a``)."""
    name = path.name
    for suffix in _SLIDE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _stain(option: str, overview: np.ndarray) -> str:
    if option != "auto":
        return option
    spread = np.abs(overview.astype(np.int16) - overview.mean(axis=2, keepdims=True)).mean()
    return "he" if spread > _GREY_SPREAD else "intensity"


@dataclass
class StartedJob:
    """A slide opened and its job folder ready."""

    slide: Slide
    job: SlideJob
    plan: SlidePlan
    notices: list[Notice]
    tissue_mm2: float | None
    finished: SlideResult | None = None
    # Holds the output folder's writer lock until the job is closed.
    held: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)


# Below this share of tiles with tissue (and no region asked for), the job says so.
SPARSE_TISSUE = 0.05


def _tissue_advice(overview, asked: bool | str) -> str:
    """What to try when tissue detection of the kind used found (nearly) nothing."""
    from .tissue import slide_kind

    used = {True: "auto", False: "none"}.get(asked, asked)
    if used == "auto":
        used = slide_kind(overview.rgb)
    other = "brightfield" if used == "fluorescence" else "fluorescence"
    return f"try --tissue {other}, or --tissue none to predict every tile"


def _regions_digest(region, regions: Path | None) -> str:
    """What restricts the job: the region rectangle and the bytes of a regions file."""
    parts = [repr(tuple(region)) if region else ""]
    if regions is not None:
        parts.append(file_digest(Path(regions).expanduser().resolve()))
    return "|".join(parts)


def start_job(facts: ModelFacts, slide_path: Path, out_dir: Path,
              options: SlideOptions) -> StartedJob:
    """Open the slide, plan its tiles, and create or check its job folder.

    Raises
    ------
    InputError
        Bad slide, region, pixel size or output folder.
    """
    slide_path = Path(slide_path).expanduser().resolve()
    slide = open_slide(slide_path)
    held = contextlib.ExitStack()
    try:
        pixel = resolve_pixel_size(slide_path, slide.mpp, options.mpp, facts.mpp)
        notices = [Notice("info" if pixel.model_mpp else "warning",
                          f"{slide_path.name}: {pixel.message}")]
        tile = options.tile_size or facts.input_size
        overlap = (overlap_for(facts.largest_nucleus, tile) if options.overlap is None
                   else options.overlap)
        # Beyond half the tile, each tile's core shrinks towards a pixel and the tiles
        # towards one per pixel: hours for nothing the model would not see anyway.
        if not 0 <= overlap <= tile // 2:
            raise OptionError("overlap", f"must be from 0 to half the tile size ({tile // 2} "
                              f"for tiles of {tile}), got {overlap}")
        overview = make_overview(slide, pixel.slide_mpp, options.tissue_mask, options.region,
                                 options.regions)
        draft = SlidePlan(str(slide_path), slide.width, slide.height, slide_bytes(slide_path),
                          pixel.slide_mpp, pixel.factor, tile, overlap - overlap % 2,
                          ids_per_tile(facts.detections_per_image),
                          _stain(options.stain, overview.rgb), (), facts.model,
                          facts.checkpoint,
                          overview.downsample if overview.regions is not None else None,
                          facts.score_thresh, facts.weights_sha256,
                          dataclasses.astuple(options.outputs),
                          _regions_digest(options.region, options.regions),
                          measured_on=MEASURED_ON_LABELS, ngff=options.ngff,
                          stain_vectors=options.stain_vectors, classes=facts.classes)
        cores = draft.cores_level0()
        chosen = [overview.covers(*core) for core in cores]
        plan = SlidePlan(**{**draft.__dict__, "selected": tuple(np.flatnonzero(chosen).tolist())})
        if plan.rows * plan.cols * plan.ids_per_tile >= 2**32:
            raise SlideError(slide_path, "is too large for 32-bit nucleus ids at this tile "
                             "size: raise --tile-size")
        check_job_folder(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # One writer per output folder: a second predict-slide, or a window written back,
        # waits its turn instead of interleaving its files with this job's.
        held.enter_context(hold_output(out_dir))
        resumed = prepare_folder(out_dir, plan, options.overwrite)
        # The labels' zarr format follows the NGFF version; the job reopens what is here.
        prepare_labels_store(out_dir / LABELS_NAME, plan.ngff)
        job_dir = out_dir / JOB
        if overview.region_polygons is not None:
            write_regions(job_dir / REGIONS_NAME, overview.region_polygons)
        write_preview(out_dir / PREVIEW_NAME, overview, cores, chosen)
        tissue_mm2 = (overview.tissue_area_px() * pixel.slide_mpp**2 / 1e6
                      if pixel.slide_mpp else None)
        job = SlideJob(out_dir, plan, functools.partial(read_tile, slide, plan))
        started = StartedJob(slide, job, plan, notices, tissue_mm2, held=held)
        if resumed:
            started.finished = load_result(out_dir)
            if started.finished is None:
                notices.append(Notice("info", f"{slide_path.name}: continuing the job in "
                                      f"{out_dir}"))
        if not plan.selected:
            notices.append(Notice("warning", f"{slide_path.name}: no tissue found "
                                  f"({_tissue_advice(overview, options.tissue_mask)})"))
        elif (options.region is None and options.regions is None
              and len(plan.selected) < SPARSE_TISSUE * len(cores)):
            notices.append(Notice("warning", f"{slide_path.name}: only "
                                  f"{len(plan.selected)} of {len(cores)} tiles hold tissue; "
                                  f"if tissue was missed, "
                                  f"{_tissue_advice(overview, options.tissue_mask)}"))
        return started
    except BaseException:
        held.close()
        slide.close()
        raise


def iter_predict_slide(
    model, slide_path: str | Path, out_dir: str | Path, options: SlideOptions | None = None
) -> Generator[TileDone | Notice, None, SlideResult]:
    """Predict one slide tile by tile, in this process.

    Parameters
    ----------
    model : NucleiModel
        From :func:`napari_nuclei.core.models.load_model`.
    slide_path : str or Path
    out_dir : str or Path
        The slide's own output folder.
    options : SlideOptions, optional

    Yields
    ------
    TileDone or Notice

    Returns
    -------
    SlideResult
    """
    options = options or SlideOptions()
    started_at = time.perf_counter()
    started = start_job(ModelFacts.of(model), Path(slide_path), Path(out_dir), options)

    def predict_pending(pending: list[int]) -> Iterator[list[tuple[int, int]]]:
        # A thread reads and decodes the next tiles while the network works.
        read = functools.partial(read_window, started.slide, started.plan)
        with contextlib.closing(prefetch(read, pending, 2 * options.batch_size)) as tiles:
            yield from predict_batches(model, started.plan, started.job.job_dir, tiles,
                                       options.batch_size, started.job.cache.written_record)

    return (yield from run_job(started, options, started_at, predict_pending))


def run_job(started: StartedJob, options: SlideOptions, started_at: float,
            predict_pending: Callable[[list[int]], Iterator[list[tuple[int, int]]]],
            ) -> Generator[TileDone | Notice, None, SlideResult]:
    """Drive a started job: report, predict the pending tiles, finalize and paint as
    their neighbours allow, and write the outputs; closes the slide when done or closed.

    Parameters
    ----------
    started : StartedJob
        From :func:`start_job`.
    options : SlideOptions
    started_at : float
        ``time.perf_counter()`` when the run began.
    predict_pending : callable
        Takes the tiles not yet predicted (in order) and yields lists of
        ``(tile, nuclei owned)`` as tiles are predicted (in any order); it is closed
        when the job is.
    """
    try:
        yield from started.notices
        if started.finished is not None:
            return started.finished
        job, plan = started.job, started.plan
        job.advance()
        nuclei = job.nuclei_so_far()
        pending = job.pending()
        done = len(plan.selected) - len(pending)
        yield TileDone(plan.slide, done, len(plan.selected), nuclei, -1)
        with contextlib.closing(predict_pending(pending)) as finished_batches:
            for finished in finished_batches:
                job.advance([index for index, _ in finished])
                for index, owned in finished:
                    nuclei += owned
                    done += 1
                    yield TileDone(plan.slide, done, len(plan.selected), nuclei, index)
        return job.finish(options.outputs, started.tissue_mm2, started_at)
    finally:
        started.held.close()
        started.slide.close()
