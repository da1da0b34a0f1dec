"""What the dock does with a session, as plain functions over the core (no Qt).

Each action is split in two: a quick ``*_snapshot`` taken on the GUI thread (copies
of the label images, so painting may go on) and the slow part, which a worker runs on
that snapshot: writing files, building a submission, scoring.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.nucleus_classes import ClassSet
from ..core.predict.instances import Prediction
from .model import ImageState, Session
from .store import (
    PREDICTIONS_FOLDER,
    SavedImage,
    save_prediction,
    save_prediction_classes,
    session_target,
    write_session,
)

# One save of the session folder at a time: an autosave in a worker, a save at once on
# the GUI thread (corrections set aside, napari closing) and a restore never interleave.
_SAVING = threading.RLock()
_SNAPSHOTS = itertools.count()
_WRITTEN: dict[Path, int] = {}  # folder -> sequence of the snapshot written there last


@dataclass(frozen=True)
class ImageSnapshot:
    """An image's state at one moment, safe to hand to a worker."""

    name: str
    image_path: Path | None
    prediction: Prediction
    score_thresh: float
    predicted_labels: np.ndarray
    labels: np.ndarray
    edited: bool
    scores: dict
    generation: int
    born: int = 0
    prediction_saved: bool = False
    saved_to: Path | None = None
    in_training: tuple | None = None
    class_set: ClassSet = ClassSet.default()
    label_classes: dict | None = None  # class index per label value as corrected

    @property
    def classed(self) -> bool:
        """The image's model has several classes: they are written and handed in."""
        return len(self.class_set) > 1

    def class_names(self, labels) -> np.ndarray:
        """The class name of each of ``labels`` (class 0 for a label never given one)."""
        names = np.asarray(self.class_set.names, dtype=object)
        found = self.label_classes or {}
        return names[[found.get(int(v), 0) for v in np.asarray(labels).tolist()]] \
            if len(labels) else np.zeros(0, object)


def snapshot(image: ImageState) -> ImageSnapshot:
    """Copy what a worker needs of an image (its labels are copied)."""
    return ImageSnapshot(image.name, image.image_path, image.prediction, image.score_thresh,
                         image.predicted_labels, image.labels.copy(), image.edited,
                         image.shown_scores(), image.generation, image.born,
                         image.prediction_saved, image.saved_to, image.in_training,
                         image.class_set, dict(image.nucleus_classes.current))


# -- autosave and the session on disk ---------------------------------------------------
@dataclass(frozen=True)
class SessionSnapshot:
    """A whole session at one moment: what :func:`save_session` writes."""

    folder: Path
    fields: dict
    images: list
    to_save: frozenset  # names of images whose corrections are not saved yet
    # The stamp of the image of a name in the session now (None: gone): a save whose
    # images were replaced meanwhile is stale, and writes nothing.
    current: Callable[[str], int | None] = lambda _name: None
    slides: tuple = ()  # SlideEntry of each slide opened, the open one last
    slides_generation: int = 0
    # Taken later, numbered higher: a save never writes a snapshot older than the one
    # its folder holds (an autosave in a worker finishing after a save at once).
    sequence: int = field(default_factory=lambda: next(_SNAPSHOTS))


@dataclass(frozen=True)
class Saved:
    """What a save wrote.

    Attributes
    ----------
    corrections : tuple
        ``(name, label file, generation saved)`` per correction written.
    predictions : tuple
        ``(name, image stamp)`` per prediction written.
    stale : bool
        Nothing was written: images of the snapshot were replaced meanwhile (the
        session is saved again from what is on screen).
    slides_generation : int or None
        The stamp of the slides written (None: not written).
    kept_aside : tuple
        ``(label file, where it went)`` per label image found where a correction was to
        be written that this session had not saved (an entry that could not be restored,
        another session's): moved into ``replaced/<date>/``, never written over.
    """

    corrections: tuple = ()
    predictions: tuple = ()
    stale: bool = False
    slides_generation: int | None = None
    kept_aside: tuple = ()  # (label file, where it is now) of labels this session did not save


