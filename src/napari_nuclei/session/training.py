"""The training run the Train section starts and follows (no Qt).

The dock's worker relays the child process's reports here; the section's widgets bind to
what this model announces: each report (the plot, the progress bar) and the run's
checkpoints, listed as each is written rather than when the run ends. How a run that
failed is told, and what of it is cleaned away, is decided here too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from psygnal import Signal

PROCESS_LOG = "process.log"


class TrainingRun:
    """The run in the Train section: its reports and checkpoints.

    Attributes
    ----------
    run_dir : Path or None
        The run folder.
    reports : list of TrainReport
        Its iterations so far (from ``metrics.jsonl`` for a run opened).
    checkpoints : list of tuple
        ``(checkpoint file, validation AP or None)``, oldest first.
    """

    reported = Signal(object)  # a TrainReport, StepProgress or Notice
    checkpoints_changed = Signal()

    def __init__(self):
        self.run_dir: Path | None = None
        self.reports: list = []
        self.checkpoints: list = []
        # Validation results per checkpoint file name (per-class APs included).
        self.checkpoint_details: dict = {}
        self._new = False
        self._before: set[str] | None = None  # the folder's entries before a new run

    def begin(self, run_dir: Path, new: bool, reports=()) -> None:
        """A run starts (``new``) or resumes in ``run_dir``; ``reports``: those it
        already has. What a new run's folder holds now is noted, so that a start that
        fails takes away only what it made."""
        self.run_dir, self._new = Path(run_dir), new
        self._before = set(os.listdir(run_dir)) if Path(run_dir).is_dir() else None
        self.reports = list(reports)
        self._list_checkpoints()

    def show_run(self, run_dir: Path, reports) -> None:
        """A run opened (or ended): its reports and the checkpoints on disk."""
        self.run_dir, self.reports, self._new = Path(run_dir), list(reports), False
        self._list_checkpoints()

    def take(self, report) -> None:
        """A report of the running job: kept (iterations), announced, and a checkpoint
        it names is listed at once."""
        from ..core.training.reports import TrainReport

        if isinstance(report, TrainReport):
            self.reports.append(report)
        self.reported.emit(report)
        if isinstance(report, TrainReport) and report.checkpoint:
            self._list_checkpoints()

    def _list_checkpoints(self) -> None:
        from ..core.training.reports import checkpoint_metrics, checkpoint_rows

        rows = checkpoint_rows(self.run_dir, self.reports) if self.run_dir else []
        details = checkpoint_metrics(self.run_dir, self.reports) if self.run_dir else {}
        if rows != self.checkpoints or details != self.checkpoint_details:
            self.checkpoints, self.checkpoint_details = rows, details
            self.checkpoints_changed.emit()

    def failed(self, line: str) -> str:
        """The run ended with an error (``line``): what to tell the user.

        A new run that ended before it became a run (no settings, no checkpoint) left
        nothing to resume: what
        this start made in the folder (the child's ``process.log``, the folder itself
        when it made it) is removed, and anything that was there before is left.
        The message says whether, and from which checkpoint, Resume continues.
        """
        run_dir = self.run_dir
        if run_dir is None:
            return f"Training ended with an error: {line}. napari is unaffected."
        self._list_checkpoints()
        if self.checkpoints:
            last = self.checkpoints[-1][0].name
            return (f"Training ended with an error: {line}. napari is unaffected; Resume "
                    f"continues from the last checkpoint, {last}.")
        from ..core.training.run import holds_run

        if holds_run(run_dir):
            return (f"Training ended with an error: {line}. napari is unaffected; no "
                    "checkpoint was written: Resume starts this run again from iteration "
                    "0.")
        if self._new:
            self._take_back()
        return (f"Training ended with an error: {line}. napari is unaffected; nothing was "
                "trained, and what this start wrote was removed: Start again once it is "
                "fixed.")

    def _take_back(self) -> None:
        """Remove what a failed start made in its run folder, and the folder if it made
        it (only when nothing else is left in it)."""
        run_dir, before = self.run_dir, self._before
        if not run_dir.is_dir():
            return
        for name in set(os.listdir(run_dir)) - (before or set()):
            path = run_dir / name
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        if before is None:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty
