"""Data section: choose folders and the session's output folder, check, browse, convert."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
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
from .workers import one_line, open_chosen_dataset, start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session

FIELDS = ("train_dir", "test_dir", "gt_dir", "output_dir")


class DataTab(QWidget):
    """Pick folders, see a summary with validation warnings, open images as layers."""

    session_read = Signal()  # *Open session…* has ended: the session shown, or refused

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.conversion = self.job = None
        self.left = False  # napari's window has closed
        self.reading = None  # the worker reading a session (Open session…)
        self.conversion_root: Path | None = None  # what the checked file names start from
        self.train_field = FolderField("train/<id>/images + masks (or label images, COCO)")
        self.test_field = FolderField("folder of images with test_img_ids.json")
        self.gt_field = FolderField("optional: ground truth of the test images")
        self.output_field = FolderField("corrections and the session are saved here")
        self.fields = dict(zip(FIELDS, (self.train_field, self.test_field, self.gt_field,
                                        self.output_field), strict=True))
        form = QFormLayout()
        for label, key in (("Training data", "train_dir"), ("Test images", "test_dir"),
                           ("Ground truth", "gt_dir"), ("Output folder", "output_dir")):
            form.addRow(label, self.fields[key])
        self.open_session_button = QPushButton("Open session…")
        self.open_session_button.setToolTip("Restore the folders, model, predictions and "
                                            "corrections saved in an output folder")
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
        for widget in (self.open_session_button, self.check_button, self.progress,
                       self.summary, self.save_button,
                       QLabel("Images (double-click to open):"), self.images):
            layout.addWidget(widget)
        for key, field in self.fields.items():
            field.changed.connect(lambda p, k=key: self._on_field_edited(k, p))
            getattr(session.events, key).connect(partial(self._on_session_folder, key))
        self.open_session_button.clicked.connect(self._on_open_session)
        self.check_button.clicked.connect(self._on_check)
        self.save_button.clicked.connect(self._on_save)
        self.images.itemDoubleClicked.connect(self._on_open_image)

    def _on_field_edited(self, key: str, path: str) -> None:
        setattr(self.session, key, Path(path).expanduser() if path else None)

    def _on_session_folder(self, key: str, value) -> None:
        self.fields[key].set_text(str(value) if value else "", emit=False)
        if key in ("train_dir", "test_dir"):
            self._list_images()
        if key == "train_dir":  # a check of another folder no longer applies
            self.conversion = None
            self.save_button.setEnabled(False)
            self.summary.setText("Not checked yet.")

    def _datasets(self):
        from ..core.dataset import open_dataset

        found = []
        for label, path in (("train", self.session.train_dir),
                            ("test", self.session.test_dir)):
            if path is None:
                continue
            try:
                found.append((label, open_dataset(path)))
            except Exception as exc:  # bad folders are reported, not raised at the GUI
                self.session.notices.error(one_line(exc), about=path)
        return found

    def _list_images(self) -> None:
        self.images.clear()
        for label, dataset in self._datasets():
            for record in dataset.records:
                item = QListWidgetItem(f"{label}: {record.name}")
                # 256: Qt.UserRole
                item.setData(256, (record, dataset.annotated, dataset.classes))
                self.images.addItem(item)

    def _on_open_session(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a session (its output folder)")
        if path:
            self.open_session(Path(path))

    def open_session(self, folder: Path) -> None:
        """Restore the session saved in an output folder: read in a worker (the gate, the
        predictions and corrections loaded), then shown."""
        from ..session.actions import session_snapshot
        from ..session.restore import read_saved_session, why_not_restore

        refused = why_not_restore(self.session)
        if refused is not None:
            self.summary.setText(refused)
            self.session.notices.warning(refused)
            self.session_read.emit()
            return
        unsaved = session_snapshot(self.session) if self.session.needs_saving() else None
        self.summary.setText(f"Opening the session in {folder}…")
        self.open_session_button.setEnabled(False)  # one at a time
        self.reading = start_job(read_saved_session, Path(folder), unsaved,
                                 on_return=lambda read: self._on_session_read(folder, read),
                                 on_error=self._on_session_not_read)

    def leave(self) -> None:
        """napari's window is closing: a session read meanwhile is not shown (the one
        open was saved before the reading began)."""
        self.left = True

    def _on_session_not_read(self, exc: BaseException) -> None:
        if self.left:
            return
        self.session.notices.error(one_line(exc))
        self.summary.setText(f"Not opened: {one_line(exc)}")
        self._session_ended()

    def _session_ended(self) -> None:
        self.open_session_button.setEnabled(True)
        self.session_read.emit()

    def _on_session_read(self, folder: Path, read) -> None:
        from ..session.restore import show_read_session

        if self.left:
            return
        try:
            show_read_session(self.session, read)  # says what was not restored
        except Exception as exc:  # the open session could not be saved first
            self._on_session_not_read(exc)
            return
        self.summary.setText(f"Session restored from {folder}: "
                             f"{len(self.session.images)} predicted image(s).")
        self._session_ended()

    def _on_check(self) -> None:
        from ..core.convert import iter_conversion

        dataset = open_chosen_dataset(self.session.train_dir, self.summary.setText,
                                      "training", self.session.notices)
        if dataset is None:
            return
        self.progress.setRange(0, len(dataset))
        self.check_button.setEnabled(False)
        self.job = start_job(iter_conversion, dataset,
                             on_yield=lambda p: self.progress.setValue(p.done),
                             on_return=lambda c: self._on_checked(c, dataset.root),
                             on_finish=lambda: self.check_button.setEnabled(True),
                             progress={"total": len(dataset), "desc": "checking data"})

    def _on_checked(self, conversion, root: Path) -> None:
        self.conversion, self.conversion_root = conversion, root
        from ..session.data import classes_line

        lines = [f"{conversion.n_images} images, {conversion.n_annotations} nuclei."]
        lines += [line for line in (classes_line(conversion.coco),) if line]
        lines += [f"⚠ {line}" for line in conversion.warning_lines()]
        self.summary.setText("\n".join(lines))
        self.save_button.setEnabled(True)

    def _on_save(self) -> None:
        from ..core.atomic import write_json_atomic
        from ..session.data import coco_json_target

        if self.conversion is None:
            return
        conversion = self.conversion
        start = coco_json_target(self.conversion_root, self.session.output_dir)
        path, _ = QFileDialog.getSaveFileName(self, "Save COCO JSON", str(start),
                                              "JSON (*.json)")
        if path:
            start_job(write_json_atomic, path, conversion.coco, on_return=lambda _p: (
                self.summary.setText(f"Saved {conversion.n_annotations} nuclei to {path}")))

    def _on_open_image(self, item) -> None:
        from .._layers import record_layer_data
        from ..session.data import ground_truth_layers

        record, annotated, classes = item.data(256)
        try:
            # With several classes, the nuclei are coloured by their class.
            layers = (ground_truth_layers(record, classes) if annotated
                      else record_layer_data(record, annotated))
        except Exception as exc:
            self.session.notices.error(one_line(exc), about=record.path)
            return
        for data, kwargs, kind in layers:
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def set_paths(self, train: Path | None = None, test: Path | None = None,
                  gt: Path | None = None, output: Path | None = None) -> None:
        """Fill the folders (used by the sample-data launcher and tests)."""
        for key, value in zip(FIELDS, (train, test, gt, output), strict=True):
            if value is not None:
                setattr(self.session, key, Path(value))
