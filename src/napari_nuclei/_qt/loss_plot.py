"""The live training plot: the core's figure on a matplotlib Qt canvas, themed like napari."""

from __future__ import annotations

import time
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..core.plots import TrainingPlot

# Redraw at most this often: a matplotlib redraw takes tens of milliseconds.
_REDRAW_INTERVAL_S = 2.0


class LossPlot(FigureCanvasQTAgg):
    """Total loss and each loss term against iteration, learning rate and validation AP."""

    def __init__(self, text_colour: str = "white", background: str = "#262930"):
        self.figure = Figure(figsize=(4, 3.6), dpi=90, facecolor=background)
        super().__init__(self.figure)
        self.plot = TrainingPlot(self.figure, text_colour)
        self.reports: list = []
        self._last_draw = 0.0
        self.setMinimumHeight(280)
        self.redraw()

    def set_reports(self, reports: list) -> None:
        """Replace the data (a run opened from its ``metrics.jsonl``) and redraw."""
        self.reports = list(reports)
        self.redraw()

    def add_report(self, report) -> None:
        """Append one iteration; redraws at most every two seconds (and at the last one)."""
        self.reports.append(report)
        now = time.monotonic()
        if now - self._last_draw >= _REDRAW_INTERVAL_S or report.iteration == report.max_iter:
            self.redraw()

    def redraw(self) -> None:
        self.plot.update(self.reports)
        self._last_draw = time.monotonic()
        self.draw_idle()

    def save_png(self, path: str | Path) -> None:
        """Save the plot as it is shown."""
        from ..core.atomic import atomic_path

        with atomic_path(path) as tmp:
            self.figure.savefig(tmp, format="png", facecolor=self.figure.get_facecolor())
