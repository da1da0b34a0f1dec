"""The session's predicted images: nucleus counts, corrections, saved state; adding the
corrected ones to the training set."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from ..session.image_state import ROW_SEPARATOR as _SEPARATOR
from .workers import start_job


class PredictedImageList(QWidget):
    """A row per predicted image; clicking one shows it. ``message`` carries hints.

    Parameters
    ----------
    session : Session
        The images listed.
    layers : PredictedLayers
        Shows the image chosen.
    ask : callable
        ``ask(parent, question) -> bool``: asks before a training sample is replaced.
    """

    message = Signal(str)

    def __init__(self, session, layers, ask, parent=None):
        super().__init__(parent)
        self.session, self.layers, self.ask = session, layers, ask
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
            self.rows.addItem(image.summary())
            if name == chosen:
                self.rows.setCurrentRow(self.rows.count() - 1)
        self.rows.blockSignals(False)

    def _on_image_chosen(self, text: str) -> None:
        if text:
            self.layers.show(text.split(_SEPARATOR)[0])

    def _on_add_to_training(self) -> None:
        from ..session.handin import images_snapshot
        from ..session.training_set import training_plan

        if self.session.train_dir is None:
            self.message.emit("Choose a training folder in the Data section first.")
            return
        images = images_snapshot(self.session)
        start_job(training_plan, self.session.train_dir, self.session.test_dir, images,
                  on_return=lambda plan: self._on_planned(plan, images))

    def _on_planned(self, plan, images) -> None:
        from ..session.training_set import add_to_training

        replace = frozenset()
        if plan.replaced:
            samples = ", ".join(f"{r.sample} (its {r.masks} masks, by the {r.nuclei} nuclei "
                                "corrected here)" for r in plan.replaced)
            if self.ask(self, f"Replace in the training set {samples}? What is replaced is "
                        f"moved into {plan.aside}, not deleted; No keeps "
                        "it as it is."):
                replace = frozenset(r.sample for r in plan.replaced)
        start_job(add_to_training, self.session.train_dir, self.session.test_dir, images,
                  replace, on_return=self._on_added)

    def _on_added(self, result) -> None:
        from ..session.training_set import added_message, record_added

        record_added(self.session, result)
        self.message.emit(added_message(result))
        if result.added:  # the Data section lists the training folder again
            self.session.events.train_dir.emit(self.session.train_dir,
                                               self.session.train_dir)
