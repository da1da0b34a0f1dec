"""The training settings form: a preset, its key values editable."""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from ..core.training.settings import PRESETS, TrainSettings, preset_settings
from .folder_field import FolderField

WEIGHT_SOURCES = ("model zoo", "none (from scratch)", "file or previous run")


def _spin(low: int, high: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    return box


class TrainForm(QWidget):
    """Preset picker and overrides; :meth:`settings` builds the :class:`TrainSettings`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset = QComboBox()
        self.preset.addItems(["tiny", "fast", "seed", "r101"])
        self.iterations = _spin(1, 1_000_000, 10)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(0.0001)
        self.steps = QLineEdit()
        self.steps.setToolTip("iterations where the learning rate drops 10x, comma-separated")
        self.input_size = _spin(64, 4096, 32)
        self.batch = _spin(1, 64)
        self.checkpoint_period = _spin(1, 1_000_000, 10)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.weights = QComboBox()
        self.weights.addItems(WEIGHT_SOURCES)
        self.weights_path = FolderField(".pth/.pkl file or run folder", pick_file="")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.output = FolderField("run folder to create")
        form = QFormLayout(self)
        for label, widget in (("Preset", self.preset), ("Iterations", self.iterations),
                              ("Learning rate", self.lr), ("LR steps", self.steps),
                              ("Input size", self.input_size), ("Images per step", self.batch),
                              ("Checkpoint every", self.checkpoint_period),
                              ("Validation fraction", self.val_fraction),
                              ("Weights", self.weights), ("Weights path", self.weights_path),
                              ("Device", self.device), ("Output folder", self.output)):
            form.addRow(label, widget)
        self.preset.currentTextChanged.connect(self._on_preset_changed)
        self._on_preset_changed(self.preset.currentText())
        self.iterations.valueChanged.connect(self._on_iterations_changed)

    def _on_preset_changed(self, name: str) -> None:
        preset = PRESETS[name]
        self.iterations.setValue(preset.max_iter)
        self.lr.setValue(preset.base_lr)
        self.steps.setText(", ".join(str(s) for s in preset.steps))
        self.input_size.setValue(preset.min_size_train[-1])
        self.batch.setValue(preset.ims_per_batch)
        self.checkpoint_period.setValue(preset.checkpoint_period)
        self.val_fraction.setValue(0.34 if name == "tiny" else 0.2)
        self.weights.setCurrentIndex(1 if preset.weights == "none" else 0)

    def show_settings(self, settings: TrainSettings) -> None:
        """Fill the form with a run's settings (Open run…)."""
        if settings.preset in PRESETS:
            self.preset.setCurrentText(settings.preset)
        self.iterations.setValue(settings.max_iter)
        self.lr.setValue(settings.base_lr)
        self.steps.setText(", ".join(str(s) for s in settings.steps))
        self.input_size.setValue(settings.min_size_train[-1])
        self.batch.setValue(settings.ims_per_batch)
        self.checkpoint_period.setValue(settings.checkpoint_period)
        self.val_fraction.setValue(settings.val_fraction)
        source = {"zoo": 0, "none": 1}.get(settings.weights, 2)
        self.weights.setCurrentIndex(source)
        self.weights_path.set_text(settings.weights if source == 2 else "", emit=False)
        self.device.setCurrentText(settings.device)

    def settings(self) -> TrainSettings:
        """The settings the form shows.

        Raises
        ------
        ValueError
            For unreadable LR steps or a missing weights path.
        """
        steps = tuple(int(s) for s in self.steps.text().replace(",", " ").split())
        source = self.weights.currentIndex()
        weights = ("zoo", "none", self.weights_path.text())[source]
        if source == 2 and not weights:
            raise ValueError("choose a weights file or a previous run folder")
        name = self.preset.currentText()
        sizes = PRESETS[name].min_size_train
        if self.input_size.value() != sizes[-1]:
            sizes = (self.input_size.value(),)
        return preset_settings(
            name, max_iter=self.iterations.value(), base_lr=self.lr.value(), steps=steps,
            min_size_train=sizes, ims_per_batch=self.batch.value(),
            checkpoint_period=self.checkpoint_period.value(),
            eval_period=self.checkpoint_period.value(),
            val_fraction=self.val_fraction.value(), weights=weights,
            device=self.device.currentText(),
        )

    def _on_iterations_changed(self, iterations: int) -> None:
        # Keep the preset's schedule shape: its LR steps scale with the iteration count.
        preset = PRESETS[self.preset.currentText()]
        scale = iterations / preset.max_iter
        self.steps.setText(", ".join(str(max(1, round(s * scale))) for s in preset.steps))
