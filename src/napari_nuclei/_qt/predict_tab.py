"""Predict section: predict what is in view or the test folder, in a child process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..core.predict.outputs import LOWEST_SCORE
from ..session.jobs import PREDICTION
from .ask import ask_yes_no
from .class_panel import ClassPanel
from .image_list import PredictedImageList
from .image_source import source_in_view
from .predict_form import PredictForm
from .predicted_layers import PredictedLayers
from .workers import notify_error, open_chosen_dataset, prepared_relay, start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session

THRESHOLD_DELAY_MS = 150


class PredictTab(QWidget):
    """Buttons, score threshold and the list of predicted images."""

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.layers = PredictedLayers(viewer, session, self)
        self.worker = self.job = self._entry = None
        self.capped: list[str] = []  # images whose detections reached the cap
        self.ask = ask_yes_no
        self.model_label = QLabel("Model: none yet (train one, or open a run in Train)")
        self.hint = QLabel("")
        self.current_button = QPushButton("Predict current image")
        self.folder_button = QPushButton("Predict test folder")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(int(LOWEST_SCORE * 100), 100)
        self.threshold.setToolTip("Minimum score of the nuclei shown (no new prediction "
                                  "needed). Lower it when nuclei are missed, raise it when "
                                  "debris is taken for nuclei. Starts at the run's own.")
        self.threshold_label = QLabel("")
        self.form = PredictForm()
        self.progress = QProgressBar()
        # Through self.ask, which tests replace.
        self.image_list = PredictedImageList(session, self.layers,
                                             lambda *question: self.ask(*question))
        self.images, self.add_button = self.image_list.rows, self.image_list.add_button
        self.classes = ClassPanel(viewer, session, self.layers, parent=self)
        for label in (self.model_label, self.hint):
            label.setWordWrap(True)
        buttons, slider = QHBoxLayout(), QHBoxLayout()
        for button in (self.current_button, self.folder_button, self.stop_button):
            buttons.addWidget(button)
        slider.addWidget(self.threshold)
        slider.addWidget(self.threshold_label)
        layout = QVBoxLayout(self)
        for item in (self.model_label, self.form.native, buttons, slider, self.progress,
                     self.hint, self.image_list, self.classes):
            (layout.addLayout if isinstance(item, QHBoxLayout) else layout.addWidget)(item)
        self._threshold_timer = QTimer(self, singleShot=True, interval=THRESHOLD_DELAY_MS)
        self._threshold_timer.timeout.connect(self._on_threshold_due)
        self.current_button.clicked.connect(self._on_predict_current)
        self.folder_button.clicked.connect(self._on_predict_folder)
        self.stop_button.clicked.connect(self._on_stop)
        self.threshold.valueChanged.connect(self._on_threshold_moved)
        self.image_list.message.connect(self.hint.setText)
        for signal in (session.events.run_dir, session.events.checkpoint):
            signal.connect(self._on_model_changed)
        session.events.score_thresh.connect(self._on_score_thresh)
        self.layers.shown.connect(self._follow_shown)  # another image in view: its own
        self._on_score_thresh(session.score_thresh)

    # -- model and threshold ------------------------------------------------------------
    def _on_model_changed(self, _value=None) -> None:
        run, checkpoint = self.session.run_dir, self.session.checkpoint
        name = checkpoint.name if checkpoint else "last checkpoint"
        self.model_label.setText(f"Model: {run} ({name})" if run else
                                 "Model: none yet (train one, or open a run in Train)")

    def _on_score_thresh(self, _value: float | None = None) -> None:
        self._follow_shown()

    def _follow_shown(self, *_args) -> None:
        """Show the threshold of the image in view (see ``Session.threshold_shown``)."""
        value = self.session.threshold_shown(self.layers.shown_name())
        self.threshold.blockSignals(True)
        self.threshold.setValue(round(value * 100))
        self.threshold.blockSignals(False)
        self.threshold_label.setText(f"score ≥ {value:.2f}")

    def _on_threshold_moved(self, value: int) -> None:
        self.threshold_label.setText(f"score ≥ {value / 100:.2f}")
        self._threshold_timer.start()  # re-filter once the slider rests

    def _on_threshold_due(self) -> None:
        from ..core.errors import InputError
        from ..session import EditedImageError

        try:
            self.session.set_threshold(self.threshold.value() / 100, self.layers.shown_name())
        except EditedImageError as exc:
            self.hint.setText(f"{exc}")
            self._follow_shown()  # the slider goes back to the image's threshold
        except InputError as exc:  # the session could not be saved
            notify_error(exc)

    # -- prediction ---------------------------------------------------------------------
    def _start(self, sources) -> None:
        if self.session.run_dir is None:
            self.hint.setText("Choose a model first: train one or open a run in Train.")
            return
        self.layers.follow, self.capped = len(sources) == 1, []
        self.progress.setRange(0, len(sources))
        self.progress.setValue(0)
        self.progress.setFormat("image %v/%m")
        self._set_running(True)
        self.job = None
        self.layers.prepare(sources[0].name, sources[0].path, lambda: self._launch(sources))

    def _launch(self, sources) -> None:
        from ..core.child_job import ChildJob

        if not self.stop_button.isEnabled():  # stopped while the layers were made
            self._set_running(False)
            return
        log = self.session.output_folder() / "logs" / "predict.log"
        self.job = ChildJob("napari_nuclei.core.predict.outputs:iter_predict_sources",
                            {"model": self.session.run_dir, "sources": sources,
                             "checkpoint": self.session.checkpoint, "keep_pixels": True,
                             **self.form.settings().options()},
                            log_path=log).start()
        # Stopped, the child ends at its next image or tile; what it predicted is shown.
        self._entry = self.session.jobs.started(PREDICTION, f"{len(sources)} image(s)",
                                                stop=self.job.stop, kill=self.job.kill)
        self.worker = start_job(prepared_relay, self.job, self.session.score_thresh,
                                on_yield=self._on_predicted,
                                on_finish=self._on_finished,
                                progress={"total": len(sources), "desc": "predicting"})

    def _set_running(self, running: bool) -> None:
        self.current_button.setEnabled(not running)
        self.folder_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _on_finished(self) -> None:
        from napari.utils.notifications import show_warning

        self._set_running(False)
        self.session.jobs.ended(self._entry)
        if self.capped:
            show_warning(f"The detection cap was reached in {', '.join(self.capped)}: some "
                         "nuclei are missing (raise Most nuclei)")
        if self.job is not None and self.job.stopping:
            self.hint.setText(f"Stopped after {self.progress.value()} of "
                              f"{self.progress.maximum()} image(s).")

    def _on_stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.hint.setText("Stopping at the next tile or image…")
        else:  # not started yet: it will not be
            self.stop_button.setEnabled(False)
            self.hint.setText("Stopped before the first image.")

    def _on_predict_current(self) -> None:
        try:
            found = source_in_view(self.viewer, self.layers)
        except ValueError as exc:
            self.hint.setText(str(exc))
            return
        source, layer = found
        self.layers.register_image(source.name, layer)
        self._start([source])

    def _on_predict_folder(self) -> None:
        from ..core.predict.outputs import ImageSource

        dataset = open_chosen_dataset(self.session.test_dir, self.hint.setText, "test",
                                      self.session.notices)
        if dataset is not None:
            self._start([ImageSource(r.name, r.path) for r in dataset.records])

    def _on_predicted(self, prepared) -> None:
        from napari.utils.notifications import show_warning

        from ..core.errors import InputError
        from ..core.predict.outputs import ImageSkipped, TileProgress

        result, image = prepared
        if isinstance(result, TileProgress):  # a large image, predicted tile by tile
            self.progress.setFormat(f"image %v/%m · {result.name}: tile {result.tile}/"
                                    f"{result.tiles}")
            return
        self.progress.setFormat("image %v/%m")
        self.progress.setValue(result.done)
        if isinstance(result, ImageSkipped):
            show_warning(f"Skipped {result.problem}")
            return
        if result.name not in self.layers.images and result.pixels is not None:
            self.layers.register_pixels(result.name, result.pixels)
        try:
            taken = self._take(result, image)
        except InputError as exc:  # taken, but the session could not be saved
            notify_error(exc)
            taken = True
        if taken and result.prediction.hit_cap:  # said once, when the batch ends
            self.capped.append(result.name)

    def _take(self, result, image) -> bool:
        """Show a prediction; asks first when it would replace corrections."""
        from ..session import EditedImageError

        try:
            self.session.add_prediction(result.name, result.path, result.prediction,
                                        image=image)
        except EditedImageError as exc:
            if not self.ask(self, f"{exc}. Replace them with the new prediction? They are "
                            f"moved into {self.session.replaced_folder()}, not deleted."):
                self.hint.setText(f"Kept the corrections of {result.name}.")
                return False
            self.session.add_prediction(result.name, result.path, result.prediction,
                                        replace_edits=True, image=image)
        return True
