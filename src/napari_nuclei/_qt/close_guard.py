"""Closing napari (or the dock) never loses work and never freezes the window.

The guard walks the session's job registry (:mod:`napari_nuclei.session.jobs`): it asks
while training runs, then asks every job to stop the way that keeps its work (training
writes a checkpoint, a slide job keeps its tiles and resumes), begins every pending
save, and holds the close while they end; the window stays responsive meanwhile and
closes once the registry is idle.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, QTimer, Signal

from ..session.jobs import TRAINING

# How long closing waits for the jobs to stop (the training process to write its
# checkpoint and exit) before ending them at once.
STOP_WAIT_S = 120


class CloseGuard(QObject):
    """Watches the window the dock lives in for its close request.

    Parameters
    ----------
    dock : NucleiDock
        The dock whose session's jobs and saves are guarded.
    """

    closed = Signal()  # a close held while the jobs ended has gone through
    leaving = Signal()  # napari's window is closing now: nothing is shown in it any more

    def __init__(self, dock):
        super().__init__(dock)
        self.dock = dock
        self.jobs = dock.session.jobs
        self.watching = False  # no reference to the window: napari must be free to go
        self.closing = False  # a close is held until the jobs have ended
        self._tearing_down = False
        self._overdue = QTimer(self, singleShot=True, interval=STOP_WAIT_S * 1000)
        self._overdue.timeout.connect(self._on_overdue)
        self._check = QTimer(self, singleShot=True, interval=0)
        self._check.timeout.connect(self._on_check)

    def watch(self, window) -> None:
        """Start watching ``window`` (the napari main window)."""
        if window is None or self.watching:
            return
        window.installEventFilter(self)
        # napari's own teardown (``viewer.close()``) closes the canvas before the window
        # and goes on whatever the window answers: such a close cannot be held.
        central = window.centralWidget() if hasattr(window, "centralWidget") else None
        for child in central.children() if central is not None else ():
            if hasattr(child, "installEventFilter") and child.isWidgetType():
                child.installEventFilter(self)
        self.watching = True

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() != QEvent.Type.Close:
            return False
        if watched is self.dock.window():
            if self._tearing_down:
                self.finish_now()
                self.leaving.emit()
                return False
            if not self.may_close():
                event.ignore()
                return True
            self.leaving.emit()
        elif self.watching:  # the canvas closes first: napari is tearing down
            self._tearing_down = True
        return False

    def may_close(self) -> bool:
        """Whether napari may close now; otherwise begin closing once the jobs end.

        Nothing running and nothing to save: True. Otherwise (after asking, while
        training runs) every job is asked to stop and every pending save begins, and
        False is returned: the window closes by itself once they have all ended
        (``closed`` is emitted then). Jobs that do not stop within :data:`STOP_WAIT_S`
        are ended at once; their saved work stays.

        Returns
        -------
        bool
            True when nothing is left to wait for.
        """
        if self.jobs.idle:
            return self._may_lose_unsaved()
        if self.closing:
            return False
        if self.jobs.running_of(TRAINING) and not self.dock.predict_tab.ask(
                self.dock, "A training run is in progress. Close anyway? It stops with a "
                "checkpoint, and Resume continues it."):
            return False
        self.closing = True
        self.jobs.changed.connect(self._on_jobs_changed)
        self._overdue.start()
        self.jobs.wind_down()
        self._on_jobs_changed()
        return False

    def may_close_dock(self) -> bool:
        """Whether the dock alone may close (napari stays): after asking while training
        runs, the jobs are asked to stop and the pending saves are written at once."""
        if self.jobs.running_of(TRAINING) and not self.dock.predict_tab.ask(
                self.dock, "A training run is in progress. Close anyway? It stops with a "
                "checkpoint, and Resume continues it."):
            return False
        self.finish_now()
        return True

    def finish_now(self) -> None:
        """For a close that cannot be held: ask every job to stop and write every
        pending save before returning (nothing waits for the jobs)."""
        self.jobs.finish_now()
        self._stop_closing()

    def _on_jobs_changed(self) -> None:
        # Coalesced: a job ending may begin another save in the same call.
        self._check.start()

    def _on_check(self) -> None:
        if not self.closing:
            return
        if self.jobs.pending_saves:  # a save became due meanwhile (a stale autosave)
            self.jobs.flush()
        if self.jobs.idle:
            self._stop_closing()
            if not self._may_lose_unsaved():
                return  # a save failed: napari stays open, the corrections with it
            self.closed.emit()
            if self.dock.window() is not self.dock:
                self.dock.viewer.close()  # napari's own teardown, as if closed at once

    def _may_lose_unsaved(self) -> bool:
        """True unless corrections are not saved (a save into the output folder failed)
        and the user, asked, keeps napari open."""
        question = self.dock.session.unsaved_question()
        if question is not None:  # tried once more: the folder may be writable again
            self.dock.predict_tab.layers.autosave.save_now()
            question = self.dock.session.unsaved_question()
        return question is None or bool(self.dock.predict_tab.ask(self.dock, question))

    def _on_overdue(self) -> None:
        if self.closing:
            self.jobs.kill_overdue()

    def _stop_closing(self) -> None:
        if self.closing:
            self.closing = False
            self._overdue.stop()
            self.jobs.changed.disconnect(self._on_jobs_changed)
