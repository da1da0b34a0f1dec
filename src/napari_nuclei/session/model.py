"""The session: folders, model and predicted images with their corrections (no Qt).

A :class:`Session` is what the dock shows and edits. Its simple fields are evented
(``session.events.<field>`` fire when they change); per-image changes are announced by
``image_added``, ``image_changed`` and ``image_removed``. Widgets bind to these and
call the methods here; the methods never block for long (heavy work lives in
:mod:`napari_nuclei.session.actions` and runs in workers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psygnal import Signal, evented

from ..core.corrections import EditCounts, EditTracker
from ..core.errors import InputError
from ..core.predict.instances import Prediction
from ..core.predict.outputs import layer_features

CORRECTED_FOLDER = "corrected"
DEFAULT_THRESHOLD = 0.5


class EditedImageError(Exception):
    """Replacing or re-filtering would discard the corrections made to an image."""


@dataclass(eq=False)
class ImageState:
    """One predicted image and its corrections.

    Attributes
    ----------
    name : str
        The image's name (its file stem, or its layer's name).
    image_path : Path or None
        Its file, or None for pixels with no file behind them.
    prediction : Prediction
        Every nucleus the network found, down to the lowest kept score.
    score_thresh : float
        The threshold the labels were made at.
    predicted_labels : numpy.ndarray
        The label image as predicted at that threshold.
    labels : numpy.ndarray
        The label image as corrected (the array the Labels layer paints into).
    saved_to : Path or None
        Where the corrections were last saved.
    dirty : bool
        Corrected since they were last saved.
    """

    name: str
    image_path: Path | None
    prediction: Prediction
    score_thresh: float
    predicted_labels: np.ndarray
    labels: np.ndarray
    saved_to: Path | None = None
    dirty: bool = False
    generation: int = 0  # counts edits, so an autosave knows whether it is still current
    tracker: EditTracker = field(init=False)
    _features: dict | None = field(init=False, default=None, repr=False)

    def __post_init__(self):
        self.tracker = EditTracker(self.predicted_labels, self.labels)

    @classmethod
    def predicted(cls, name: str, image_path: Path | None, prediction: Prediction,
                  score_thresh: float) -> ImageState:
        """A fresh prediction shown at ``score_thresh`` with no correction yet."""
        labels = prediction.above(score_thresh).labels()
        return cls(name, image_path, prediction, score_thresh, labels, labels.copy())

    def share(self, labels: np.ndarray) -> None:
        """Use ``labels`` (the same pixels, in the array a layer paints into) from now on."""
        self.labels = labels
        self.tracker.current = labels

    @property
    def edits(self) -> EditCounts:
        return self.tracker.counts

    @property
    def edited(self) -> bool:
        return self.tracker.counts.any

    def shown_scores(self) -> dict[int, float]:
        """Predicted score of each nucleus that was shown (hand-drawn labels are absent)."""
        values = sorted(self.tracker.predicted_values)
        return {v: float(self.prediction.scores[v - 1]) for v in values}

    def features(self) -> dict:
        """The layer's feature table for the labels as predicted (computed once)."""
        if self._features is None:
            self._features = layer_features(self.prediction.above(self.score_thresh),
                                            self.predicted_labels)
        return self._features


@evented
@dataclass(eq=False)
class Session:
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
    """

    train_dir: Path | None = None
    test_dir: Path | None = None
    gt_dir: Path | None = None
    output_dir: Path | None = None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    score_thresh: float = DEFAULT_THRESHOLD
    images: dict = field(default_factory=dict)

    image_added = Signal(str)
    image_changed = Signal(str)
    image_removed = Signal(str)

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
        """
        previous = self.images.get(name)
        if previous is not None and previous.edited and not replace_edits:
            raise EditedImageError(f"{name} has corrections ({previous.edits})")
        if image is None or image.score_thresh != self.score_thresh:
            image = ImageState.predicted(name, image_path, prediction, self.score_thresh)
        self.images[name] = image
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
        """
        image = self.images[name]
        if image.edited:
            raise EditedImageError(f"{name} has corrections ({image.edits}); the threshold "
                                   "applies to uncorrected images only")
        fresh = ImageState.predicted(name, image.image_path, image.prediction, score_thresh)
        fresh.saved_to = image.saved_to
        self.images[name] = fresh
        self.image_changed.emit(name)
        return fresh

    def labels_painted(self, name: str, regions) -> EditCounts:
        """The labels changed inside ``regions`` (tuples of slices)."""
        return self._edited(name, self.images[name].tracker.changed(regions))

    def labels_rewritten(self, name: str) -> EditCounts:
        """The labels may have changed where strokes painted before (undo, redo)."""
        tracker = self.images[name].tracker
        return self._edited(name, tracker.counts) if tracker.recheck() else tracker.counts

    def labels_replaced(self, name: str, labels: np.ndarray) -> EditCounts:
        """The whole label image was replaced by ``labels``."""
        image = self.images[name]
        image.labels = labels
        image.tracker.reset(labels)
        return self._edited(name, image.tracker.counts)

    def _edited(self, name: str, counts: EditCounts) -> EditCounts:
        self.images[name].dirty = True
        self.images[name].generation += 1
        self.image_changed.emit(name)
        return counts

    def unsaved(self) -> list[ImageState]:
        """Images corrected since they were last saved."""
        return [image for image in self.images.values() if image.dirty]

    def corrected_folder(self) -> Path:
        """Where corrections are autosaved: ``<output folder>/corrected``."""
        return self.output_folder() / CORRECTED_FOLDER

    def mark_saved(self, name: str, path: Path, generation: int) -> None:
        """Record a finished autosave of the labels as they were at ``generation``
        (the image stays unsaved when it was edited again meanwhile)."""
        image = self.images.get(name)
        if image is None:
            return
        image.saved_to = path
        image.dirty = image.generation != generation
        self.image_changed.emit(name)
