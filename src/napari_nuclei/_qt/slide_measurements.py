"""Measurements in the Slides section: the row of the nucleus clicked, and exports of a
predicted region's table (CSV) and nuclei (GeoJSON for QuPath), written in workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .workers import start_job

VISIBLE_ROWS = 12


def _rows_height(table: QTableWidget, rows: int) -> int:
    """The height that shows the header and ``rows`` rows of ``table`` whole."""
    return (table.horizontalHeader().sizeHint().height()
            + rows * table.verticalHeader().defaultSectionSize() + 2 * table.frameWidth())


def _save_path(parent, title: str, default: Path, pattern: str) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(parent, title, str(default), pattern)
    return Path(path) if path else None


class SlideMeasurements(QWidget):
    """A read-only table of the clicked nucleus' row and the two export buttons.

    Parameters
    ----------
    section : SlideSection
        Gives the viewer, the slide session, the window's and the outputs' layers.
    """

    def __init__(self, section, parent=None):
        super().__init__(parent)
        self.section = section
        self.ask_save_path = _save_path
        self.row: dict | None = None
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["measurement", "value"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # Room for a nucleus' main measurements at a glance (the dock scrolls for more).
        self.table.setMinimumHeight(_rows_height(self.table, VISIBLE_ROWS))
        self.buttons = {}
        row = QHBoxLayout()
        for key, text, handler in (("csv", "Export table (CSV)…", self._on_export_csv),
                                   ("geojson", "Export GeoJSON for QuPath…",
                                    self._on_export_geojson)):
            button = self.buttons[key] = QPushButton(text)
            button.clicked.connect(handler)
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(row)
        section.viewer.mouse_drag_callbacks.append(self._on_click)

    # -- the clicked nucleus ------------------------------------------------------------
    def _on_click(self, viewer, event) -> None:
        section = self.section
        window = section.window_labels
        if window is not None and window in viewer.layers and window.visible:
            nucleus = _label_at(window, event.position)
            if nucleus:
                features = window.features
                found = features[features["index"] == nucleus]
                if len(found):
                    self.show_row({"id": nucleus, **found.iloc[0].drop("index").to_dict()})
                    return
        for out_dir, layer in list(section.labels_layers.layers.items()):
            nucleus = _label_at(layer, event.position) if layer in viewer.layers else 0
            if nucleus and out_dir in section.state.outputs:
                from ..core.slide.measurements import nucleus_row

                start_job(nucleus_row, out_dir, nucleus, on_return=self.show_row)
                return

    def show_row(self, row: dict | None) -> None:
        """Show a nucleus' row (name, value) in the table."""
        self.row = row
        items = list((row or {}).items())
        self.table.setRowCount(len(items))
        for k, (name, value) in enumerate(items):
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            self.table.setItem(k, 0, QTableWidgetItem(str(name)))
            self.table.setItem(k, 1, QTableWidgetItem(text))

    # -- exports ------------------------------------------------------------------------
    def _export_target(self) -> Path | None:
        state = self.section.state
        if not state.outputs:
            self.section.hint.setText("Predict a region first.")
            return None
        return state.output_holding(self.section.current_region()) or list(state.outputs)[-1]

    def _on_export_csv(self) -> None:
        self.export_csv(self.section.hint.setText)

    def _on_export_geojson(self) -> None:
        self.export_geojson(self.section.hint.setText)

    def export_csv(self, say) -> None:
        """Ask where, then write the nucleus table of the region's prediction as CSV in a
        worker; ``say`` shows the outcome (the Slides and Export tabs each pass theirs)."""
        from ..core.slide.measurements import export_table_csv

        self._export(export_table_csv, "Export the nucleus table", ".csv", "CSV (*.csv)",
                     "rows", say)

    def export_geojson(self, say) -> None:
        """Ask where, then write the region's nuclei as GeoJSON for QuPath in a worker."""
        from ..core.slide.measurements import export_geojson

        self._export(export_geojson, "Export nuclei for QuPath", ".geojson",
                     "GeoJSON (*.geojson)", None, say)

    def _export(self, function, title: str, suffix: str, pattern: str, unit, say) -> None:
        out_dir = self._export_target()
        if out_dir is None:
            return
        dest = self.ask_save_path(self, title, out_dir.parent / f"{out_dir.name}{suffix}",
                                  pattern)
        if dest is None:
            return
        say(f"Exporting {dest.name}…")
        start_job(function, out_dir, dest, on_return=lambda result: say(
            f"Exported {result} {unit} to {dest}" if unit else f"Exported {dest}"))


def _label_at(layer, world_position) -> int:
    """The level-0 label value under a world position (0 outside the layer or on
    background). Reads one pixel (one chunk of a lazy level), whatever napari drew."""
    level0 = layer.data[0] if layer.multiscale else layer.data
    y, x = (int(np.floor(v)) for v in layer.world_to_data(world_position)[-2:])
    if not (0 <= y < level0.shape[-2] and 0 <= x < level0.shape[-1]):
        return 0
    return int(np.asarray(level0[..., y, x]).reshape(-1)[0])
