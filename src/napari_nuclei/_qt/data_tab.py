"""Data section: choose training / test / ground-truth folders, check, browse, convert."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .folder_field import FolderField
from .workers import notify_error, open_chosen_dataset, start_job

if TYPE_CHECKING:
    import napari


class DataTab(QWidget):
    """Pick folders, see a summary with validation warnings, open images as layers."""

    def __init__(self, viewer: napari.viewer.Viewer, state, parent=None):
        super().__init__(parent)
        self.viewer, self.state = viewer, state
        self.conversion = None
        self.train_field = FolderField("train/<id>/images + masks (or label images, COCO)")
        self.test_field = FolderField("folder of images with test_img_ids.json")
        self.gt_field = FolderField("optional: ground truth of the test images")
        form = QFormLayout()
        form.addRow("Training data", self.train_field)
        form.addRow("Test images", self.test_field)
        form.addRow("Ground truth", self.gt_field)
        self.check_button = QPushButton("Check training data")
        self.save_button = QPushButton("Save as COCO JSON…")
        self.save_button.setEnabled(False)
        self.summary = QLabel("No data chosen yet.")
        self.summary.setWordWrap(True)
        self.progress = QProgressBar()
        self.images = QListWidget()
        self.images.setToolTip("Double-click an image to open it (with its nuclei)")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        for widget in (self.check_button, self.progress, self.summary, self.save_button,
                       QLabel("Images (double-click to open):"), self.images):
            layout.addWidget(widget)
        self.train_field.changed.connect(lambda p: self._on_folder_changed("train_dir", p))
        self.test_field.changed.connect(lambda p: self._on_folder_changed("test_dir", p))
        self.gt_field.changed.connect(lambda p: self._on_folder_changed("gt_dir", p))
        self.check_button.clicked.connect(self._on_check)
        self.save_button.clicked.connect(self._on_save)
        self.images.itemDoubleClicked.connect(self._on_open_image)

    def _on_folder_changed(self, key: str, path: str) -> None:
        self.state.set_folders(**{key: path or None})
        self._list_images()

    def _datasets(self):
        from ..core.dataset import open_dataset

        found = []
        for label, path in (("train", self.state.data.train_dir),
                            ("test", self.state.data.test_dir)):
            if path is None:
                continue
            try:
                found.append((label, open_dataset(path)))
            except Exception as exc:  # bad folders are reported, not raised at the GUI
                notify_error(exc)
        return found

    def _list_images(self) -> None:
        self.images.clear()
        for label, dataset in self._datasets():
            for record in dataset.records:
                item = QListWidgetItem(f"{label}: {record.name}")
                item.setData(256, (record, dataset.annotated))  # 256: Qt.UserRole
                self.images.addItem(item)

    def _on_check(self) -> None:
        from ..core.convert import iter_conversion

        dataset = open_chosen_dataset(self.state.data.train_dir, self.summary.setText,
                                      "training")
        if dataset is None:
            return
        self.progress.setRange(0, len(dataset))
        self.check_button.setEnabled(False)
        self.job = start_job(iter_conversion, dataset,
                             on_yield=lambda p: self.progress.setValue(p.done),
                             on_return=self._on_checked,
                             on_finish=lambda: self.check_button.setEnabled(True),
                             progress={"total": len(dataset), "desc": "checking data"})

    def _on_checked(self, conversion) -> None:
        self.conversion = conversion
        lines = [f"{conversion.n_images} images, {conversion.n_annotations} nuclei."]
        lines += [f"⚠ {line}" for line in conversion.warning_lines()]
        self.summary.setText("\n".join(lines))
        self.save_button.setEnabled(True)

    def _on_save(self) -> None:
        from napari.utils.notifications import show_info

        from ..core.atomic import write_json_atomic

        path, _ = QFileDialog.getSaveFileName(self, "Save COCO JSON", "annotations.json",
                                              "JSON (*.json)")
        if path and self.conversion is not None:
            write_json_atomic(path, self.conversion.coco)
            show_info(f"Saved {self.conversion.n_annotations} nuclei to {path}")

    def _on_open_image(self, item) -> None:
        from .._layers import record_layer_data

        record, annotated = item.data(256)
        try:
            layers = record_layer_data(record, annotated)
        except Exception as exc:
            notify_error(exc)
            return
        for data, kwargs, kind in layers:
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def set_paths(self, train: Path | None = None, test: Path | None = None,
                  gt: Path | None = None) -> None:
        """Fill the folders (used by the sample-data launcher and tests)."""
        for field, value in ((self.train_field, train), (self.test_field, test),
                             (self.gt_field, gt)):
            if value is not None:
                field.set_text(str(value))
