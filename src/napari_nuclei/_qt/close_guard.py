"""Closing napari (or the dock) never loses work: it asks while training runs, stops the
training with a checkpoint, and saves corrections not saved yet."""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject

# How long closing waits for the training process to write its checkpoint and exit.
STOP_WAIT_S = 120


class CloseGuard(QObject):
    """Watches the window the dock lives in for its close request.

    Parameters
    ----------
    dock : NucleiDock
        The dock whose jobs and corrections are guarded.
    """

    def __init__(self, dock):
        super().__init__(dock)
        self.dock = dock
        self.watching = False  # no reference to the window: napari must be free to go

    def watch(self, window) -> None:
        """Start watching ``window`` (the napari main window)."""
        if window is not None and not self.watching:
            window.installEventFilter(self)
            self.watching = True

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close and watched is self.dock.window():
            if not self.may_close():
                event.ignore()
                return True
        return False

    def may_close(self) -> bool:
        """Ask while training runs; then stop the jobs and save pending corrections.

        Returns
        -------
        bool
            False when the user chose to keep napari open.
        """
        train, predict = self.dock.train_tab, self.dock.predict_tab
        if train.training:
            if not predict.ask(self.dock, "A training run is in progress. Close anyway? "
                               "It stops with a checkpoint, and Resume continues it."):
                return False
            train.job.stop()
            if not train.job.join(STOP_WAIT_S):
                train.job.kill()
        if predict.job is not None and predict.job.is_alive():
            predict.job.kill()
        predict.layers.autosave.save_now()
        return True
