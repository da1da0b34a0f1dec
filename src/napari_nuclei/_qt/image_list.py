"""The session's predicted images: nucleus counts, corrections, saved state; adding the
corrected ones to the training set."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from .workers import start_job

_SEPARATOR = " · "


class PredictedImageList(QWidget):
    """A row per predicted image; clicking one shows it. ``message`` carries hints.

    Parameters
    ----------
    session : Session
        The images listed.
    layers : PredictedLayers
        Shows the image chosen.
    """

    message = Signal(str)

    def __init__(self, session, layers, parent=None):
        super().__init__(parent)
        self.session, self.layers = session, layers
        self.rows = QListWidget()
        self.rows.setToolTip("Click an image to show it with its nuclei")
        self.save_state = QLabel("Corrections are autosaved into the output folder.")
        self.save_state.setWordWrap(True)
        self.add_button = QPushButton("Add corrected images to training set")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("Predicted images (nuclei, corrections):"), self.rows,
                       self.save_state, self.add_button):
            layout.addWidget(widget)
        self.rows.currentTextChanged.connect(self._on_image_chosen)
        self.add_button.clicked.connect(self._on_add_to_training)
        layers.saved.connect(self.save_state.setText)
        for signal in (session.image_added, session.image_changed, session.image_removed):
            signal.connect(self._on_images_changed)

    def _on_images_changed(self, _name=None) -> None:
        current = self.rows.currentItem()
        chosen = current.text().split(_SEPARATOR)[0] if current else None
        self.rows.blockSignals(True)
        self.rows.clear()
        for name, image in self.session.images.items():
            state = "unsaved" if image.dirty else ("saved" if image.saved_to else "")
            edits = image.edits
            nuclei = len(image.tracker.predicted_values) + edits.added - edits.removed
            self.rows.addItem(_SEPARATOR.join([name, f"{nuclei} nuclei", str(edits)]
                                              + ([state] if state else [])))
            if name == chosen:
                self.rows.setCurrentRow(self.rows.count() - 1)
        self.rows.blockSignals(False)

    def _on_image_chosen(self, text: str) -> None:
        if text:
            self.layers.show(text.split(_SEPARATOR)[0])

    def _on_add_to_training(self) -> None:
        from ..session.actions import add_to_training, images_snapshot

        if self.session.train_dir is None:
            self.message.emit("Choose a training folder in the Data section first.")
            return
        test_dir = self.session.test_dir
        tests = frozenset(n for n, i in self.session.images.items()
                          if test_dir and i.image_path and test_dir in i.image_path.parents)
        start_job(add_to_training, self.session.train_dir, images_snapshot(self.session),
                  tests, on_return=self._on_added)

    def _on_added(self, result) -> None:
        added, refused = result
        text = (f"Added {len(added)} corrected image(s) to the training set: {', '.join(added)}"
                if added else "No corrected image to add yet: correct a predicted image first")
        if refused:
            text += (". Not added, being test images (training on them would leak the "
                     f"test set): {', '.join(refused)}")
        self.message.emit(text)
        # The Data section lists the training folder again.
        self.session.events.train_dir.emit(self.session.train_dir, self.session.train_dir)
