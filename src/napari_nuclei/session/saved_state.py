"""Which of the session's work is saved, and where (no Qt).

:class:`SessionSaves` is part of :class:`~napari_nuclei.session.model.Session`: it
answers whether anything is not in the session folder yet, asks before unsaved
corrections would be lost, and records the saves that finished in workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .image_state import ImageState

CORRECTED_FOLDER = "corrected"
REPLACED_FOLDER = "replaced"


class SessionSaves:
    """The save records of a :class:`~napari_nuclei.session.model.Session` (its
    ``images``, ``slides`` and ``output_folder`` are the session's)."""

    def unsaved(self) -> list[ImageState]:
        """Images corrected since they were last saved."""
        return [image for image in self.images.values() if image.dirty]

    def unsaved_question(self) -> str | None:
        """The question to ask before closing while corrections are not saved (a save
        into the output folder failed): None when every correction is saved."""
        names = [image.name for image in self.unsaved()]
        if not names:
            return None
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                        else "")
        return (f"The corrections of {shown} are not saved: the output folder "
                f"{self.output_folder()} could not be written. Close anyway? They are lost.")

    def needs_saving(self) -> bool:
        """Whether a correction or a prediction is not in the session folder yet."""
        return self.slides.needs_saving or any(image.dirty or not image.prediction_saved
                                               for image in self.images.values())

    def corrected_folder(self) -> Path:
        """Where corrections are autosaved: ``<output folder>/corrected``."""
        return self.output_folder() / CORRECTED_FOLDER

    def replaced_folder(self) -> Path:
        """Where corrections replaced on screen are kept: ``<output folder>/replaced``."""
        return self.output_folder() / REPLACED_FOLDER

    def mark_saved(self, name: str, path: Path, generation: int) -> None:
        """Record a finished autosave of the labels as they were at ``generation``
        (the image stays unsaved when it was edited again meanwhile; a save of an
        image since replaced is not this image's)."""
        image = self.images.get(name)
        if image is None or generation < image.born:
            return
        image.saved_to = path
        image.dirty = image.generation != generation
        self.image_changed.emit(name)

    def mark_added(self, name: str, sample: Path, generation: int) -> None:
        """Record that the labels of ``name`` as they were at ``generation`` were added
        to the training set as ``sample``."""
        image = self.images.get(name)
        if image is not None and generation >= image.born:
            image.in_training = (Path(sample), generation)

    def mark_prediction_saved(self, name: str, born: int) -> None:
        """Record that the prediction of the image stamped ``born`` was saved."""
        image = self.images.get(name)
        if image is not None and image.born == born:
            image.prediction_saved = True

