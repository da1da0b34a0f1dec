"""A path field with a Browse button."""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget


class FolderField(QWidget):
    """Line edit plus file dialog; ``changed`` fires with the path when editing ends."""

    changed = Signal(str)

    def __init__(self, placeholder: str, pick_file: str = "", parent=None):
        super().__init__(parent)
        self.pick_file = pick_file  # a file filter ("JSON (*.json)") picks files, not folders
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        browse = QPushButton("Browse…")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(browse)
        browse.clicked.connect(self._on_browse)
        self.edit.editingFinished.connect(lambda: self.changed.emit(self.text()))

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, value: str, emit: bool = True) -> None:
        self.edit.setText(str(value))
        if emit:
            self.changed.emit(self.text())

    def _on_browse(self) -> None:
        if self.pick_file:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", self.text(),
                                                  self.pick_file)
        else:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder", self.text())
        if path:
            self.set_text(path)
