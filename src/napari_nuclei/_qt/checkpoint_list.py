"""A run's checkpoints with their validation AP; the one clicked is used to predict."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ..core.training.reports import checkpoint_rows

_ROLE = 256  # Qt.UserRole


class CheckpointList(QWidget):
    """Checkpoints of the run in use; ``message`` says what was chosen.

    Parameters
    ----------
    session : Session
        Choosing a checkpoint sets the session's model.
    """

    message = Signal(str)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.rows = QListWidget()
        self.best_button = QPushButton("Use best checkpoint (validation AP)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Checkpoints (click one to predict with it):"))
        layout.addWidget(self.rows)
        layout.addWidget(self.best_button)
        self.rows.itemClicked.connect(self._on_checkpoint_clicked)
        self.best_button.clicked.connect(self._on_use_best)

    def show_run(self, run_dir: Path, reports) -> None:
        """List the checkpoints of ``run_dir`` (``reports`` give their validation AP)."""
        self.rows.clear()
        for path, ap in checkpoint_rows(run_dir, reports):
            item = QListWidgetItem(path.name + (f"   val AP {ap:.3f}" if ap is not None else ""))
            item.setData(_ROLE, (path, ap))
            self.rows.addItem(item)

    def _on_checkpoint_clicked(self, item) -> None:
        path, _ = item.data(_ROLE)
        self.session.use_run(path.parent, path)
        self.message.emit(f"Predict will use {path.name}")

    def _on_use_best(self) -> None:
        rows = [self.rows.item(i) for i in range(self.rows.count())]
        scored = [row for row in rows if row.data(_ROLE)[1] is not None]
        if not scored:
            self.message.emit("No checkpoint has a validation AP (set a validation fraction)")
            return
        best = max(scored, key=lambda row: row.data(_ROLE)[1])
        self.rows.setCurrentItem(best)
        self._on_checkpoint_clicked(best)
