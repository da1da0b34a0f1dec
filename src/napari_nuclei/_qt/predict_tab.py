"""Predict section: run the chosen model, add Labels layers, re-filter, track corrections."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from .predict_jobs import LOWEST_SCORE, ModelCache, predict_images
from .state import PredictedImage
from .workers import open_chosen_dataset, start_job

if TYPE_CHECKING:
    import napari

AUTOSAVE_DELAY_MS = 1500
AUTOSAVE_FOLDER = "napari_nuclei_corrected"


def layer_features(prediction, labels) -> dict:
    """The prediction's table for the nuclei visible in ``labels``, with the ``index``
    column napari uses to match rows to label values."""
    table = prediction.features(labels)
    return {"index": table["label"], **table}


class PredictTab(QWidget):
    """Predict the current image or the test folder; correct with napari's label tools."""

    def __init__(self, viewer: napari.viewer.Viewer, state, parent=None):
        super().__init__(parent)
        self.viewer, self.state = viewer, state
        self.cache = ModelCache()
        self.worker = None
        self.model_label = QLabel("Model: none yet (train one, or open a run in Train)")
        self.model_label.setWordWrap(True)
        self.current_button = QPushButton("Predict current image")
        self.folder_button = QPushButton("Predict test folder")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(int(LOWEST_SCORE * 100), 100)
        self.threshold.setValue(50)
        self.threshold_label = QLabel("score ≥ 0.50")
        self.progress = QProgressBar()
        self.edits = QLabel("Corrections: none yet")
        self.add_button = QPushButton("Add corrected images to training set")
        buttons = QHBoxLayout()
        for button in (self.current_button, self.folder_button, self.stop_button):
            buttons.addWidget(button)
        slider = QHBoxLayout()
        slider.addWidget(self.threshold)
        slider.addWidget(self.threshold_label)
        layout = QVBoxLayout(self)
        for item in (self.model_label, buttons, slider, self.progress, self.edits,
                     self.add_button):
            (layout.addLayout if isinstance(item, QHBoxLayout) else layout.addWidget)(item)
        layout.addStretch()
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self.current_button.clicked.connect(self._on_predict_current)
        self.folder_button.clicked.connect(self._on_predict_folder)
        self.stop_button.clicked.connect(lambda: self.worker and self.worker.quit())
        self.threshold.valueChanged.connect(self._on_threshold)
        self.add_button.clicked.connect(self._on_add_to_training)
        state.model_changed.connect(self._on_model_changed)

    @property
    def score_threshold(self) -> float:
        return self.threshold.value() / 100

    def _on_model_changed(self) -> None:
        data = self.state.data
        name = data.checkpoint.name if data.checkpoint else "last checkpoint"
        self.model_label.setText(f"Model: {data.run_dir or ''} ({name})")

    def _start(self, images, total: int) -> None:
        data = self.state.data
        if data.run_dir is None and data.checkpoint is None:
            self.model_label.setText("Choose a model first: train one or open a run in Train.")
            return
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self._set_running(True)
        self.worker = start_job(predict_images, self.cache, data.run_dir, data.checkpoint,
                                images, on_yield=self._on_predicted,
                                on_finish=lambda: self._set_running(False),
                                progress={"total": total, "desc": "predicting"})

    def _set_running(self, running: bool) -> None:
        self.current_button.setEnabled(not running)
        self.folder_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _on_predict_current(self) -> None:
        from napari.layers import Image

        layer = self.viewer.layers.selection.active
        if not isinstance(layer, Image):
            images = [lyr for lyr in self.viewer.layers if isinstance(lyr, Image)]
            layer = images[-1] if images else None
        if layer is None:
            self.model_label.setText("Open an image first (Data section or File ▸ Open).")
            return
        source = layer.metadata.get("source_file") or layer.source.path
        self._start([(layer.name, np.asarray(layer.data), Path(source) if source else None)], 1)

    def _on_predict_folder(self) -> None:
        dataset = open_chosen_dataset(self.state.data.test_dir, self.model_label.setText,
                                      "test")
        if dataset is None:
            return
        images = [(r.name, None, r.path) for r in dataset.records]
        self._start(images, len(images))

    def _on_predicted(self, result) -> None:
        name, path, pixels, prediction = result
        self.progress.setValue(self.progress.value() + 1)
        if not any(getattr(lyr, "name", None) == name for lyr in self.viewer.layers):
            self.viewer.add_image(pixels, name=name, rgb=pixels.ndim == 3,
                                  metadata={"source_file": str(path) if path else None})
        shown = prediction.above(self.score_threshold)
        labels = shown.labels()
        previous = self.state.data.predicted.get(name)
        if previous is not None and previous.layer in self.viewer.layers:
            self.viewer.layers.remove(previous.layer)
        layer = self.viewer.add_labels(labels, name=f"{name} nuclei (predicted)",
                                       features=layer_features(shown, labels),
                                       metadata={"source_file": str(path) if path else None})
        predicted = PredictedImage(name, path, prediction, labels.copy(), layer,
                                   self.score_threshold)
        layer.events.paint.connect(lambda _e, p=predicted: self._on_edited(p))
        layer.events.data.connect(lambda _e, p=predicted: self._on_edited(p))
        self.state.add_prediction(predicted)
        if prediction.hit_cap:
            from napari.utils.notifications import show_warning

            show_warning(f"{name}: the detection cap was reached; results are truncated")

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"score ≥ {value / 100:.2f}")
        for predicted in self.state.data.predicted.values():
            if self.edit_counts(predicted).any:
                continue  # never throw away a person's corrections
            shown = predicted.prediction.above(self.score_threshold)
            predicted.predicted_labels = shown.labels()
            predicted.score_thresh = self.score_threshold
            predicted.layer.data = predicted.predicted_labels.copy()
            predicted.layer.features = layer_features(shown, predicted.predicted_labels)

    def edit_counts(self, predicted: PredictedImage):
        from ..core.corrections import count_edits

        return count_edits(predicted.predicted_labels, np.asarray(predicted.layer.data))

    def _on_edited(self, predicted: PredictedImage) -> None:
        counts = self.edit_counts(predicted)
        self.edits.setText(f"Corrections of {predicted.name}: {counts}")
        if counts.any:
            self._pending = predicted
            self._autosave_timer.start()

    def autosave(self) -> Path | None:
        """Write the last edited labels next to their image (``<folder>/corrected/``)."""
        from ..core.label_files import write_label_outputs

        predicted = getattr(self, "_pending", None)
        if predicted is None or predicted.image_path is None:
            return None
        folder = Path(predicted.image_path).parent / AUTOSAVE_FOLDER
        features = predicted.prediction.features()
        return write_label_outputs(folder, predicted.name, np.asarray(predicted.layer.data),
                                   features)

    def _on_add_to_training(self) -> None:
        from napari.utils.notifications import show_info

        from ..core.corrections import add_to_training_set

        train_dir = self.state.data.train_dir
        if train_dir is None:
            self.edits.setText("Choose a training folder in the Data section first.")
            return
        train_dir = train_dir / "train" if (train_dir / "train").is_dir() else train_dir
        added = []
        for predicted in self.state.data.predicted.values():
            if predicted.image_path is not None and self.edit_counts(predicted).any:
                add_to_training_set(train_dir, predicted.name, predicted.image_path,
                                    np.asarray(predicted.layer.data))
                added.append(predicted.name)
        show_info(f"Added {len(added)} corrected image(s) to {train_dir}: {', '.join(added)}"
                  if added else "No corrected image to add yet: edit a predicted layer first")
