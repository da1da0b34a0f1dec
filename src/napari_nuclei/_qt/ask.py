"""The one question the dock asks before it replaces or discards anything."""

from __future__ import annotations

from qtpy.QtWidgets import QMessageBox


def ask_yes_no(parent, question: str) -> bool:
    """Ask ``question``; True when the user answers Yes (tests replace this function)."""
    answer = QMessageBox.question(parent, "napari-nuclei", question)
    return answer == QMessageBox.StandardButton.Yes
