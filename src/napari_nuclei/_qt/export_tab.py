"""Export section: labels as COCO JSON, the submission for the test folder, evaluation.

The files are written and the scores computed in workers, from copies of the labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from .workers import start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session


def _write_coco(path: str, labels, attributes: dict) -> str:
    import numpy as np

    from .._writer import write_labels_coco

    write_labels_coco(path, labels, attributes)
    return f"Wrote {path}: {len(np.unique(labels)) - 1} nuclei"


class ExportTab(QWidget):
    """Hand-in files, validated before they are written, and scores against ground truth."""

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.worker = None
        self.last_evaluation: dict | None = None
        self.coco_button = QPushButton("Export selected labels as COCO JSON…")
        self.submission_button = QPushButton("Export submission for the test folder…")
        self.evaluate_button = QPushButton("Evaluate against ground truth")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        layout = QVBoxLayout(self)
        for widget in (self.coco_button, self.submission_button, self.evaluate_button,
                       self.result):
            layout.addWidget(widget)
        layout.addStretch()
        self.coco_button.clicked.connect(lambda: self.export_coco(self._ask("nuclei.json")))
        self.submission_button.clicked.connect(
            lambda: self.export_submission(self._ask("submission.json")))
        self.evaluate_button.clicked.connect(self.evaluate)

    def add_slide_exports(self, measurements) -> None:
        """Offer the Slides tab's exports here too: the nucleus table (CSV) and the GeoJSON
        for QuPath of the slide prediction holding the current region."""
        self.slide_buttons = {}
        layout = self.layout()
        for key, text, export in (
                ("csv", "Export slide nucleus table (CSV)…", measurements.export_csv),
                ("geojson", "Export slide nuclei for QuPath (GeoJSON)…",
                 measurements.export_geojson)):
            button = self.slide_buttons[key] = QPushButton(text)
            button.clicked.connect(lambda _checked=False, export=export:
                                   export(self.result.setText))
            layout.insertWidget(layout.indexOf(self.result), button)

    def _ask(self, default: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Save as", default, "JSON (*.json)")
        return path

    def _run(self, function, *args, on_return) -> None:
        self.result.setText("Working…")
        for button in (self.coco_button, self.submission_button, self.evaluate_button):
            button.setEnabled(False)
        self.worker = start_job(function, *args, on_return=on_return,
                                on_finish=self._on_finished, on_error=self._on_error)

    def _on_finished(self) -> None:
        for button in (self.coco_button, self.submission_button, self.evaluate_button):
            button.setEnabled(True)

    def _on_error(self, exc: BaseException) -> None:
        from .workers import notify_error, one_line

        self.result.setText(one_line(exc))
        notify_error(exc)

    def export_coco(self, path: str) -> None:
        """Write the selected Labels layer as COCO instances JSON."""
        import numpy as np
        from napari.layers import Labels

        layer = self.viewer.layers.selection.active
        if not path:
            return
        if not isinstance(layer, Labels):
            self.result.setText("Select a Labels layer first.")
            return
        self._run(_write_coco, path, np.array(layer.data), layer.as_layer_data_tuple()[1],
                  on_return=self._done)

    def export_submission(self, path: str) -> None:
        """Write the submission for the whole test folder (validated first)."""
        from ..session.handin import images_snapshot, write_test_submission

        if not path:
            return
        if self.session.test_dir is None:
            self.result.setText("Choose a test folder in the Data section first.")
            return
        self._run(write_test_submission, path, self.session.test_dir,
                  images_snapshot(self.session), on_return=self._done)

    def evaluate(self) -> None:
        """Score the current predictions (with corrections) against the ground truth."""
        from ..session.handin import evaluate_test_folder, images_snapshot

        if self.session.gt_dir is None or self.session.test_dir is None:
            self.result.setText("Choose a test folder and its ground truth in Data first.")
            return
        self._run(evaluate_test_folder, self.session.test_dir, self.session.gt_dir,
                  images_snapshot(self.session), on_return=self._on_evaluated)

    def _on_evaluated(self, result: dict) -> None:
        self.last_evaluation = result
        from ..session.handin import scores_text

        self.result.setText(scores_text(result))

    def _done(self, message: str) -> None:
        from napari.utils.notifications import show_info

        self.result.setText(message)
        show_info(message)
