"""*Open session…*: a saved session read in a worker, then shown (no Qt).

Reading is the slow part: ``session.json`` and every file it names go through the input
gate (:mod:`napari_nuclei.core.validate.session`), and each image's prediction and
corrections are loaded and made into an :class:`ImageState`. :func:`read_saved_session`
does that, in a worker; :func:`show_read_session` then puts the result in the session,
on the GUI thread, in the time it takes to swap a few references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import InputError
from ..core.nucleus_classes import ClassSet
from .actions import Saved, SessionSnapshot, apply_saved, save_session, session_snapshot
from .model import ImageState, Session
from .store import SESSION_NAME, load_prediction, load_prediction_classes, read_session_slides

# Lines of a restore's problems named one by one; the rest are counted in one more line,
# so that a folder of thousands of broken entries does not bury the dock in warnings.
MAX_NAMED_PROBLEMS = 20


@dataclass(frozen=True)
class Remark:
    """Something restored that is not as it was saved: one line, and the file or folder
    it is about (said once, with nothing more about what that folder holds)."""

    line: str
    about: Path | None = None


@dataclass
class ReadSession:
    """A saved session as read from its folder, ready to be shown.

    ``problems`` name the images that could not be restored; ``remarks`` what was
    restored but not as it was saved (a folder gone, an image that is not one, a table
    missing).
    """

    folder: Path
    fields: dict
    images: list[ImageState]
    classes: ClassSet
    slides: list
    problems: list[str] = field(default_factory=list)
    saved_first: Saved | None = None  # what the session open before was saved as
    remarks: list[Remark] = field(default_factory=list)


def why_not_restore(session: Session) -> str | None:
    """Why another session cannot be opened now (None: it can).

    A prediction or a slide job still running would add its results to the session
    opened next, and take them from the one they belong to: it must end first.
    """
    from .jobs import PREDICTION, SLIDE, WRITE_BACK

    running = [job for kind in (PREDICTION, SLIDE, WRITE_BACK)
               for job in session.jobs.running_of(kind)]
    if running:
        job = running[0]
        return (f"Not opened: a {job.kind} ({job.name}) is running; stop it or let it "
                "finish first, its results belong to the session open now.")
    return None


def read_saved_session(folder: Path, unsaved: SessionSnapshot | None = None) -> ReadSession:
    """Read the session saved in ``folder`` (in a worker).

    Parameters
    ----------
    folder : Path
        The session's output folder.
    unsaved : SessionSnapshot, optional
        The session open now, when it holds work not saved yet: saved first, into its
        own output folder (then ``folder`` is read, which may be that very folder).

    Raises
    ------
    InputError
        When ``folder`` holds no session or ``session.json`` as a whole is damaged, or
        the open session cannot be saved first.
    """
    saved_first = None
    if unsaved is not None:
        read_session_slides(folder)  # a folder that holds no session: refused, nothing saved
        saved_first = save_session(unsaved)
    fields, saved, slides, problems = read_session_slides(folder)
    session_file = Path(folder) / SESSION_NAME
    remarks = folder_remarks(fields, session_file, predicted=bool(saved))
    classes = saved_classes(fields.get("run_dir"), saved)
    images = []
    for item in saved:
        image = _read_image(item, classes, problems, remarks)
        if image is not None:
            images.append(image)
    return ReadSession(Path(folder), fields, images, classes, slides,
                       _capped(problems, "images"), saved_first,
                       _capped(remarks, "remarks", Remark))


def _capped(lines: list, what: str, kind=str) -> list:
    """The first ``MAX_NAMED_PROBLEMS`` lines and one counting the rest: a folder of
    thousands of broken entries does not bury the dock in warnings."""
    if len(lines) <= MAX_NAMED_PROBLEMS:
        return lines
    rest = len(lines) - MAX_NAMED_PROBLEMS
    return [*lines[:MAX_NAMED_PROBLEMS], kind(f"and {rest:,} more {what}")]


def folder_remarks(fields: dict, session_file: Path, predicted: bool) -> list[Remark]:
    """What is wrong with the folders and files ``session.json`` names: a data folder
    or checkpoint that is not there, a run folder that holds no readable run.

    The run folder is judged only for a session with predictions (its classes are
    theirs); a run folder not made yet is an ordinary setting for a training to come.
    """
    from ..core.runs import read_run

    named = f"{session_file} names"
    remarks = []
    for key, what in (("train_dir", "training folder"), ("test_dir", "test folder"),
                      ("gt_dir", "ground-truth folder")):
        path = fields.get(key)
        if path is not None and not path.is_dir():
            remarks.append(Remark(f"{named} the {what} {path}, which is not there (moved "
                                  "or deleted?): choose its place again", path))
    run_dir = fields.get("run_dir")
    if run_dir is not None and predicted:
        if not run_dir.is_dir():
            remarks.append(Remark(f"{named} the run folder {run_dir}, which is not there "
                                  "(moved or deleted?): the nuclei keep the classes their "
                                  "tables name; choose the run again to predict", run_dir))
        else:
            try:
                read_run(run_dir)
            except (InputError, OSError) as exc:
                remarks.append(Remark(f"{named} a run that cannot be used: {exc}", run_dir))
    checkpoint = fields.get("checkpoint")
    if checkpoint is not None and not checkpoint.is_file() and \
            (run_dir is None or run_dir.is_dir()):
        remarks.append(Remark(f"{named} the checkpoint {checkpoint}, which is not there: "
                              "choose a checkpoint again", checkpoint))
    return remarks


def _read_image(item, classes: ClassSet, problems: list[str],
                remarks: list[Remark]) -> ImageState | None:
    """One saved image as an :class:`ImageState`; its problem appended to ``problems``
    (and None returned) when its files are missing or broken: it costs only itself.
    What is restored but not as saved is appended to ``remarks``."""
    from ..core.image_io import read_labels
    from ..core.label_files import read_label_classes

    own: list[Remark] = []  # kept only if the image is restored: else its problem says it
    try:
        labels = None if item.labels is None else read_labels(item.labels)
        # The prediction and the corrections are of the image's size; the file of another
        # size is the one named.
        size, image_path = _image_of(item, own)
        if size is not None and labels is not None and labels.shape[:2] != size:
            raise InputError(item.labels, f"is {labels.shape[0]}x{labels.shape[1]}, not "
                             f"the {size[0]}x{size[1]} of its image {item.image_path}: not "
                             "this image's corrections")
        prediction = load_prediction(item.prediction, size if size is not None else
                                     None if labels is None else labels.shape)
        prediction = load_prediction_classes(item.prediction.with_suffix(".csv"),
                                             prediction, classes)
        image = ImageState.predicted(item.name, image_path, prediction,
                                     item.score_thresh, classes)
        image.prediction_saved = True
        if labels is not None:
            image.restored(labels, item.labels, read_label_classes(item.labels))
            _remark_missing_table(item, classes, own)
        remarks.extend(own)
        return image
    except InputError as exc:
        problems.append(f"{item.name}: {exc}")
    except MemoryError:
        problems.append(f"{item.name}: its files are too large to load into memory")
    except OSError as exc:
        problems.append(f"{item.name}: {exc.filename or item.prediction}: cannot be "
                        f"read ({exc.strerror or exc})")
    return None


def _image_of(item, remarks: list[Remark]) -> tuple[tuple[int, int] | None, Path | None]:
    """A saved image's ``(height, width)`` from its header, and the path it keeps.

    An image that is not there keeps its path (its folder may be back, or chosen again);
    a file that is there but is not an image is dropped, so that nothing reads it as
    one later (showing, adding to the training set). Either is remarked.
    """
    from ..core.image_io import image_size

    path = item.image_path
    if path is None:
        return None, None
    if not path.exists():
        remarks.append(Remark(f"{item.name}: its image {path} is not there (moved or "
                              "deleted?): its nuclei are restored without it", path))
        return None, path
    try:
        return tuple(image_size(path)), path
    except (InputError, OSError) as exc:
        reason = exc if isinstance(exc, InputError) else f"{path}: {exc.strerror or exc}"
        remarks.append(Remark(f"{item.name}: its image {reason}: its nuclei are restored "
                              "without an image", path))
        return None, None


def _remark_missing_table(item, classes: ClassSet, remarks: list[Remark]) -> None:
    """A corrected label image without its ``<name>.csv`` (every save writes both): the
    nuclei are restored, their classes set by hand are not."""
    table = item.labels.with_suffix(".csv")
    if table.is_file():
        return
    lost = ("the classes set by hand are lost: each nucleus takes its predicted class"
            if len(classes) > 1 else "it is written again at the image's next save")
    remarks.append(Remark(f"{item.name}: {table} is missing: {lost}", table))


def show_read_session(session: Session, read: ReadSession) -> list[str]:
    """Show a session read by :func:`read_saved_session` in place of ``session``'s
    images (GUI thread), and say through its notices what could not be restored or
    was not restored as saved; returns the images' problems, one line each.

    Work done since the snapshot given to :func:`read_saved_session` was taken (a stroke
    while the worker read) is saved before it is replaced.
    """
    if read.saved_first is not None:
        apply_saved(session, read.saved_first)
    if session.needs_saving():
        apply_saved(session, save_session(session_snapshot(session)))
    session.restore(read.folder, read.fields, read.images, read.classes)
    # Opened one by one in workers by the Slides section; listed now, they are the
    # session's, and saved as such until they are open.
    session.slides.restore(read.slides)
    for line in read.problems:
        session.notices.warning(f"Not restored: {line}")
    for remark in read.remarks:
        session.notices.warning(remark.line, about=remark.about)
    return read.problems


def restore_session(session: Session, folder: Path) -> list[str]:
    """Load the session saved in ``folder`` into ``session`` (its images replaced), at
    once: :func:`read_saved_session` then :func:`show_read_session`.

    What ``session`` holds that is not saved yet is saved first, into its own output
    folder. A damaged entry or file costs its own image only, and is named.

    Returns
    -------
    list of str
        One line per image that could not be restored; after ``MAX_NAMED_PROBLEMS``
        lines one more counts the rest.

    Raises
    ------
    InputError
        When ``folder`` holds no session or ``session.json`` as a whole is damaged, or
        the open session cannot be saved first; ``session`` is then left as it was.
    """
    unsaved = session_snapshot(session) if session.needs_saving() else None
    return show_read_session(session, read_saved_session(folder, unsaved))


def saved_classes(run_dir: Path | None, saved: list) -> ClassSet:
    """The classes of a saved session: its run's, or (the run folder gone) those its
    tables name, in sorted order; the one default class when neither has any."""
    from ..core.nucleus_classes import merged_names
    from ..core.validate.classes import read_class_table
    from .image_classes import run_classes

    found = run_classes(run_dir)
    if found is not None:
        return found
    names = []
    for item in saved:
        for table in (item.prediction.with_suffix(".csv"),
                      item.labels.with_suffix(".csv") if item.labels else None):
            if table is not None and table.is_file() and not table.is_symlink():
                try:
                    names.append(read_class_table(table, required=False).values())
                except InputError:
                    continue  # said when its image is restored
    return ClassSet.from_names(merged_names(names))
