"""The training settings form, built with magicgui from the :class:`TrainSettings` fields.

Names, types and defaults come from the settings dataclass and its presets; the table
below adds only what a form needs beyond them: a label, limits and a tooltip that says
what the field does and when to change it.
"""

from __future__ import annotations

import time
import typing
from pathlib import Path

from magicgui.widgets import ComboBox, Container, LineEdit, create_widget
from qtpy.QtWidgets import QFormLayout, QVBoxLayout, QWidget

from ..core.training.settings import PRESETS, TrainSettings, preset_settings
from .folder_field import FolderField

WEIGHT_SOURCES = ("model zoo", "none (from scratch)", "file or previous run")
PRESET_ORDER = ["tiny", "fast", "seed", "r101"]  # the first is the default

# TrainSettings field -> (label, magicgui options, tooltip).
FIELDS = {
    "max_iter": ("Iterations", {"min": 1, "max": 1_000_000, "step": 10},
                 "Training steps (one batch of images each). More data or a harder task "
                 "needs more; the learning-rate steps scale with it."),
    "base_lr": ("Learning rate", {"min": 1e-6, "max": 1.0, "step": 1e-4},
                "Step size of the optimiser. Lower it if the loss jumps or becomes NaN; "
                "raise it a little if the loss falls very slowly."),
    "ims_per_batch": ("Images per step", {"min": 1, "max": 64},
                      "Images per training step. Raise it only with memory to spare (a GPU "
                      "with many GB); lower it after an out-of-memory error."),
    "checkpoint_period": ("Checkpoint every", {"min": 1, "max": 1_000_000, "step": 10},
                          "Iterations between checkpoints (and validation AP). Shorter "
                          "gives more checkpoints to choose from, at some disk and time."),
    "val_fraction": ("Validation fraction", {"min": 0.0, "max": 0.9, "step": 0.05},
                     "Share of the training images held out to score each checkpoint "
                     "(validation AP). 0 trains on all, without scores."),
}
TOOLTIPS = {
    "preset": "Starting values: tiny (tests, minutes), fast (R50 on a laptop CPU), seed "
              "(the competition recipe, X101, for a GPU), r101.",
    "steps": "Iterations where the learning rate drops tenfold, comma-separated. They "
             "follow the iteration count; change them for a custom schedule.",
    "input_size": "Shortest image side during training, in pixels. Match the size of "
                  "your nuclei to the preset's: raise it for small nuclei.",
    "weights": "Where the network starts: COCO-pretrained weights (best), none (from "
               "scratch, far lower accuracy) or a file / previous run to fine-tune.",
    "weights_path": "A .pth/.pkl weights file or a previous run folder (for 'file or "
                    "previous run').",
    "device": "auto uses a CUDA GPU when there is one; cpu works everywhere, slowly.",
    "output": "The run folder to create: checkpoints, metrics.jsonl, settings and logs.",
}


def _field_widget(name: str):
    label, options, tooltip = FIELDS[name]
    annotation = typing.get_type_hints(TrainSettings)[name]
    return create_widget(getattr(TrainSettings(), name), annotation, name=name, label=label,
                         options={**options, "tooltip": tooltip})


