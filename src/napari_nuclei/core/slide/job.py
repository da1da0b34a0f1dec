"""A slide's output folder: its job state, what is done, and the final outputs.

``OUT/<slide>/job/`` holds ``job.json`` (the plan), one record per predicted tile, the
final lists and part files, and ``complete.json`` once every output is written. Running
the same command again continues where it stopped; a folder that holds another slide's
job, or the same slide with other settings, is refused unless ``overwrite`` is asked.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import remove_stale_temp_files_in, write_json_atomic
from ..errors import InputError
from ..validate import load_arrays, load_json
from .outputs import (
    CSV_NAME,
    GEOJSON_NAME,
    LABELS_NAME,
    TABLE_NAME,
    LabelsStore,
    assemble_geojson,
    assemble_table,
    table_metadata,
)
from .plan import SlidePlan
from .work import (
    FINAL,
    MEASURED,
    PAINTED,
    PARTS,
    RECORDS,
    RecordCache,
    chunks_under,
    finalize_tile,
    measure_tile,
    paint_chunk,
)

JOB = "job"
PLAN_NAME = "job.json"
COMPLETE_NAME = "complete.json"
PREVIEW_NAME = "tissue.png"


@dataclass
class SlideResult:
    """What a finished slide job produced.

    Attributes
    ----------
    slide : str
    out_dir : Path
    tiles : int
        Tiles in the grid.
    predicted : int
        Tiles predicted (tissue within the regions).
    nuclei : int
    wider_than_overlap : int
        Nuclei no tile saw whole in its core, kept once from their cut views.
    capped_tiles : int
        Tiles where the network hit its detection cap.
    tissue_mm2 : float or None
    seconds : float
        Wall time of the run that finished the job.
    outputs : dict
        Name to path of each output.
    nuclei_per_class : dict
        Nuclei of each class, by name, for a model of several classes (else empty).
    """

    slide: str
    out_dir: Path
    tiles: int
    predicted: int
    nuclei: int
    wider_than_overlap: int
    capped_tiles: int
    tissue_mm2: float | None
    seconds: float
    outputs: dict = field(default_factory=dict)
    nuclei_per_class: dict = field(default_factory=dict)

    @property
    def skipped_share(self) -> float:
        return 1 - self.predicted / self.tiles if self.tiles else 0.0

    def to_json(self) -> dict:
        return {**self.__dict__, "out_dir": str(self.out_dir)}


@dataclass(frozen=True)
class OutputOptions:
    """Which outputs to write besides the labels and the Parquet table."""

    csv: bool = False
    geojson: bool = True
    gzip: bool = False


def _contents(out_dir: Path) -> list[Path]:
    """What a folder holds besides its writer lock."""
    from .output_lock import LOCK_NAME

    if not out_dir.is_dir():
        return []
    return [p for p in out_dir.iterdir() if p.name != LOCK_NAME]


def check_job_folder(out_dir: Path) -> None:
    """Refuse, before anything is written into it, a folder that holds something other
    than a slide job (the user's files).

    Raises
    ------
    InputError
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "is a file, not an output folder")
    if _contents(out_dir) and not (out_dir / JOB / PLAN_NAME).is_file():
        raise InputError(out_dir, "exists and is not a slide job folder: choose another "
                         "output folder (nothing was changed)")


def prepare_folder(out_dir: Path, plan: SlidePlan, overwrite: bool) -> bool:
    """Create the slide's folder or check that it holds this same job.

    Returns
    -------
    bool
        True when the folder already holds this job (it will be continued).

    Raises
    ------
    InputError
        When the folder holds something else and ``overwrite`` is not set.
    """
    plan_path = out_dir / JOB / PLAN_NAME
    if _contents(out_dir):
        check_job_folder(out_dir)
        try:
            saved = SlidePlan.from_json(load_json(plan_path))
        except (InputError, ValueError, KeyError, TypeError):
            saved = None
        if saved == plan:
            return True
        if not overwrite:
            if saved is not None and saved.identity() != plan.identity():
                problem = f"holds the job of another slide ({Path(saved.slide).name})"
            elif saved is not None:
                names = {"weights_sha256": "checkpoint contents", "checkpoint": "checkpoint",
                         "model": "model folder", "outputs": "output files",
                         "regions_sha256": "regions", "selected": "tiles to predict",
                         "measured_on": "made by an earlier version",
                         "stain_vectors": "stain vectors",
                         "ngff": "NGFF version"}
                changed = ", ".join(names.get(n, n) for n in saved.differences(plan))
                problem = f"holds a job of this slide with other settings ({changed})"
            else:
                problem = "holds a job of this slide with other settings"
            raise InputError(out_dir, f"{problem}: use --overwrite to replace it, or "
                             "another output folder")
        for path in _contents(out_dir):  # all but the lock this writer holds
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for sub in (RECORDS, FINAL, PARTS, PAINTED, MEASURED):
        (out_dir / JOB / sub).mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan_path, plan.to_json(), indent=1)
    return False


