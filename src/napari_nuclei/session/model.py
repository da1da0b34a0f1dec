"""The session: folders, model and predicted images with their corrections (no Qt).

A :class:`Session` is what the dock shows and edits. Its simple fields are evented
(``session.events.<field>`` fire when they change); per-image changes are announced by
``image_added``, ``image_changed`` and ``image_removed``. Widgets bind to these and
call the methods here; the methods never block for long (heavy work lives in
:mod:`napari_nuclei.session.actions` and runs in workers).

The session on disk always describes what is on screen: when a new prediction or
threshold replaces an image's corrections, they are moved aside
(``<output>/replaced/<date>/``, never deleted) and the session is saved at once, so that
*Open session…* never brings discarded corrections back.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from psygnal import Signal, evented

from ..core.errors import InputError
from ..core.nucleus_classes import ClassSet
from ..core.predict.instances import Prediction
from .corrections import SessionCorrections
from .image_classes import run_classes
from .image_state import _STAMPS, ROW_SEPARATOR, EditedImageError, ImageState  # noqa: F401
from .jobs import Jobs
from .notices import Notices
from .saved_state import CORRECTED_FOLDER, REPLACED_FOLDER, SessionSaves  # noqa: F401
from .slides import SlideSession

DEFAULT_THRESHOLD = 0.5
# The fields a saved session restores, in the order they are announced.
RESTORED_FIELDS = ("train_dir", "test_dir", "gt_dir", "output_dir", "run_dir", "checkpoint",
                   "score_thresh")

@evented
@dataclass(eq=False)
class Session(SessionCorrections, SessionSaves):
    """Folders, the model in use, and the predicted images with their corrections.

    Attributes
    ----------
    train_dir, test_dir, gt_dir : Path or None
        Training data, test images and their ground truth.
    output_dir : Path or None
        Where corrections are autosaved (``corrected/``) and the session is saved.
    run_dir, checkpoint : Path or None
        The training run predicting, and which of its checkpoints.
    score_thresh : float
        Score threshold new predictions are shown at (the run's test threshold).
    images : dict of str to ImageState
        Predicted images by name.
    notices : Notices
        One-line messages for the user; a problem with a folder is said once, until the
        folder is chosen again.
    jobs : Jobs
        The jobs running in the background and the saves not yet written: closing
        napari stops and writes them all.
    slides : SlideSession
        The slides opened, their predicted regions and the window being corrected
        (saved with the session too).
    classes : ClassSet
        The classes of the model in use (read from its run folder when it is chosen).
    current_class : int
        The class (its index) nuclei drawn by hand are given.
    """

    train_dir: Path | None = None
    test_dir: Path | None = None
    gt_dir: Path | None = None
    output_dir: Path | None = None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    score_thresh: float = DEFAULT_THRESHOLD
    images: dict = field(default_factory=dict)
    classes: ClassSet = field(default_factory=ClassSet.default)
    current_class: int = 0
    notices: Notices = field(default_factory=Notices, repr=False, compare=False)
    jobs: Jobs = field(default_factory=Jobs, repr=False, compare=False)
    slides: SlideSession | None = field(default=None, repr=False, compare=False)

    image_added = Signal(str)
    image_changed = Signal(str)
    image_removed = Signal(str)
    image_moved = Signal(str)  # its image file found at its folder's new place

    def __post_init__(self):
        if self.slides is None:
            self.slides = SlideSession(self.output_folder)
        for key in ("train_dir", "test_dir", "gt_dir", "output_dir"):
            getattr(self.events, key).connect(self._on_folder_chosen)
        self.events.run_dir.connect(self._on_run_chosen)
        for key in ("train_dir", "test_dir"):
            getattr(self.events, key).connect(self._on_data_folder_chosen)

    def _on_run_chosen(self, run_dir) -> None:
        # Whoever sets the run (Open run, a finished training, a restore), its classes
        # follow; a folder that cannot be read is said where it is used.
        self.classes = run_classes(run_dir) or ClassSet.default()
        if self.current_class >= len(self.classes):
            self.current_class = 0

    def _on_data_folder_chosen(self, new, old=None) -> None:
        # A data folder moved and chosen at its new place: the images gone from the old
        # one are taken from there, and the session is saved with their new files.
        from .relink import moved_image

        found = 0
        for name, image in list(self.images.items()):
            size = (image.prediction.height, image.prediction.width)
            path = moved_image(image.image_path, old, new, size)
            if path is not None:
                image.image_path, image.prediction_saved = path, False
                found += 1
                self.image_moved.emit(name)
                self.image_changed.emit(name)
        if found:
            self.notices.say("info", f"{found} image(s) of this session found again in "
                             f"{new}, the folder's new place")

    def _on_folder_chosen(self, new, old=None) -> None:
        # A folder chosen (again) has its problems said again: they may be new ones.
        for folder in (new, old):
            if folder is not None:
                self.notices.forget(folder)

    def restore(self, folder: Path, fields: dict, images: list[ImageState],
                classes: ClassSet | None = None) -> None:
        """Show a session read from ``folder`` in place of everything shown now.

        The images shown now are removed, then every field takes its saved value before
        any of their events is announced, so that a listener sees the whole restored
        session (the Data section lists its folders once they are all known), then the
        restored images are added.

        Parameters
        ----------
        folder : Path
            The session's output folder (it becomes this session's).
        fields : dict
            Saved values of :data:`RESTORED_FIELDS` (missing ones stay as they are).
        images : list of ImageState
            The restored images, in the order they are listed.
        classes : ClassSet, optional
            The classes of the restored model (else those its run folder records).
        """
        for name in list(self.images):
            self.images.pop(name)
            self.image_removed.emit(name)
        self.notices.forget()  # another session: its problems are its own
        values = {**fields, "output_dir": Path(folder)}
        changed = {}
        with contextlib.ExitStack() as quiet:
            for key in RESTORED_FIELDS:
                if key in values and values[key] != getattr(self, key):
                    quiet.enter_context(getattr(self.events, key).blocked())
                    changed[key] = getattr(self, key)
                    setattr(self, key, values[key])
        for key, old in changed.items():
            getattr(self.events, key).emit(getattr(self, key), old)
        if classes is not None:
            self.classes = classes
        for image in images:
            self.images[image.name] = image
            self.image_added.emit(image.name)

    def is_test_image(self, image_path: Path | None) -> bool:
        """Whether an image file lies in the test folder: such images are never added to
        the training set (training on them would leak the test set)."""
        return lies_in(image_path, self.test_dir)

    # -- folders and model ------------------------------------------------------------
    def output_folder(self) -> Path:
        """The output folder, chosen now (under the home folder) if none was."""
        if self.output_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.output_dir = Path.home() / "napari-nuclei" / f"session-{stamp}"
        return self.output_dir

    def use_run(self, run_dir: Path, checkpoint: Path | None = None) -> None:
        """Predict with a training run (its last checkpoint unless one is given).

        The score threshold becomes the run's own test threshold, as the command line
        uses. Raises :class:`InputError` for a folder that is not a run.
        """
        from ..core.runs import read_run
        from ..core.training.weights import last_checkpoint

        # Checked value by value: run folders are shared, and a threshold of 5 or a
        # damaged setting must be named, not carried into predictions.
        record = read_run(run_dir)
        run_dir = record.folder
        checkpoint = checkpoint or last_checkpoint(run_dir)
        if checkpoint is None:
            raise InputError(run_dir, "has no checkpoint yet: train it further with Resume")
        self.score_thresh = record.settings.score_thresh_test
        self.checkpoint = None  # so that a change of run alone still announces the model
        self.run_dir = run_dir
        self.checkpoint = Path(checkpoint)

    # -- predicted images -------------------------------------------------------------
    def add_prediction(self, name: str, image_path: Path | None, prediction: Prediction,
                       replace_edits: bool = False, image: ImageState | None = None
                       ) -> ImageState:
        """Show a new prediction of an image at the session's threshold.

        ``image`` is the prediction already made into an :class:`ImageState` at that
        threshold (by a worker: building the label image is proportional to its size).

        Raises
        ------
        EditedImageError
            When the image has corrections and ``replace_edits`` is False (ask first).
        InputError
            When corrections were replaced and the session could not be saved.
        """
        previous = self.images.get(name)
        if previous is not None and previous.edited and not replace_edits:
            raise EditedImageError(f"{name} has corrections ({previous.edits})")
        if image is None or image.score_thresh != self.score_thresh:
            image = ImageState.predicted(name, image_path, prediction, self.score_thresh,
                                         self.classes)
        else:  # made by a worker, which does not know the model's class names
            image.use_classes(self.classes)
        self.images[name] = image
        try:
            self._replaced(previous)
        finally:
            # A new prediction of a known image changes it in place (its layer is reused:
            # removing and adding layers costs napari a garbage collection and a redraw).
            (self.image_changed if previous is not None else self.image_added).emit(name)
        return image

    def apply_threshold(self, name: str, score_thresh: float) -> ImageState:
        """Show an image's prediction at another threshold (no network run).

        Raises
        ------
        EditedImageError
            When the image has corrections: they would be lost.
        InputError
            When saved corrections were replaced and the session could not be saved.
        """
        image = self.images[name]
        if image.edited:
            raise EditedImageError(f"{name} has corrections ({image.edits}); the threshold "
                                   "applies to uncorrected images only")
        fresh = ImageState.predicted(name, image.image_path, image.prediction, score_thresh,
                                     image.class_set)
        fresh.prediction_saved = image.prediction_saved
        self.images[name] = fresh
        try:
            self._replaced(image)
        finally:
            self.image_changed.emit(name)
        return fresh

    def set_threshold(self, score_thresh: float, shown: str | None) -> ImageState | None:
        """A new score threshold: new predictions are shown at it, and so is the image
        in view now (``shown``), unless that image has corrections.

        Returns
        -------
        ImageState or None
            The image shown, made anew at the threshold (None when none is shown).

        Raises
        ------
        EditedImageError
            When the image shown has corrections: they are kept, at their threshold,
            and nothing changes (the threshold of new predictions neither: the slider
            shows the image in view, and a refused move must not act unseen).
        InputError
            When saved corrections were replaced and the session could not be saved.
        """
        image = self.images.get(shown) if shown is not None else None
        if image is not None and image.edited:
            raise EditedImageError(f"{shown} has corrections ({image.edits}); the threshold "
                                   "applies to uncorrected images only: it stays at "
                                   f"{image.score_thresh:.2f}")
        self.score_thresh = score_thresh
        if image is None:
            return None
        return self.apply_threshold(shown, score_thresh)

    def threshold_shown(self, shown: str | None) -> float:
        """The score threshold the slider shows: the image in view's (each image keeps
        the one it was made at), or the session's for new predictions."""
        image = self.images.get(shown) if shown is not None else None
        return image.score_thresh if image is not None else self.score_thresh

    def _replaced(self, previous: ImageState | None) -> None:
        """An image now shows new labels in place of ``previous``'s: its corrections
        (saved, or not yet) are set aside and the session is saved at once.

        Raises
        ------
        InputError
            When the session cannot be saved (the corrections are set aside even so).
        """
        if previous is not None and (previous.saved_to is not None
                                     or (previous.dirty and previous.edited)):
            from .actions import set_aside_corrections

            set_aside_corrections(self, previous)

def lies_in(path: Path | None, folder: Path | None) -> bool:
    """Whether ``path`` is inside ``folder`` (links resolved; False when either is None)."""
    if path is None or folder is None:
        return False
    return Path(folder).resolve() in Path(path).resolve().parents
