"""A run's checkpoints with their validation AP; the one clicked is used to predict."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

_ROLE = 256  # Qt.UserRole


class CheckpointList(QWidget):
    """Checkpoints of the run in the Train section; ``message`` says what was chosen.

    Parameters
    ----------
    session : Session
        Choosing a checkpoint sets the session's model.
    training : TrainingRun
        The run whose checkpoints are listed, as they are written.
    """

    message = Signal(str)

    def __init__(self, session, training, parent=None):
        super().__init__(parent)
        self.session, self.training = session, training
        self.rows = QListWidget()
        self.best_button = QPushButton("Use best checkpoint (validation AP)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Checkpoints (click one to predict with it):"))
        layout.addWidget(self.rows)
        layout.addWidget(self.best_button)
        self.rows.itemClicked.connect(self._on_checkpoint_clicked)
        self.best_button.clicked.connect(self._on_use_best)
        training.checkpoints_changed.connect(self._on_checkpoints_changed)

    def _on_checkpoints_changed(self) -> None:
        from ..core.training.reports import class_aps

        self.rows.clear()
        for path, ap in self.training.checkpoints:
            per_class = class_aps(self.training.checkpoint_details.get(path.name, {}))
            text = path.name + (f"   val AP {ap:.3f}" if ap is not None else "")
            if per_class:
                text += " (" + ", ".join(f"{name} {value:.3f}"
                                         for name, value in per_class.items()) + ")"
            item = QListWidgetItem(text)
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
