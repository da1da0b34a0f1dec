"""The engine panel: says what training and prediction still lack, and installs it."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..core.engine import engine_status, install_engine, missing_libraries, verify_engine
from ..core.engine.libraries import INSTALLED_WITH_ENGINE
from .workers import start_job

INSTALL_HOW = "the Install button below"


def _verified(status, generation: int):
    """Check ``status`` by using the engine (in a worker thread); the refresh it answers
    comes back with it. The panel is a method's receiver, so a panel closed meanwhile
    is not called."""
    return verify_engine(status), generation


class EnginePanel(QWidget):
    """Shown while torch, detectron2 or detectron2's requirements are missing, or while
    they are there but do not work together. *Install* also installs the libraries that
    cannot be base dependencies (OpenSlide's), which the panel then names.

    What package metadata says is shown at once; whether the engine works is checked by
    using it (:func:`napari_nuclei.core.engine.verify_engine`, seconds the first time)
    in a worker, and the panel appears if it does not. *Install* runs
    :func:`napari_nuclei.core.engine.install_engine` in a worker, with its steps in a
    progress bar; afterwards the engine is used without restarting napari where
    possible, else the panel says a restart is needed. torch is never installed here
    (its CPU or CUDA build is the user's choice): the panel shows the command.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.worker = None
        self.check_worker = None
        self._result = None
        # Counts refreshes, so that a check started before a later one is not shown.
        self._generation = 0
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
        """Check the engine again; show the panel only while something is missing or
        does not work.

        Package metadata is read here (milliseconds); when it finds every piece, using
        the engine is checked in a worker, and the panel shows its verdict when it comes.

        Returns
        -------
        bool
            Whether the engine is complete as far as package metadata tells.
        """
        self._generation += 1
        status = engine_status()
        self.show_status(status)
        if status.complete:
            self.check_worker = start_job(_verified, status, self._generation,
                                          on_return=self._on_checked)
        return status.complete

    def show_status(self, status) -> None:
        """Show what ``status`` says is missing or failing; hide while nothing is known
        to be wrong (a complete engine whose check has not answered yet included)."""
        lines = status.problems(how=INSTALL_HOW)
        text = "Training and prediction need:\n" + "\n".join(f"• {line}" for line in lines)
        # The installer adds OpenSlide's libraries too; said while the panel is shown, but
        # no reason to show it (the Slides section says so, with the pip command).
        if extra := missing_libraries(INSTALLED_WITH_ENGINE).line(how=INSTALL_HOW):
            text += f"\n• {extra}"
        self.problems.setText(text)
        # The installer provides detectron2 and its requirements, not torch.
        self.install_button.setEnabled(status.installer_can_fix())
        self.setVisible(bool(lines))

    def _on_checked(self, checked) -> None:
        status, generation = checked
        if generation == self._generation:
            self.show_status(status)

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
        # The installer checked the engine by using it: its status is the verdict.
        self._generation += 1
        self.show_status(result.status)
        if result.restart_needed:
            self.setVisible(True)
            self.install_button.setEnabled(False)
            self.message.setText(result.summary())
            return
        self.message.setText(result.summary())
        if result.ready:
            show_info(result.summary())
