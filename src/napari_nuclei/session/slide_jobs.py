"""The slow steps of the Slides section, run in workers (no Qt): opening a slide with its
finished predictions, and relaying a region job's reports with its labels made ready to
show. Everything here reads the output folder, so none of it runs on the GUI thread.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.slide.engine import slide_name
from .slides import SLIDES_FOLDER, SlideEntry


def region_of_folder(out_dir: Path, slide: Path) -> tuple[int, int, int, int] | None:
    """The level-0 region a folder named by :meth:`.slides.SlideSession.output_for` holds:
    ``(x, y, w, h)``, None for the whole tissue (raises ``ValueError`` for another)."""
    name, folder = slide_name(Path(slide)), Path(out_dir).name
    if folder == name:
        return None
    found = re.fullmatch(rf"{re.escape(name)}_x(\d+)_y(\d+)_(\d+)x(\d+)", folder)
    if found is None:
        raise ValueError(f"{folder} is no region folder of {name}")
    return tuple(int(v) for v in found.groups())


def finished_outputs(output_root: Path, slide: Path) -> list[tuple[Path, tuple | None]]:
    """The finished predictions of a slide in a session's output folder (run in a
    worker): ``(output folder, region)`` oldest first (see :func:`region_of_folder`).

    A folder counts when its job is complete and its plan names this very slide file;
    folders that cannot be read are passed over (they are not this slide's outputs).
    """
    from ..core.errors import InputError
    from ..core.slide.job import COMPLETE_NAME, JOB, load_result
    from ..core.slide.lazy import output_slide_path

    folder = Path(output_root) / SLIDES_FOLDER
    if not folder.is_dir() or folder.is_symlink():
        return []
    slide = Path(slide).resolve()
    found = []
    for out_dir in folder.iterdir():
        if out_dir.is_symlink() or not out_dir.is_dir():
            continue
        try:
            region = region_of_folder(out_dir, slide)
            if Path(output_slide_path(out_dir)).resolve() != slide or \
                    load_result(out_dir) is None:
                continue
            finished = (out_dir / JOB / COMPLETE_NAME).stat().st_mtime
        except (InputError, ValueError, KeyError, TypeError, OSError):
            continue
        found.append((finished, out_dir, region))
    return [(out_dir, region) for _, out_dir, region in sorted(found)]


def open_with_outputs(path: Path, output_root: Path, restored: SlideEntry | None = None):
    """Everything opening a slide needs, made in a worker: the slide's layer data, its
    finished outputs in the output folder, and the labels layer data of each output a
    restored session shows (the folders that hold no finished prediction are named).

    Returns
    -------
    tuple
        ``(slide layer data, found, labels, problems)``: ``found`` as
        :func:`finished_outputs` gives it, ``labels`` a dict of output folder to its
        labels layer data and pyramid (its region in memory, see
        :func:`~napari_nuclei.core.slide.lazy.cached_labels_layer_data`), ``problems``
        one line per output not restored.
    """
    from ..core.errors import InputError
    from ..core.slide.lazy import cached_labels_layer_data, slide_layer_data

    _import_for_layers()
    # Decoded in a thread of its own, never on napari's (see core.slide.progressive).
    data = slide_layer_data(path, progressive=True)
    found = finished_outputs(output_root, path)
    finished = {out_dir for out_dir, _ in found}
    labels, problems = {}, []
    for out_dir, region in restored.outputs if restored is not None else ():
        if out_dir not in finished:
            problems.append(f"{out_dir}: holds no finished prediction of {Path(path).name}")
            continue
        try:
            labels[out_dir] = cached_labels_layer_data(out_dir, region)
        except InputError as exc:
            problems.append(str(exc))
    return data, found, labels, problems


def _import_for_layers() -> None:
    """napari's first Labels layer imports pandas (its features), scikit-image's colour
    conversions and SciPy's linear algebra (its colours): about a second on the GUI
    thread. Imported here, in a worker, they cost it nothing."""
    import pandas  # noqa: F401
    import scipy.linalg  # noqa: F401
    import skimage.color  # noqa: F401
    import skimage.exposure  # noqa: F401


def relay_region(job, out_dir: Path, region=None, min_interval: float = 1.0):
    """Relay a slide region job's reports in a worker, with the labels as they stand.

    Everything that reads the output folder happens here, not on the GUI thread: after
    each tile, the labels painted since are read into memory
    (:class:`~napari_nuclei.core.slide.live_labels.LiveLabels`), and at most once per
    ``min_interval`` seconds their layer data goes with the report; at the end, the
    finished pyramid's, its region already in memory.

    Parameters
    ----------
    job : ChildJob
    out_dir : Path
    region : tuple of int, optional
        The level-0 region predicted (None: the whole tissue).
    min_interval : float

    Yields
    ------
    tuple
        ``(report, live layer data or None)``.

    Returns
    -------
    tuple
        ``(result, finished)``: ``finished`` is ``(layer data, pyramid)``, or None when
        the job stopped before finishing (its tiles are kept: predicting the region
        again continues).
    """
    import time

    from ..core.errors import InputError
    from ..core.slide.job import load_result
    from ..core.slide.lazy import cached_labels_layer_data
    from ..core.slide.live_labels import LiveLabels

    _import_for_layers()
    out_dir = Path(out_dir)
    last, live = None, None
    reports = job.reports()
    while True:
        try:
            report = next(reports)
        except StopIteration as finished:
            result = finished.value
            break
        data = None
        if hasattr(report, "total"):
            try:
                live = live or LiveLabels(out_dir)
            except InputError:
                pass  # the job has not created its labels yet
            if live is not None:
                live.update()
                now = time.monotonic()
                if last is None or now - last >= min_interval:
                    data, last = live.layer_data(), now
        yield report, data
    if job.stopping or load_result(out_dir) is None:
        return result, None
    if live is not None:
        live.update()  # cores the job painted after its last report
    return result, cached_labels_layer_data(
        out_dir, region, live.pyramid if live is not None else None,
        generation=live.generation + 1 if live is not None else 0)
