"""The class of each nucleus of a predicted image, as predicted and as corrected (no Qt).

A nucleus' class is a correction like a paint stroke: an image whose nuclei were given
other classes is edited, is autosaved (the ``class`` column of ``<name>.csv``), and hands
its classes to the training set and the submission. Class changes have their own undo
and redo, apart from napari's undo of paint strokes (which never changes a class).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.nucleus_classes import ClassSet


@dataclass(frozen=True)
class ImageEdits:
    """How a corrected image differs from its prediction: the nuclei added, removed and
    edited in shape, and those given another class than predicted."""

    added: int
    removed: int
    edited: int
    reclassified: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.edited or self.reclassified)

    def __str__(self) -> str:
        text = f"{self.added} added, {self.removed} removed, {self.edited} edited"
        # Said only once a class was changed: one-class sessions read as they always did.
        return text + (f", {self.reclassified} reclassified" if self.reclassified else "")


class ImageClasses:
    """Class index (in a :class:`ClassSet`) of each label value of one image.

    Parameters
    ----------
    classes : ClassSet
        The classes of the model that predicted the image.
    predicted : dict of int to int
        Class index of each label as predicted (the labels shown at the threshold).
    """

    def __init__(self, classes: ClassSet, predicted: dict[int, int]):
        self.classes = classes
        self.predicted = dict(predicted)
        self.current = dict(predicted)
        # Each step is the (label, before, after) triples of one change.
        self._undo: list[tuple] = []
        self._redo: list[tuple] = []

    @classmethod
    def of_prediction(cls, classes: ClassSet, shown_classes: np.ndarray) -> ImageClasses:
        """The classes of the nuclei shown: label ``i + 1`` is of ``shown_classes[i]``."""
        return cls(classes, {index + 1: int(value)
                             for index, value in enumerate(np.asarray(shown_classes))})

    @property
    def several(self) -> bool:
        """More than one class: only then are classes shown, counted and written."""
        return len(self.classes) > 1

    def of(self, label: int) -> int:
        """The class index of a label (class 0 for a label never given one)."""
        return self.current.get(int(label), 0)

    def name_of(self, label: int) -> str:
        return self.classes.name_of(self.of(label))

    def give_new(self, labels: Iterable[int], index: int) -> None:
        """Give class ``index`` to labels drawn by hand that have none yet (the class
        they were painted with; a later change of the current class leaves them)."""
        for label in labels:
            self.current.setdefault(int(label), int(index))

    def set(self, labels: Iterable[int], index: int) -> int:
        """Give class ``index`` to ``labels``; returns how many changed (one undo step).

        Raises
        ------
        ValueError
            For an index of no class of the set.
        """
        index = int(index)
        if not 0 <= index < len(self.classes):
            raise ValueError(f"class {index + 1} does not exist: the model has "
                             f"{len(self.classes)} classes")
        step = tuple((int(label), self.of(label), index) for label in dict.fromkeys(labels)
                     if int(label) > 0 and self.of(label) != index)
        if step:
            self._apply(step, after=True)
            self._undo.append(step)
            self._redo.clear()
        return len(step)

    def undo(self) -> bool:
        """Take back the last class change (False when there is none)."""
        return self._step(self._undo, self._redo, after=False)

    def redo(self) -> bool:
        """Make the last class change taken back again (False when there is none)."""
        return self._step(self._redo, self._undo, after=True)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _step(self, source: list, target: list, after: bool) -> bool:
        if not source:
            return False
        step = source.pop()
        self._apply(step, after)
        target.append(step)
        return True

    def _apply(self, step: tuple, after: bool) -> None:
        for label, before, now in step:
            self.current[label] = now if after else before

    def changed(self) -> set[int]:
        """Predicted labels whose class now differs from the predicted one."""
        return {label for label, index in self.current.items()
                if label in self.predicted and self.predicted[label] != index}

    def counts(self, present: np.ndarray) -> dict[str, int]:
        """Nuclei of each class among the labels ``present``, by class name."""
        found = np.zeros(len(self.classes), np.int64)
        for label in np.asarray(present).tolist():
            found[self.of(label)] += 1
        return {name: int(found[index]) for index, name in enumerate(self.classes.names)}

    def colours(self, present: np.ndarray) -> dict:
        """RGBA (0–1) of each label of ``present`` after its class, for a direct label
        colormap: ``0`` (background) is transparent, ``None`` (any label not listed,
        such as one being drawn) is grey."""
        palette = [np.array([*c.color, 255], np.float32) / 255 for c in self.classes]
        found: dict = {0: np.zeros(4, np.float32), None: np.array([.6, .6, .6, 1], np.float32)}
        for label in np.asarray(present).tolist():
            found[label] = palette[self.of(label)]
        return found

    def restore(self, names: dict[int, str], path: Path) -> None:
        """Take the classes of a saved table (``label -> class name``); labels absent
        from it keep their predicted class.

        Raises
        ------
        InputError
            For a class name the model does not have.
        """
        self.current.update(indices_of_names(self.classes, names, path))


def indices_of_names(classes: ClassSet, names: dict[int, str], path: Path) -> dict[int, int]:
    """``label -> class index`` of a ``label -> class name`` table.

    Raises
    ------
    InputError
        Naming ``path`` and the first class the set does not have.
    """
    found = {}
    for label, name in names.items():
        try:
            found[int(label)] = classes.index_of_name(name)
        except KeyError:
            raise InputError(path, f"names class {name!r}, which the model does not have "
                             f"({', '.join(classes.names)})") from None
    return found


def run_classes(run_dir: Path | None) -> ClassSet | None:
    """The classes a run folder records (None when there is no run, or it cannot be
    read: the run is then said to be broken where it is used, not here)."""
    if run_dir is None:
        return None
    from ..core.runs import read_run

    try:
        return read_run(run_dir).classes
    except (InputError, OSError):
        return None


def covering(classes: ClassSet, count: int) -> ClassSet:
    """``classes``, or classes named after their number when a prediction uses more
    classes than the set has (its run folder could not be read)."""
    if count <= len(classes):
        return classes
    names = list(classes.names) if len(classes) > 1 else []
    names += [f"class {index + 1}" for index in range(len(names), count)]
    return ClassSet.from_names(names)


def present_labels(labels: np.ndarray) -> np.ndarray:
    """The label values (above 0) present in a label image."""
    largest = int(labels.max()) if labels.size else 0
    if largest <= 4 * labels.size:  # a count per value is far quicker than sorting
        counts = np.bincount(labels.ravel(), minlength=largest + 1)
        return np.flatnonzero(counts[1:]) + 1
    values = np.unique(labels)
    return values[values > 0]
