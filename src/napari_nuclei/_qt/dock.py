"""The "Nuclei segmentation" dock widget: Data, Train, Predict, Export and Slides sections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QScrollArea, QTabWidget, QVBoxLayout, QWidget

from ..session import Session
from .close_guard import CloseGuard
from .data_tab import DataTab
from .engine_panel import EnginePanel
from .export_tab import ExportTab
from .predict_tab import PredictTab
from .slide_section import SlideSection
from .train_tab import TrainTab
from .workers import show_notice

if TYPE_CHECKING:
    import napari


def _scrollable(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


class NucleiDock(QWidget):
    """One tab per step of the workflow, all bound to one :class:`Session`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer the dock belongs to.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = Session()
        self.session.notices.said.connect(show_notice)
        self.data_tab = DataTab(napari_viewer, self.session)
        self.train_tab = TrainTab(napari_viewer, self.session)
        self.predict_tab = PredictTab(napari_viewer, self.session)
        self.export_tab = ExportTab(napari_viewer, self.session)
        self.slide_section = SlideSection(napari_viewer, self.session)
        self.export_tab.add_slide_exports(self.slide_section.measurements)
        self.tabs = QTabWidget()
        for title, tab in (("Data", self.data_tab), ("Train", self.train_tab),
                           ("Predict", self.predict_tab), ("Export", self.export_tab),
                           ("Slides", self.slide_section)):
            self.tabs.addTab(_scrollable(tab), title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.engine_panel = EnginePanel()  # visible only while the engine is missing
        layout.addWidget(self.engine_panel)
        layout.addWidget(self.tabs)
        self.setMinimumWidth(400)
        self.close_guard = CloseGuard(self)
        # A worker's result arriving after napari's window closed has nowhere to go.
        self.close_guard.leaving.connect(self.predict_tab.layers.leave)
        self.close_guard.leaving.connect(self.data_tab.leave)
        # Once napari has placed the dock, watch its window's close request.
        QTimer.singleShot(0, self._on_placed)

    def _on_placed(self) -> None:
        if self.window() is not self:
            self.close_guard.watch(self.window())

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if self.close_guard.may_close_dock():
            event.accept()
        else:
            event.ignore()
