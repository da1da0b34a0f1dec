"""Export section: labels as COCO JSON, the submission for the test folder, evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtWidgets import QFileDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from .workers import notify_error

if TYPE_CHECKING:
    import napari


def submission_for_test_folder(state, test_ids: Path | None = None):
    """Entries for every predicted test image (corrected labels where the user edited).

    Returns ``(entries, image sizes, names of test images not predicted)``.
    """
    from ..core.dataset import open_dataset
    from ..core.export import prediction_entries
    from ..core.submission import image_ids_by_name

    dataset = open_dataset(state.data.test_dir)
    ids = image_ids_by_name(dataset, test_ids)
    entries, sizes, missing = [], {}, []
    for record in dataset.records:
        predicted = state.data.predicted.get(record.name)
        if predicted is None:
            missing.append(record.name)
            continue
        image_id = ids[Path(record.file_name).name]
        sizes[image_id] = (predicted.prediction.height, predicted.prediction.width)
        entries += prediction_entries(image_id, predicted.prediction, predicted.score_thresh,
                                      predicted.predicted_labels,
                                      np.asarray(predicted.layer.data))
    return entries, sizes, missing


class ExportTab(QWidget):
    """Hand-in files, validated before they are written, and scores against ground truth."""

    def __init__(self, viewer: napari.viewer.Viewer, state, parent=None):
        super().__init__(parent)
        self.viewer, self.state = viewer, state
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

    def _ask(self, default: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Save as", default, "JSON (*.json)")
        return path

    def export_coco(self, path: str) -> None:
        """Write the selected Labels layer as COCO instances JSON."""
        from napari.layers import Labels

        from .._writer import write_labels_coco

        layer = self.viewer.layers.selection.active
        if not path:
            return
        if not isinstance(layer, Labels):
            self.result.setText("Select a Labels layer first.")
            return
        try:
            write_labels_coco(path, layer.data, layer.as_layer_data_tuple()[1])
        except Exception as exc:
            notify_error(exc)
            return
        self._done(f"Wrote {path}: {len(np.unique(layer.data)) - 1} nuclei")

    def export_submission(self, path: str) -> None:
        """Write the submission for the whole test folder (validated first)."""
        from ..core.submission import write_submission

        if not path:
            return
        if self.state.data.test_dir is None:
            self.result.setText("Choose a test folder in the Data section first.")
            return
        try:
            entries, sizes, missing = submission_for_test_folder(self.state)
            write_submission(path, entries, sizes)
        except Exception as exc:
            notify_error(exc)
            return
        note = f"; not predicted yet: {', '.join(missing)}" if missing else ""
        self._done(f"Wrote {path}: {len(entries)} nuclei in {len(sizes)} images{note}")

    def evaluate(self) -> dict | None:
        """Score the current predictions (with corrections) against the ground truth."""
        from ..core.ground_truth import load_ground_truth
        from ..core.metrics import evaluate

        data = self.state.data
        if data.gt_dir is None or data.test_dir is None:
            self.result.setText("Choose a test folder and its ground truth in Data first.")
            return None
        try:
            entries, _, _ = submission_for_test_folder(self.state)
            ids = data.test_dir / "test_img_ids.json"
            gt = load_ground_truth(data.gt_dir, ids if ids.is_file() else None)
            result = evaluate(gt, entries)
        except Exception as exc:
            notify_error(exc)
            return None
        o = result["overall"]
        self.result.setText(f"AP {o['AP']:.3f} · AP50 {o['AP50']:.3f} · AJI {o['AJI']:.3f} · "
                            f"F1 {o['F1']:.3f} ({o['gt_nuclei']} true nuclei, "
                            f"{o['predicted_nuclei']} predicted)")
        return result

    def _done(self, message: str) -> None:
        from napari.utils.notifications import show_info

        self.result.setText(message)
        show_info(message)
