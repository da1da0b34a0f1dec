"""The nucleus classes of the image shown: names, colours and counts, the class new nuclei
are drawn as, colouring by class, and giving nuclei another class (shown only when the
model has more than one class)."""

from __future__ import annotations

from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .class_layer import ClassLayer

COLOUR_BY = ("instance", "class")


def _swatch(colour) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class ClassPanel(QWidget):
    """A row per class (colour, name, nuclei in the image shown); the row chosen is the
    class of nuclei drawn from now on and of nuclei clicked while *Set class by
    clicking* is on.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    session : Session
    layers : PredictedLayers
        The image shown and its Labels layer.
    """

    def __init__(self, viewer, session, layers, parent=None):
        super().__init__(parent)
        self.session, self.layers = session, layers
        self.binding = ClassLayer(viewer, session, layers, parent=self)
        self.rows = QListWidget()
        self.rows.setToolTip("The class of nuclei drawn from now on, and of nuclei clicked "
                             "while Set class by clicking is on")
        self.colour_by = QComboBox()
        self.colour_by.addItems(COLOUR_BY)
        self.set_button = QPushButton("Set class by clicking")
        self.set_button.setCheckable(True)
        self.set_button.setToolTip("Click a nucleus to give it the class chosen; keys 1–9 "
                                   "give the nucleus under the pointer class 1–9")
        self.undo_button = QPushButton("Undo class change")
        self.redo_button = QPushButton("Redo")
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        colour_row, buttons = QHBoxLayout(), QHBoxLayout()
        colour_row.addWidget(QLabel("Colour by:"))
        colour_row.addWidget(self.colour_by)
        for button in (self.set_button, self.undo_button, self.redo_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Nucleus classes (nuclei in the image shown):"))
        for item in (self.rows, colour_row, buttons, self.hint):
            (layout.addLayout if isinstance(item, QHBoxLayout) else layout.addWidget)(item)
        self.rows.currentRowChanged.connect(self._on_row_chosen)
        self.colour_by.currentTextChanged.connect(
            lambda text: self.binding.colour_by_class(text == "class"))
        self.set_button.toggled.connect(self.binding.set_setting)
        self.undo_button.clicked.connect(lambda: self._step(self.session.undo_class))
        self.redo_button.clicked.connect(lambda: self._step(self.session.redo_class))
        self.binding.said.connect(self.hint.setText)
        self.binding.said.connect(self._on_said)
        layers.shown.connect(self._on_shown)
        for signal in (session.image_changed, session.image_removed):
            signal.connect(self._on_image_changed)
        session.events.classes.connect(self.refresh)
        session.events.current_class.connect(self._on_current_class)
        self.refresh()

    def _classes(self):
        """The classes of the image shown, else of the model in use."""
        image = self.session.images.get(self.layers.current or "")
        return image.class_set if image is not None else self.session.classes

    def refresh(self, _value=None) -> None:
        """List the classes with their counts; shown only with several classes."""
        classes = self._classes()
        several = len(classes) > 1
        self.setVisible(several)
        if not several:
            self.set_button.setChecked(False)
            return
        image = self.session.images.get(self.layers.current or "")
        counts = image.class_counts() if image is not None else {}
        self.rows.blockSignals(True)
        if self.rows.count() != len(classes):
            self.rows.clear()
            for entry in classes:
                self.rows.addItem(QListWidgetItem(_swatch(entry.color), entry.name))
        for row, entry in enumerate(classes):
            item = self.rows.item(row)
            number = f"{row + 1}. " if row < 9 else ""
            item.setText(f"{number}{entry.name} · {counts.get(entry.name, 0)}")
            item.setIcon(_swatch(entry.color))
        self.rows.setCurrentRow(min(self.session.current_class, len(classes) - 1))
        self.rows.blockSignals(False)
        nucleus = image.nucleus_classes if image is not None else None
        self.undo_button.setEnabled(bool(nucleus and nucleus.can_undo))
        self.redo_button.setEnabled(bool(nucleus and nucleus.can_redo))

    def counts(self) -> dict[str, str]:
        """The text of each class's row, by class name (what the user reads)."""
        classes = self._classes()
        return {entry.name: self.rows.item(row).text() for row, entry in enumerate(classes)}

    def _on_row_chosen(self, row: int) -> None:
        if row >= 0:
            self.session.current_class = row

    def _on_current_class(self, _value=None) -> None:
        self.refresh()

    def _on_shown(self, _name: str) -> None:
        self.binding.follow()
        self.refresh()

    def _on_image_changed(self, name: str) -> None:
        if name == self.layers.current:
            self.binding.recolour()
            self.refresh()

    def _on_said(self, _text: str) -> None:
        if not self.binding.setting:  # turned off by choosing another tool
            self.set_button.setChecked(False)

    def _step(self, action) -> None:
        name = self.layers.current
        if name in self.session.images and not action(name):
            self.hint.setText("Nothing to take back or do again.")
