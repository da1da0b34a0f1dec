"""The engine panel: says what training and prediction still lack, and installs it."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..core.engine import engine_status, install_engine
from .workers import start_job


class EnginePanel(QWidget):
    """Shown while torch, detectron2 or detectron2's requirements are missing.

    *Install* runs :func:`napari_nuclei.core.engine.install_engine` in a worker, with its
    steps in a progress bar; afterwards the engine is used without restarting napari
    where possible, else the panel says a restart is needed. torch is never installed
    here (its CPU or CUDA build is the user's choice): the panel shows the command.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = None
        self._result = None
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        # Selectable, so the torch command can be copied into a terminal.
        self.problems.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.install_button = QPushButton("Install detectron2")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (self.problems, self.install_button, self.progress, self.message):
            layout.addWidget(widget)
        self.install_button.clicked.connect(self._on_install)
        self.refresh()

    def refresh(self) -> bool:
        """Check the engine again; show the panel only while something is missing.

        Returns
        -------
        bool
            Whether the engine is ready.
        """
        status = engine_status()
        lines = status.problems(how="the Install button below")
        self.problems.setText("Training and prediction need:\n" + "\n".join(
            f"• {line}" for line in lines))
        # The installer provides detectron2 and its requirements, not torch.
        self.install_button.setEnabled(
            status.detectron2_dir is None or bool(status.missing_requirements))
        self.setVisible(not status.ready)
        return status.ready

    def _on_install(self) -> None:
        self._result = None
        self.install_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.message.setText("Installing…")
        self.worker = start_job(install_engine, on_yield=self._on_step,
                                on_return=self._on_installed, on_finish=self._on_finish)

    def _on_step(self, step) -> None:
        self.progress.setRange(0, step.total)
        self.progress.setValue(step.step - 1)
        self.progress.setFormat(f"step {step.step}/{step.total}")
        self.message.setText(step.message)

    def _on_installed(self, result) -> None:
        self._result = result
        self.progress.setValue(self.progress.maximum())

    def _on_finish(self) -> None:
        from napari.utils.notifications import show_info

        self.progress.setVisible(False)
        result = self._result
        if result is None:  # the error is shown as a notification by the worker
            self.message.setText("The installation failed: see the notification.")
            self.install_button.setEnabled(True)
            return
        if result.restart_needed:
            self.refresh()
            self.setVisible(True)
            self.install_button.setEnabled(False)
            self.message.setText(result.summary())
            return
        self.message.setText(result.summary())
        if self.refresh():
            show_info(result.summary())