class TrainForm(QWidget):
    """Preset picker and overrides; :meth:`settings` builds the :class:`TrainSettings`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.preset = ComboBox(label="Preset", choices=PRESET_ORDER,
                               tooltip=TOOLTIPS["preset"])
        self.fields = {name: _field_widget(name) for name in FIELDS}
        self.iterations, self.lr = self.fields["max_iter"], self.fields["base_lr"]
        self.batch = self.fields["ims_per_batch"]
        self.checkpoint_period = self.fields["checkpoint_period"]
        self.val_fraction = self.fields["val_fraction"]
        self.lr.native.setDecimals(6)
        self.steps = LineEdit(label="LR steps", tooltip=TOOLTIPS["steps"])
        self.input_size = create_widget(1000, int, label="Input size", options={
            "min": 64, "max": 4096, "step": 32, "tooltip": TOOLTIPS["input_size"]})
        self.weights = ComboBox(label="Weights", choices=list(WEIGHT_SOURCES),
                                tooltip=TOOLTIPS["weights"])
        self.device = ComboBox(label="Device", choices=["auto", "cpu", "cuda"],
                               tooltip=TOOLTIPS["device"])
        self.form = Container(widgets=[self.preset, self.iterations, self.lr, self.steps,
                                       self.input_size, self.batch, self.checkpoint_period,
                                       self.val_fraction, self.weights, self.device])
        self.weights_path = FolderField(".pth/.pkl file or run folder", pick_file="")
        self.output = FolderField("run folder to create")
        self.weights_path.setToolTip(TOOLTIPS["weights_path"])
        self.output.setToolTip(TOOLTIPS["output"])
        paths = QFormLayout()
        paths.addRow("Weights path", self.weights_path)
        paths.addRow("Output folder", self.output)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form.native)
        layout.addLayout(paths)
        self.preset.changed.connect(self._on_preset_changed)
        self._on_preset_changed(self.preset.value)
        self.iterations.changed.connect(self._on_iterations_changed)

    def run_folder(self) -> Path:
        """The output folder; one named after the preset and the time when none is."""
        text = self.output.text()
        if not text:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            text = str(Path.home() / "napari-nuclei-runs" / f"{self.preset.value}-{stamp}")
            self.output.set_text(text, emit=False)
        return Path(text)

    def _on_preset_changed(self, name: str) -> None:
        preset = PRESETS[name]
        self.iterations.value = preset.max_iter
        self.lr.value = preset.base_lr
        self.steps.value = ", ".join(str(s) for s in preset.steps)
        self.input_size.value = preset.min_size_train[-1]
        self.batch.value = preset.ims_per_batch
        self.checkpoint_period.value = preset.checkpoint_period
        self.val_fraction.value = 0.34 if name == "tiny" else 0.2
        self.weights.value = WEIGHT_SOURCES[1 if preset.weights == "none" else 0]

    def show_settings(self, settings: TrainSettings) -> None:
        """Fill the form with a run's settings (Open run…)."""
        if settings.preset in PRESETS:
            self.preset.value = settings.preset
        self.iterations.value = settings.max_iter
        self.lr.value = settings.base_lr
        self.steps.value = ", ".join(str(s) for s in settings.steps)
        self.input_size.value = settings.min_size_train[-1]
        self.batch.value = settings.ims_per_batch
        self.checkpoint_period.value = settings.checkpoint_period
        self.val_fraction.value = settings.val_fraction
        source = {"zoo": 0, "none": 1}.get(settings.weights, 2)
        self.weights.value = WEIGHT_SOURCES[source]
        self.weights_path.set_text(settings.weights if source == 2 else "", emit=False)
        self.device.value = settings.device

    def settings(self) -> TrainSettings:
        """The settings the form shows.

        Raises
        ------
        ValueError
            For unreadable LR steps or a missing weights path.
        """
        try:
            steps = tuple(int(s) for s in self.steps.value.replace(",", " ").split())
        except ValueError:
            raise ValueError("LR steps: whole numbers of iterations, comma-separated") from None
        source = WEIGHT_SOURCES.index(self.weights.value)
        weights = ("zoo", "none", self.weights_path.text())[source]
        if source == 2 and not weights:
            raise ValueError("choose a weights file or a previous run folder")
        name = self.preset.value
        sizes = PRESETS[name].min_size_train
        if self.input_size.value != sizes[-1]:
            sizes = (self.input_size.value,)
        return preset_settings(
            name, max_iter=self.iterations.value, base_lr=self.lr.value, steps=steps,
            min_size_train=sizes, ims_per_batch=self.batch.value,
            checkpoint_period=self.checkpoint_period.value,
            eval_period=self.checkpoint_period.value,
            val_fraction=self.val_fraction.value, weights=weights, device=self.device.value,
        )

    def _on_iterations_changed(self, iterations: int) -> None:
        # Keep the preset's schedule shape: its LR steps scale with the iteration count.
        preset = PRESETS[self.preset.value]
        scale = iterations / preset.max_iter
        self.steps.value = ", ".join(str(max(1, round(s * scale))) for s in preset.steps)