def session_snapshot(session: Session) -> SessionSnapshot:
    """Copy the session for saving (GUI thread; only unsaved labels are copied).

    Corrections saved into another folder (the output folder was changed since) are
    saved again into this one.
    """
    from .model import CORRECTED_FOLDER

    folder = session.output_folder()
    fields = {k: getattr(session, k) for k in ("train_dir", "test_dir", "gt_dir", "run_dir",
                                               "checkpoint", "score_thresh")}
    to_save = frozenset(
        image.name for image in session.images.values()
        if image.dirty or (image.edited and image.saved_to
                           != folder / CORRECTED_FOLDER / f"{image.name}.tif"))
    images = [snapshot(i) if i.name in to_save else i for i in session.images.values()]

    def current(name: str) -> int | None:
        image = session.images.get(name)
        return None if image is None else image.born

    return SessionSnapshot(folder, fields, images, to_save, current,
                           tuple(session.slides.entries()), session.slides.generation)


def save_corrected(folder: Path, image: ImageSnapshot) -> Path:
    """Write an image's corrected labels and their table into ``folder`` (with the
    ``class`` column when the model has several classes).

    Returns
    -------
    Path
        The label image (``<name>.tif``; the table is ``<name>.csv``).
    """
    from ..core.corrections import corrected_features
    from ..core.label_files import write_label_outputs

    features = corrected_features(image.labels, image.scores)
    if image.classed:
        features["class"] = image.class_names(features["label"])
    return write_label_outputs(folder, image.name, image.labels, features)


def save_session(state: SessionSnapshot) -> Saved:
    """Write unsaved corrections, new predictions and ``session.json``.

    ``session.json`` names an image's corrected labels only while they are the image's
    (saved of the labels on screen): a file left in ``corrected/`` from labels since
    replaced is never named, so never restored.

    Returns
    -------
    Saved
        What was written; ``stale`` (nothing written) when an image of ``state`` was
        replaced since the snapshot was taken.
    """
    from .model import CORRECTED_FOLDER

    folder = state.folder
    # Every target is checked before anything is written: a name that is not a plain
    # file name, or a linked subfolder, leaves the folder as it was.
    targets = [(session_target(folder, PREDICTIONS_FOLDER, image.name, ".npz"),
                session_target(folder, CORRECTED_FOLDER, image.name, ".tif"))
               for image in state.images]
    corrected, saved, predicted, records = folder / CORRECTED_FOLDER, [], [], []
    kept_aside: tuple = ()
    with _SAVING:
        if any(state.current(image.name) != image.born for image in state.images) or \
                _WRITTEN.get(folder, -1) > state.sequence:
            return Saved(stale=True)
        for image, (npz, labels) in zip(state.images, targets, strict=True):
            # A link is replaced, never followed.
            if not image.prediction_saved or npz.is_symlink() or not npz.is_file():
                npz.parent.mkdir(parents=True, exist_ok=True)
                save_prediction(npz, image.prediction)
                if len(image.class_set) > 1:  # an ImageState or its snapshot
                    save_prediction_classes(npz.with_suffix(".csv"), image.prediction,
                                            image.class_set)
                predicted.append((image.name, image.born))
            if image.name in state.to_save:
                corrected.mkdir(parents=True, exist_ok=True)
                if image.saved_to != labels:  # what lies there is not this image's
                    kept_aside += _keep_aside(labels, folder)
                labels = save_corrected(corrected, image)
                saved.append((image.name, labels, image.generation))
            elif image.saved_to != labels:
                labels = None  # no corrections of the labels on screen in this folder
            # The reader refuses links.
            kept = labels is not None and labels.is_file() and not labels.is_symlink()
            records.append(SavedImage(image.name, image.image_path, image.score_thresh, npz,
                                      labels if kept else None))
        write_session(folder, state.fields, records, _slides_inside(folder, state.slides))
        _WRITTEN[folder] = state.sequence
    return Saved(tuple(saved), tuple(predicted), slides_generation=state.slides_generation,
                 kept_aside=kept_aside)


