"""The training progress bar: data preparation, then iteration, speed and time left."""

from __future__ import annotations

from qtpy.QtWidgets import QProgressBar


class TrainProgress(QProgressBar):
    """Shows where a training run is, from its reports."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFormat("not started")

    def show_report(self, report) -> None:
        """Show a :class:`~napari_nuclei.core.jobs.StepProgress` (preparing the data) or
        a :class:`~napari_nuclei.core.training.reports.TrainReport` (an iteration)."""
        from ..core.jobs import StepProgress

        if isinstance(report, StepProgress):
            self.setFormat(f"preparing data: {report.item}")
            return
        self.setRange(0, report.max_iter)
        self.setValue(report.iteration)
        minutes, seconds = divmod(int(report.eta_seconds), 60)
        self.setFormat(f"iteration %v/%m · {report.seconds_per_iter:.2f} s/it · "
                       f"ETA {minutes}:{seconds:02d}")
