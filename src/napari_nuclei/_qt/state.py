"""What the dock's sections share: chosen folders, the model, predictions and their layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qtpy.QtCore import QObject, Signal


@dataclass
class PredictedImage:
    """A prediction shown in the viewer, and what it looked like before any correction."""

    name: str
    image_path: Path | None
    prediction: object  # napari_nuclei.core.predict.instances.Prediction
    predicted_labels: object  # numpy array as predicted (after the score threshold)
    layer: object  # the napari Labels layer the user corrects
    score_thresh: float = 0.0  # the threshold the layer shows


@dataclass
class SessionData:
    train_dir: Path | None = None
    test_dir: Path | None = None
    gt_dir: Path | None = None
    run_dir: Path | None = None
    checkpoint: Path | None = None
    predicted: dict[str, PredictedImage] = field(default_factory=dict)


class SessionState(QObject):
    """Shared by the dock's sections; they listen to its signals instead of to each other."""

    folders_changed = Signal()
    model_changed = Signal()
    predictions_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.data = SessionData()

    def set_folders(self, **folders) -> None:
        for key, value in folders.items():
            setattr(self.data, key, Path(value) if value else None)
        self.folders_changed.emit()

    def set_model(self, run_dir: Path | None, checkpoint: Path | None = None) -> None:
        self.data.run_dir, self.data.checkpoint = run_dir, checkpoint
        self.model_changed.emit()

    def add_prediction(self, predicted: PredictedImage) -> None:
        self.data.predicted[predicted.name] = predicted
        self.predictions_changed.emit()
