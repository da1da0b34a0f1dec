"""One predicted image of the session and its corrections (no Qt).

An :class:`ImageState` holds the prediction, the threshold it is shown at, the labels as
predicted and as corrected, the edits between them and each nucleus' class; the
:class:`~napari_nuclei.session.model.Session` keeps one per image.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.corrections import EditTracker
from ..core.nucleus_classes import ClassSet
from ..core.predict.instances import Prediction
from ..core.predict.outputs import layer_features
from .image_classes import ImageClasses, ImageEdits, covering, present_labels

ROW_SEPARATOR = " · "
# Stamps of images and of their edits, unique across images: a save that finishes after
# its image was replaced is told from a save of the image now shown.
_STAMPS = itertools.count(1)


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
    prediction_saved : bool
        The prediction is in the session folder (``predictions/<name>.npz``).
    generation : int
        Stamp of the last edit (or of the image's making, before any edit).
    born : int
        Stamp of the image's making: saves stamped earlier belong to an image since
        replaced.
    in_training : tuple or None
        ``(sample folder, generation)`` of the corrections last added to the training
        set.
    nucleus_classes : ImageClasses
        The class of each label, as predicted and as corrected (one default class
        unless given).
    """

    name: str
    image_path: Path | None
    prediction: Prediction
    score_thresh: float
    predicted_labels: np.ndarray
    labels: np.ndarray
    saved_to: Path | None = None
    dirty: bool = False
    prediction_saved: bool = False
    in_training: tuple | None = None
    nucleus_classes: ImageClasses | None = None
    generation: int = field(init=False)  # so an autosave knows whether it is still current
    born: int = field(init=False)
    tracker: EditTracker = field(init=False)
    _features: dict | None = field(init=False, default=None, repr=False)
    _present: tuple | None = field(init=False, default=None, repr=False)

    def __post_init__(self):
        self.generation = self.born = next(_STAMPS)
        self.tracker = EditTracker(self.predicted_labels, self.labels)
        if self.nucleus_classes is None:
            self.nucleus_classes = ImageClasses(ClassSet.default(), {})

    @classmethod
    def predicted(cls, name: str, image_path: Path | None, prediction: Prediction,
                  score_thresh: float, classes: ClassSet | None = None) -> ImageState:
        """A fresh prediction shown at ``score_thresh`` with no correction yet; each
        nucleus of the class predicted (in ``classes``, the model's)."""
        shown = prediction.above(score_thresh)
        labels = shown.labels()
        classes = covering(classes or ClassSet.default(),
                           int(prediction.classes.max()) + 1 if len(prediction) else 0)
        return cls(name, image_path, prediction, score_thresh, labels, labels.copy(),
                   nucleus_classes=ImageClasses.of_prediction(classes, shown.classes))

    def use_classes(self, classes: ClassSet) -> None:
        """Name the predicted class indices after ``classes`` (the model's), before any
        class was changed."""
        mine = self.nucleus_classes
        wanted = covering(classes, max(mine.predicted.values(), default=-1) + 1)
        if wanted != mine.classes:
            self.nucleus_classes = ImageClasses(wanted, mine.predicted)

    def share(self, labels: np.ndarray) -> None:
        """Use ``labels`` (the same pixels, in the array a layer paints into) from now on."""
        self.labels = labels
        self.tracker.current = labels

    def restored(self, labels: np.ndarray, saved_to: Path, names: dict[int, str]) -> None:
        """Show corrected labels read back from ``saved_to`` (with their classes,
        ``label -> class name`` from its table).

        Raises
        ------
        InputError
            When the table names a class the model does not have.
        """
        self.nucleus_classes.restore(names, saved_to.with_suffix(".csv"))
        self.labels = labels
        self.tracker.reset(labels)
        self.saved_to = saved_to
        self._present = None

    @property
    def class_set(self) -> ClassSet:
        """The classes of the model that predicted the image."""
        return self.nucleus_classes.classes

    def present(self) -> np.ndarray:
        """The label values in the labels as corrected (counted once per edit)."""
        if self._present is None or self._present[0] != self.generation:
            self._present = (self.generation, present_labels(self.labels))
        return self._present[1]

    @property
    def reclassified(self) -> int:
        """Nuclei shown as predicted whose class was changed (and that are still there)."""
        changed = self.nucleus_classes.changed()
        if not changed:  # the common case costs no look at the pixels
            return 0
        return int(np.isin(np.fromiter(changed, np.int64), self.present()).sum())

    def class_counts(self) -> dict[str, int]:
        """Nuclei of each class in the labels as corrected, by class name."""
        return self.nucleus_classes.counts(self.present())

    @property
    def edits(self) -> ImageEdits:
        counts = self.tracker.counts
        return ImageEdits(counts.added, counts.removed, counts.edited, self.reclassified)

    @property
    def edited(self) -> bool:
        return self.tracker.counts.any or self.reclassified > 0

    @property
    def nuclei(self) -> int:
        """Nuclei in the labels as corrected: those shown at the threshold, plus the ones
        drawn, less the ones removed."""
        counts = self.tracker.counts
        return len(self.tracker.predicted_values) + counts.added - counts.removed

    def summary(self) -> str:
        """The image's row in the list of predicted images: name, nuclei, corrections
        and whether they are saved."""
        state = "unsaved" if self.dirty else ("saved" if self.saved_to else "")
        parts = [self.name, f"{self.nuclei} nuclei", str(self.edits)]
        if self.nucleus_classes.several:
            parts.append(", ".join(f"{count} {name}"
                                   for name, count in self.class_counts().items()))
        return ROW_SEPARATOR.join(parts + ([state] if state else []))

    def shown_scores(self) -> dict[int, float]:
        """Predicted score of each nucleus that was shown (hand-drawn labels are absent)."""
        # Label v is nucleus v - 1 of the resolved set shown, not of the prediction
        # (resolving drops nuclei hidden by better ones): the table has the score.
        table = self.features()
        scores = dict(zip(table["label"].tolist(), table["score"].tolist(), strict=True))
        return {v: float(scores[v]) for v in sorted(self.tracker.predicted_values)}

    def features(self) -> dict:
        """The layer's feature table for the labels as predicted (computed once)."""
        if self._features is None:
            self._features = layer_features(self.prediction.above(self.score_thresh),
                                            self.predicted_labels)
        return self._features
