"""What a correction does to the session: strokes and class changes (no Qt).

:class:`SessionCorrections` is part of :class:`~napari_nuclei.session.model.Session`:
every change of an image's labels or of a nucleus's class goes through it, so that the
image is marked unsaved, its hand-drawn nuclei get the class chosen, and listeners hear
``image_changed`` once per change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .image_state import _STAMPS

if TYPE_CHECKING:
    from .image_classes import ImageEdits
    from .image_state import ImageState


class SessionCorrections:
    """The correction rules of a :class:`~napari_nuclei.session.model.Session` (its
    ``images``, ``current_class`` and ``image_changed`` are the session's)."""

    def labels_painted(self, name: str, regions) -> ImageEdits:
        """The labels changed inside ``regions`` (tuples of slices)."""
        self.images[name].tracker.changed(regions)
        return self._edited(name)

    def labels_rewritten(self, name: str) -> ImageEdits:
        """The labels may have changed where strokes painted before (undo, redo)."""
        image = self.images[name]
        return self._edited(name) if image.tracker.recheck() else image.edits

    def labels_replaced(self, name: str, labels: np.ndarray) -> ImageEdits:
        """The whole label image was replaced by ``labels``."""
        image = self.images[name]
        image.labels = labels
        image.tracker.reset(labels)
        return self._edited(name)

    def _edited(self, name: str) -> ImageEdits:
        image = self.images[name]
        # Nuclei drawn by hand are of the class chosen while they were drawn.
        image.nucleus_classes.give_new(image.tracker.hand_drawn(),
                                       self._class_for(image, self.current_class))
        image.dirty = True
        image.generation = next(_STAMPS)
        self.image_changed.emit(name)
        return image.edits

    # -- nucleus classes ----------------------------------------------------------------
    @staticmethod
    def _class_for(image: ImageState, index: int) -> int:
        return index if 0 <= index < len(image.class_set) else 0

    def set_class(self, name: str, labels, index: int | None = None) -> int:
        """Give ``labels`` of an image class ``index`` (the current class unless given):
        a correction, undone by :meth:`undo_class`. Labels not in the image are left.

        Returns
        -------
        int
            How many nuclei changed class.

        Raises
        ------
        ValueError
            For an index of no class of the image's model.
        """
        image = self.images[name]
        wanted = np.asarray(list(labels), np.int64).reshape(-1)
        found = wanted[np.isin(wanted, image.present())]
        changed = image.nucleus_classes.set(found.tolist(),
                                            self.current_class if index is None else index)
        if changed:
            self._edited(name)
        return changed

    def undo_class(self, name: str) -> bool:
        """Take back an image's last class change (False when there is none)."""
        done = self.images[name].nucleus_classes.undo()
        if done:
            self._edited(name)
        return done

    def redo_class(self, name: str) -> bool:
        """Make an image's class change taken back again (False when there is none)."""
        done = self.images[name].nucleus_classes.redo()
        if done:
            self._edited(name)
        return done