def check_output_root(output: Path, summary_name: str, summary_header: str,
                      overwrite: bool) -> None:
    """Check, before anything is written, the folder that receives one subfolder per
    slide and the cohort summary.

    Raises
    ------
    InputError
        When it is a file, the folder of one slide's job (the slides would nest inside
        it), or holds a ``summary_name`` that is not a summary of slides (the user's
        own file, which would be replaced) and ``overwrite`` is not set.
    """
    if output.exists() and not output.is_dir():
        raise InputError(output, "is a file, not an output folder")
    if (output / JOB / PLAN_NAME).is_file():
        raise InputError(output, "is the output folder of one slide: give the folder that "
                         "holds it (each slide gets its own subfolder)")
    summary = output / summary_name
    if summary.exists() and not overwrite:
        try:
            with open(summary, encoding="utf-8") as fh:
                first = fh.readline().strip()
        except (OSError, UnicodeDecodeError):
            first = None
        # A summary of a model of several classes has a column per class after these.
        if first is None or not (first == summary_header
                                 or first.startswith(summary_header + ",")):
            raise InputError(summary, "exists and is not a summary of slides: it would be "
                             "replaced; choose another output folder or use --overwrite")


def _done(folder: Path, suffix: str = "") -> set[int]:
    return {int(p.name[:7]) for p in folder.glob(f"*{suffix}") if p.name[:7].isdigit()}


