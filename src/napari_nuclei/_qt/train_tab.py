"""Train section: start / stop / resume a run in a child process, live plot, checkpoints.

The run is the command line's own training generator, in a spawned child process; a
worker thread relays its reports to the plot. napari's process never hosts torch's
training threads, their memory or their crashes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..session.jobs import TRAINING
from ..session.training import PROCESS_LOG, TrainingRun
from .checkpoint_list import CheckpointList
from .loss_plot import LossPlot
from .train_form import TrainForm
from .train_progress import TrainProgress
from .workers import notify_error, relay, start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session


class TrainTab(QWidget):
    """Runs :func:`napari_nuclei.core.training.run.iter_training` in a child process."""

    # The child-process job that trains ("module:function").
    train_target = "napari_nuclei.core.training.run:iter_training"

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.training_run = TrainingRun()
        self.worker = self.job = self.result = None
        self.form = TrainForm()
        self.plot = LossPlot()
        self.plot.follow_theme(viewer)
        self.progress = TrainProgress()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.start_button, self.stop_button, self.resume_button = (
            QPushButton("Start"), QPushButton("Stop"), QPushButton("Resume"))
        self.open_button, self.save_plot_button = QPushButton("Open run…"), QPushButton(
            "Save plot…")
        self.stop_button.setEnabled(False)
        self.checkpoint_list = CheckpointList(session, self.training_run)
        self.checkpoints = self.checkpoint_list.rows
        self.best_button = self.checkpoint_list.best_button
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button,
                       self.open_button, self.save_plot_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        for item in (self.form, buttons, self.progress, self.status, self.plot,
                     self.checkpoint_list):
            (layout.addLayout if isinstance(item, QHBoxLayout) else layout.addWidget)(item)
        self.start_button.clicked.connect(self._on_start)
        self.stop_button.clicked.connect(self._on_stop)
        self.resume_button.clicked.connect(self._on_resume)
        self.open_button.clicked.connect(self._on_open_run)
        self.save_plot_button.clicked.connect(self.plot.ask_and_save)
        self.checkpoint_list.message.connect(self.status.setText)
        self.training_run.reported.connect(self._on_reported)

    @property
    def run_dir(self) -> Path:
        return self.form.run_folder()

    def _on_start(self) -> None:
        from ..core.training.run import holds_run

        if self.session.train_dir is None:
            self.status.setText("Choose a training folder in the Data section first.")
            return
        try:
            settings = self.form.settings()
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        if holds_run(self.run_dir):
            self.status.setText(f"{self.run_dir} already holds a training run: continue it "
                                "with Resume, or choose another output folder.")
            return
        self.plot.lr_top = settings.base_lr
        self.plot.set_reports([])
        self._run(settings, data=self.session.train_dir, resume=False)

    def _on_resume(self) -> None:
        from ..core.errors import InputError
        from ..core.training.settings import load_run_facts

        try:
            self.plot.lr_top = float(load_run_facts(self.run_dir)["base_lr"])
        except (InputError, OSError, KeyError, TypeError, ValueError):
            self.status.setText(f"{self.run_dir} holds no run to resume: open one with "
                                "Open run…, or Start a new one.")
            return
        self.plot.set_reports(self._read_metrics())
        self._run(None, data=None, resume=True)

    def _run(self, settings, data, resume: bool) -> None:
        from ..core.child_job import ChildJob

        self._set_running(True)
        self.status.setText("Starting the training process…")
        self.training_run.begin(self.run_dir, new=not resume, reports=self.plot.reports)
        self.job = ChildJob(self.train_target,
                            {"settings": settings, "run_dir": self.run_dir, "data": data,
                             "resume": resume},
                            log_path=self.run_dir / PROCESS_LOG, pass_stop=True).start()
        # Stopped (closing napari too), the run writes a checkpoint that Resume continues.
        entry = self.session.jobs.started(TRAINING, self.run_dir.name, stop=self.job.stop,
                                          kill=self.job.kill)
        self.worker = start_job(relay, self.job, on_yield=self._on_report,
                                on_return=self._on_finished, on_error=self._on_failed,
                                on_finish=lambda: self._on_ended(entry))

    def _on_ended(self, entry) -> None:
        self._set_running(False)
        self.session.jobs.ended(entry)

    @property
    def training(self) -> bool:
        """Whether a training process is running."""
        return self.job is not None and self.job.is_alive()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _on_stop(self) -> None:
        if self.job is not None:
            self.job.stop()
        self.status.setText("Stopping after this iteration (a checkpoint is written)…")

    def _on_failed(self, exc: BaseException) -> None:
        from .workers import one_line

        self.status.setText(self.training_run.failed(one_line(exc)))
        notify_error(exc)

    def _on_report(self, report) -> None:
        self.training_run.take(report)  # announced back to _on_reported

    def _on_reported(self, report) -> None:
        from napari.utils.notifications import show_info, show_warning

        from ..core.jobs import StepProgress
        from ..core.training.reports import Notice, TrainReport

        if isinstance(report, Notice):
            (show_warning if report.level == "warning" else show_info)(report.message)
            self.status.setText(report.message)
        elif isinstance(report, StepProgress | TrainReport):
            self.progress.show_report(report)
            if isinstance(report, TrainReport):
                self.plot.add_report(report)

    def _on_finished(self, result) -> None:
        self.result = result
        what = "Stopped" if result.stopped else "Finished"
        self.status.setText(f"{what} at iteration {result.iteration} of {result.max_iter}; "
                            f"run folder {result.run_dir}")
        self.plot.show_reports()  # the axes are redrawn only when a curve left them
        self._list_checkpoints(result.run_dir)
        if result.checkpoint is not None:
            self.session.use_run(result.run_dir, result.checkpoint)

    def _read_metrics(self):
        from ..core.training.reports import read_metrics

        return read_metrics(self.run_dir)

    def _on_open_run(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a training run", str(self.run_dir))
        if path:
            self.open_run(Path(path))

    def open_run(self, run_dir: Path) -> bool:
        """Show a run: its settings in the form, its plot and its checkpoints; predict
        with its last checkpoint. A folder that is not a run is refused."""
        from ..core.runs import read_run

        try:
            self.session.use_run(run_dir)
            settings = read_run(self.session.run_dir).settings
        except Exception as exc:
            self.status.setText(str(exc))
            return False
        run_dir = self.session.run_dir
        self.form.show_settings(settings)
        self.form.output.set_text(str(run_dir), emit=False)
        self.plot.set_reports(self._read_metrics())
        self._list_checkpoints(run_dir)
        self.status.setText(f"Opened {run_dir}")
        return True

    def _list_checkpoints(self, run_dir: Path) -> None:
        self.training_run.show_run(run_dir, self._read_metrics())
