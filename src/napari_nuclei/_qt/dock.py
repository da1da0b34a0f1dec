"""The "Nuclei segmentation" dock widget: Data, Train, Predict and Export sections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .data_tab import DataTab
from .engine_panel import EnginePanel
from .export_tab import ExportTab
from .predict_tab import PredictTab
from .state import SessionState
from .train_tab import TrainTab

if TYPE_CHECKING:
    import napari


def _scrollable(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    return area


class NucleiDock(QWidget):
    """One tab per step of the workflow; the tabs share a :class:`SessionState`.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
        The viewer the dock belongs to.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = SessionState(self)
        self.data_tab = DataTab(napari_viewer, self.state)
        self.train_tab = TrainTab(napari_viewer, self.state)
        self.predict_tab = PredictTab(napari_viewer, self.state)
        self.export_tab = ExportTab(napari_viewer, self.state)
        self.tabs = QTabWidget()
        for title, tab in (("Data", self.data_tab), ("Train", self.train_tab),
                           ("Predict", self.predict_tab), ("Export", self.export_tab)):
            self.tabs.addTab(_scrollable(tab), title)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.engine_panel = EnginePanel()  # visible only while the engine is missing
        layout.addWidget(self.engine_panel)
        layout.addWidget(self.tabs)
        self.setMinimumWidth(440)
