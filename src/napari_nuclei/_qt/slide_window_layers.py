"""The layers of a slide window being corrected: its pixels, its labels (with the
nucleus table's rows as features), and their autosave once the brush rests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, QTimer

from ..session.slides import as_features, autosave_and_count
from .workers import start_job

if TYPE_CHECKING:
    import napari

AUTOSAVE_DELAY_MS = 1000


class WindowLayers(QObject):
    """Shows one window at a time, on the slide's scale, and autosaves its edits.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    jobs : Jobs
        The session's job registry: an autosave due is a pending save there, so that
        closing napari writes it.
    say : callable
        Shows a one-line hint (the section's label).
    """

    KEY = "slide window"

    def __init__(self, viewer: napari.viewer.Viewer, jobs, say: Callable[[str], None],
                 parent=None):
        super().__init__(parent)
        self.viewer, self.jobs, self.say = viewer, jobs, say
        self.window = self.image = self.labels = None
        # Painting restarts it: the window is autosaved once the brush rests.
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(AUTOSAVE_DELAY_MS)
        self.autosave_timer.timeout.connect(self._on_autosave_due)

    def show(self, window, rows: list[dict], ask) -> None:
        """Replace the shown window; offer its autosaved edits back (``ask`` a question)."""
        from ..core.slide.window_autosave import autosaved_labels

        if self.autosave_timer.isActive():  # the edits of the window shown are kept
            self._on_autosave_due()
        for layer in (self.image, self.labels):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        unit = window.mpp or 1 / window.factor
        place = {"scale": (unit, unit), "translate": (window.top * unit, window.left * unit)}
        if window.mpp:
            place["units"] = ("micrometer", "micrometer")
        name = f"window x{window.level0_region[0]} y{window.level0_region[1]}"
        self.window = window
        self.image = self.viewer.add_image(window.image, name=name, rgb=True, **place)
        # The table's rows as features: napari shows a nucleus' row under the pointer.
        self.labels = self.viewer.add_labels(window.labels, name=f"{name} nuclei",
                                             features=as_features(rows), **place)
        self.labels.events.paint.connect(self._on_painted)
        saved = autosaved_labels(window)
        if saved is not None and ask("Corrections of this window were autosaved but not "
                                     "written back. Restore them?"):
            self.labels.data = saved
        self.say(f"Correct the nuclei of {name}, then Write back. Nuclei cut by its border "
                 f"({len(window.cut_ids)}) are kept as they are.")

    def edited(self):
        """A copy of the labels as corrected so far (safe to hand to a worker)."""
        return self.labels.data.copy()

    def written(self, result, rows: list[dict]) -> None:
        """Show the labels as written back, and their new table rows."""
        if result.labels is not None:
            self.labels.data = result.labels
        self.labels.features = as_features(rows)

    def _on_painted(self, _event=None) -> None:
        self.autosave_timer.start()
        self.jobs.pending(self.KEY, self._on_autosave_due, self.save_now)

    def cancel_autosave(self) -> None:
        """Drop the autosave due (a write-back writes the edits instead)."""
        self.autosave_timer.stop()
        self.jobs.begun(self.KEY)

    def _on_autosave_due(self) -> None:
        from ..session.jobs import SAVE

        self.cancel_autosave()
        if self.window is None or self.labels is None:
            return
        entry = self.jobs.started(SAVE, "slide window")
        start_job(autosave_and_count, self.window, self.labels.data.copy(),
                  on_return=lambda n: self.say(
                      f"{n} nuclei corrected in this window (autosaved; Write back to "
                      "update the slide)"),
                  on_finish=lambda: self.jobs.ended(entry))

    def save_now(self) -> None:
        """Autosave the window's edits before returning (napari tearing down)."""
        from ..core.slide.window_autosave import autosave_window

        self.cancel_autosave()
        if self.window is not None and self.labels is not None:
            autosave_window(self.window, self.labels.data)
