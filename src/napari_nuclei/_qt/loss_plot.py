"""The live training plot: the core's figure on a matplotlib Qt canvas, themed like napari.

A full matplotlib redraw takes 0.1-0.2 s here, too long for the GUI thread once a second.
So the axes are drawn once, with room for the curves to grow, and each update only
redraws the curves and the title over that saved background (blitting); the axes are
redrawn only when a curve leaves them.
"""

from __future__ import annotations

import time
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..core.plots import TrainingPlot

_UPDATE_INTERVAL_S = 0.5
_HEADROOM = 1.5
SAVED_WIDTH_PX = 1600  # room above the curves, so that the axes seldom need redrawing


class LossPlot(FigureCanvasQTAgg):
    """Total loss and each loss term against iteration, learning rate and validation AP."""

    def __init__(self, text_colour: str = "white", background: str = "#262930"):
        self.figure = Figure(figsize=(4, 3.6), dpi=90, facecolor=background)
        super().__init__(self.figure)
        self.plot = TrainingPlot(self.figure, text_colour)
        for artist in self.plot.moving_artists:
            artist.set_animated(True)
        self.reports: list = []
        self.lr_top: float | None = None  # the base learning rate, when known
        self._background = None
        self._last_update = 0.0
        self.setMinimumHeight(280)
        self.mpl_connect("draw_event", self._on_draw)
        self.redraw()

    def follow_theme(self, viewer) -> None:
        """Take napari's theme now and whenever it changes."""
        viewer.events.theme.connect(lambda event: self._on_theme(event.value))
        self._on_theme(viewer.theme)

    def _on_theme(self, name: str) -> None:
        from napari.utils.theme import get_theme

        theme = get_theme(name)
        self.set_theme(theme.text.as_hex(), theme.background.as_hex())

    def set_theme(self, text_colour: str, background: str) -> None:
        """Recolour the figure (napari's theme changed) and redraw."""
        self.figure.set_facecolor(background)
        self.plot.set_text_colour(text_colour)
        self.redraw()

    def set_reports(self, reports: list) -> None:
        """Replace the data (a run opened from its ``metrics.jsonl``) and redraw."""
        self.reports = list(reports)
        self.redraw()

    def add_report(self, report) -> None:
        """Append one iteration; shown at most twice a second (and at the last one)."""
        self.reports.append(report)
        now = time.monotonic()
        if now - self._last_update < _UPDATE_INTERVAL_S and report.iteration < report.max_iter:
            return
        self._last_update = now
        self.show_reports()

    def show_reports(self) -> None:
        """Show every report: the curves over the saved axes, or everything redrawn when
        a curve leaves them (the one case that costs a full matplotlib redraw)."""
        self.plot.set_data(self.reports)
        if self._background is None or not self.plot.fits(self.reports):
            self.redraw()
        else:
            self._blit()

    def draw_idle(self) -> None:
        """Redraw soon, unless hidden (a resize of a hidden tab is drawn once shown:
        each draw costs the GUI thread 0.1-0.2 s, and napari resizes the dock whenever
        a layer is added)."""
        if not self.isVisible():
            self._stale = True
            return
        super().draw_idle()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self._stale = False
            self.redraw()

    def redraw(self) -> None:
        """Redraw everything: axes fitted to the data with room to grow, then the curves."""
        self.plot.set_data(self.reports)
        self.plot.fit_limits(self.reports, _HEADROOM, self.lr_top)
        self.draw()  # renders the axes; _on_draw saves them and adds the curves

    def _on_draw(self, _event) -> None:
        self._background = self.copy_from_bbox(self.figure.bbox)
        for artist in self.plot.moving_artists:
            self.figure.draw_artist(artist)

    def _blit(self) -> None:
        self.restore_region(self._background)
        for artist in self.plot.moving_artists:
            self.figure.draw_artist(artist)
        self.blit(self.figure.bbox)

    def ask_and_save(self) -> None:
        """Ask where, then save the plot (Save plot…)."""
        from qtpy.QtWidgets import QFileDialog

        from .workers import notify_error

        path, _ = QFileDialog.getSaveFileName(self, "Save plot", "loss.png", "PNG (*.png)")
        if path:
            try:
                self.save_png(path)
            except OSError as exc:
                notify_error(exc)

    def save_png(self, path: str | Path) -> None:
        """Save the plot as it is shown, at least ``SAVED_WIDTH_PX`` pixels wide."""
        from ..core.atomic import atomic_path

        for artist in self.plot.moving_artists:
            artist.set_animated(False)  # animated artists are left out of savefig
        try:
            with atomic_path(path) as tmp:
                # Wide enough for a slide, whatever the size of the dock.
                dpi = max(self.figure.dpi, SAVED_WIDTH_PX / self.figure.get_figwidth())
                self.figure.savefig(tmp, format="png", dpi=dpi,
                                    facecolor=self.figure.get_facecolor())
        finally:
            for artist in self.plot.moving_artists:
                artist.set_animated(True)