class SlideJob:
    """Which tiles are predicted, finalized, painted and measured; runs the last three
    steps as soon as their neighbours allow.

    Parameters
    ----------
    out_dir : Path
        The slide's output folder (prepared with :func:`prepare_folder`).
    plan : SlidePlan
    read_pixels : callable
        ``(top, left, bottom, right)`` in prediction pixels to the slide's pixels there,
        for measuring (:func:`~napari_nuclei.core.slide.work.read_tile`).
    """

    def __init__(self, out_dir: Path, plan: SlidePlan,
                 read_pixels: Callable[[int, int, int, int], np.ndarray]):
        self.out_dir, self.plan, self.read_pixels = out_dir, plan, read_pixels
        self.job_dir = out_dir / JOB
        # Tiles write their files without looking for stale temporary files (a scan of a
        # folder of thousands): those of writers that died are removed here, once.
        for sub in (RECORDS, FINAL, PARTS):
            remove_stale_temp_files_in(self.job_dir / sub)
        # Finalizing reads the rows around a tile and painting the rows around those: keep
        # about eight rows of tiles, so that each record is read from disk about once.
        self.cache = RecordCache(self.job_dir, plan, size=8 * plan.cols + 16)
        self.labels = LabelsStore(out_dir / LABELS_NAME, plan.height, plan.width, plan.stride,
                                  *((plan.mpp / plan.factor, "micrometer") if plan.mpp
                                    else (1.0 / plan.factor, None)))
        n_tiles = plan.rows * plan.cols
        selected = set(plan.selected)
        self.predicted = _done(self.job_dir / RECORDS, ".npz") | (set(range(n_tiles)) - selected)
        self.finalized = _done(self.job_dir / FINAL, ".npz") | (set(range(n_tiles)) - selected)
        self.painted = _done(self.job_dir / PAINTED)
        self.measured = _done(self.job_dir / MEASURED) | (set(range(n_tiles)) - selected)
        self._waiting_finalize = set(range(n_tiles)) - self.finalized
        self._waiting_paint = set(range(n_tiles)) - self.painted
        self._waiting_measure = set(range(n_tiles)) - self.measured
        self._chunks_under: dict[int, set[int]] = {}

    @property
    def complete_path(self) -> Path:
        return self.job_dir / COMPLETE_NAME

    def pending(self) -> list[int]:
        """Selected tiles not yet predicted, row by row."""
        return [t for t in self.plan.selected if t not in self.predicted]

    def nuclei_so_far(self) -> int:
        total = 0
        for index in sorted(set(self.plan.selected) & self.predicted):
            total += len(load_arrays(self.job_dir / RECORDS / f"{index:07d}.npz")["ids"])
        return total

    def advance(self, predicted: list[int] | None = None) -> None:
        """Record newly predicted tiles, then finalize, paint and measure every tile whose
        neighbours are ready (all waiting tiles are checked when ``predicted`` is None)."""
        plan = self.plan
        if predicted is None:
            to_finalize = set(self._waiting_finalize)
        else:
            self.predicted.update(predicted)
            to_finalize = {n for t in predicted for n in plan.neighbours(t, 1)}
        finalized = []
        for index in sorted(to_finalize & self._waiting_finalize):
            if all(n in self.predicted for n in plan.neighbours(index, 1)):
                finalize_tile(self.cache, index)
                self.finalized.add(index)
                self._waiting_finalize.discard(index)
                finalized.append(index)
        to_paint = (set(self._waiting_paint) if predicted is None
                    else {n for t in finalized for n in plan.neighbours(t, 2)})
        painted = []
        for index in sorted(to_paint & self._waiting_paint):
            if all(n in self.finalized for n in plan.neighbours(index, 2)):
                paint_chunk(self.cache, self.labels, index)
                self.painted.add(index)
                self._waiting_paint.discard(index)
                painted.append(index)
        # A tile's nuclei reach the chunks around it (those merged from cut views, one
        # further): it is measured once all of them are painted.
        to_measure = (set(self._waiting_measure) if predicted is None
                      else {n for t in painted for n in plan.neighbours(t, 2)})
        for index in sorted(to_measure & self._waiting_measure):
            if index not in self.painted:
                continue
            if index not in self._chunks_under:
                self._chunks_under[index] = chunks_under(self.cache, index)
            if self._chunks_under[index] <= self.painted:
                measure_tile(self.cache, self.labels, self.read_pixels, index)
                self.measured.add(index)
                self._waiting_measure.discard(index)
                del self._chunks_under[index]

    def finish(self, outputs: OutputOptions, tissue_mm2: float | None,
               started: float) -> SlideResult:
        """Write the pyramid, the table and the GeoJSON; mark the job complete."""
        self.advance()
        if self._waiting_paint or self._waiting_measure:
            raise RuntimeError(f"{len(self._waiting_paint)} chunks could not be painted, "
                               f"{len(self._waiting_measure)} tiles not measured")
        self.labels.finish()
        parts = sorted((self.job_dir / PARTS).glob("*.arrow"))
        table = self.out_dir / TABLE_NAME
        csv = self.out_dir / CSV_NAME if outputs.csv else None
        classes = self.plan.class_set
        nuclei = assemble_table(parts, self.plan.stain, table, csv, table_metadata(
            self.plan.mpp, self.plan.stain, self.plan.model, self.plan.checkpoint,
            self.plan.vectors), classes)
        written = {"labels": str(self.labels.path), "table": str(table)}
        if csv:
            written["csv"] = str(csv)
        if outputs.geojson:
            geojson = self.out_dir / (GEOJSON_NAME + (".gz" if outputs.gzip else ""))
            assemble_geojson(sorted((self.job_dir / PARTS).glob("*.geojsonl")), geojson,
                             outputs.gzip)
            written["geojson"] = str(geojson)
        written["preview"] = str(self.out_dir / PREVIEW_NAME)
        capped = self._capped_tiles()
        wider = sum(len(self.cache.final(i)) for i in self.plan.selected)
        result = SlideResult(self.plan.slide, self.out_dir, self.plan.rows * self.plan.cols,
                             len(self.plan.selected), nuclei, wider, capped, tissue_mm2,
                             round(time.perf_counter() - started, 2), written,
                             count_classes(table, classes))
        write_json_atomic(self.complete_path, result.to_json(), indent=1)
        return result

    def _capped_tiles(self) -> int:
        capped = 0
        for index in self.plan.selected:
            capped += bool(load_arrays(self.job_dir / RECORDS / f"{index:07d}.npz")["hit_cap"])
        return capped


def count_classes(table: Path, classes) -> dict[str, int]:
    """Nuclei of each class in a finished table (empty for a model of one class)."""
    if classes is None:
        return {}
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts = dict.fromkeys(classes.names, 0)
    for entry in pc.value_counts(pq.read_table(table, columns=["class"])["class"]).to_pylist():
        if entry["values"] is not None:
            counts[entry["values"]] = int(entry["counts"])
    return counts


def load_result(out_dir: Path) -> SlideResult | None:
    """The result of a job already complete in ``out_dir``, if any."""
    path = out_dir / JOB / COMPLETE_NAME
    if not path.is_file():
        return None
    data = load_json(path)
    data["out_dir"] = Path(data["out_dir"])
    return SlideResult(**data)