def _keep_aside(labels: Path, folder: Path) -> tuple:
    """Move a label image (and its table) this session did not save out of the way,
    into ``<folder>/replaced/<date>/``; returns ``((file, where it went),)`` or ``()``."""
    from ..core.aside import move_aside, stamp
    from .model import REPLACED_FOLDER

    if not (labels.is_file() or labels.is_symlink()):
        return ()
    when = stamp()
    table = labels.with_suffix(".csv")
    moved = move_aside(labels, folder / REPLACED_FOLDER, when)
    if table.is_file() and not table.is_symlink():
        move_aside(table, folder / REPLACED_FOLDER, when)
    return ((labels, moved),)


def _slides_inside(folder: Path, slides) -> list:
    """The slide entries with only their outputs inside the session folder (outputs of
    an output folder chosen before are that folder's session's, not this one's)."""
    from dataclasses import replace

    def inside(out_dir) -> bool:
        return Path(out_dir).is_relative_to(folder)

    kept = []
    for slide in slides:
        outputs = tuple(item for item in slide.outputs if inside(item[0]))
        window = slide.window if slide.window and inside(slide.window[0]) else None
        kept.append(replace(slide, outputs=outputs, window=window))
    return kept


def apply_saved(session: Session, saved: Saved) -> None:
    """Record in the session what a save wrote (GUI thread)."""
    for name, path, generation in saved.corrections:
        session.mark_saved(name, path, generation)
    for name, born in saved.predictions:
        session.mark_prediction_saved(name, born)
    if saved.slides_generation is not None:
        session.slides.saved_generation = saved.slides_generation
    for labels, moved in saved.kept_aside:
        session.notices.warning(f"{labels} held corrections this session had not saved "
                                f"(not restored, or another session's): kept as {moved}")


def set_aside_corrections(session: Session, replaced: ImageState) -> Path | None:
    """The corrections of an image replaced on screen are moved aside and the session is
    saved at once, so that ``session.json`` never names them again.

    The label image and its table go into ``<output>/replaced/<date>/``; nothing is
    deleted, and corrections not autosaved yet are written there too. Called by the
    session when a new prediction or threshold replaces an image with corrections.

    Returns
    -------
    Path or None
        Where the label image is now (None when there was none to keep).

    Raises
    ------
    InputError
        When the session cannot be saved (the corrections are set aside even so).
    """
    from ..core.aside import move_aside, stamp
    from .model import CORRECTED_FOLDER, REPLACED_FOLDER

    folder, when, moved = session.output_folder(), stamp(), None
    with _SAVING:  # a save running in a worker ends first, or finds itself stale
        try:
            path = replaced.saved_to
            if replaced.dirty and replaced.edited:  # the latest corrections are kept too
                corrected = folder / CORRECTED_FOLDER
                corrected.mkdir(parents=True, exist_ok=True)
                path = save_corrected(corrected, snapshot(replaced))
            if path is not None:
                for file in (path, path.with_suffix(".csv")):
                    if file.is_file() and not file.is_symlink():
                        target = move_aside(file, path.parent.parent / REPLACED_FOLDER, when)
                        moved = target if file == path else moved
            apply_saved(session, save_session(session_snapshot(session)))
        except OSError as exc:
            raise InputError(folder, "the session could not be saved: "
                             f"{exc.strerror or exc}") from None
    return moved


def iter_prepared(reports, score_thresh: float):
    """Pass a prediction job's reports on, each prediction made into an
    :class:`ImageState` at ``score_thresh`` (its label image, edit tracker and feature
    table), so that a worker, not the GUI thread, does the work proportional to the image.

    Yields
    ------
    tuple
        ``(report, ImageState or None)``.
    """
    from ..core.predict.outputs import ImagePredicted

    reports = iter(reports)
    while True:
        try:
            report = next(reports)
        except StopIteration as finished:
            return finished.value
        image = None
        if isinstance(report, ImagePredicted):
            image = ImageState.predicted(report.name, report.path, report.prediction,
                                         score_thresh)
            image.features()
        yield report, image
