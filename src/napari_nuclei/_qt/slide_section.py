"""Slides section: open a whole slide lazily, predict a region in a child process,
correct it in an in-memory window, write the window back, add it to a training set.

The region is the last rectangle of the "slide region" Shapes layer, or a square at the
centre of the view when there is none; "Predict view" predicts what the canvas shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.engine.libraries import missing_libraries
from ..session.jobs import SAVE, SLIDE, WRITE_BACK
from ..session.slide_jobs import relay_region
from ..session.slides import SlideEntry, pull_with_table, write_back_with_table
from .ask import ask_yes_no
from .layer_turns import insertion_steps, run_in_turns
from .slide_labels_layers import SlideLabelsLayers
from .slide_layers_made import (
    REGION_LAYER,
    empty_region_layer,
    open_with_layers,
    redraw_when_decoded,
)
from .slide_measurements import SlideMeasurements
from .slide_window_layers import WindowLayers
from .workers import start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session

class SlideSection(QWidget):
    """Buttons over a :class:`SlideSession`; the slow steps run in workers."""

    # The child-process job that predicts a region ("module:function").
    predict_target = "napari_nuclei.core.slide.region_job:iter_predict_region"

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.state = session.slides
        self.ask = ask_yes_no
        self.job = self.worker = None
        self.preparing = None  # the region whose layer is being made before its job starts
        self.slide_layer = None
        self.labels_layers = SlideLabelsLayers(viewer)
        self.slide_label = QLabel("No slide open.")
        self.hint = QLabel("")
        # What the environment lacks for slides, with the pip command (hidden when nothing).
        self.libraries_hint = QLabel(missing_libraries(("slides", "openslide")).line())
        self.libraries_hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.slide_label, self.hint, self.libraries_hint):
            label.setWordWrap(True)
        self.progress = QProgressBar()
        self.window_layers = WindowLayers(viewer, session.jobs, self.hint.setText, self)
        self.buttons = {}
        grid = QGridLayout()
        for k, (key, text, handler) in enumerate((
                ("open", "Open slide…", self._on_open_clicked),
                ("predict", "Predict region", self._on_predict),
                ("view", "Predict view", self._on_predict_view),
                ("whole", "Predict whole tissue", self._on_predict_whole),
                ("stop", "Stop", self._on_stop),
                ("edit", "Edit region", self._on_edit),
                ("write", "Write back", self._on_write_back),
                ("train", "Add region to training set", self._on_add_to_training))):
            button = self.buttons[key] = QPushButton(text)
            button.clicked.connect(handler)
            grid.addWidget(button, k // 2, k % 2)
        self.measurements = SlideMeasurements(self)
        layout = QVBoxLayout(self)
        for widget in (self.slide_label, self.progress, self.hint, self.libraries_hint,
                       self.measurements):
            layout.addWidget(widget)
        self.libraries_hint.setHidden(not self.libraries_hint.text())
        layout.insertLayout(1, grid)
        layout.addStretch(1)
        self.state.changed.connect(self._on_state_changed)
        self._on_state_changed("")

    @property
    def window_labels(self):
        """The Labels layer of the window being corrected (None before Edit region)."""
        return self.window_layers.labels

    # -- opening ------------------------------------------------------------------------
    def _on_open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a slide")
        if path:
            self.open_slide(Path(path))

    def open_slide(self, path: Path, restored: SlideEntry | None = None) -> None:
        """Open a slide as a lazy multiscale layer (nothing of level 0 is read).

        Its finished predictions in the output folder are found in the same worker, so
        that *Edit region* and the exports work on them at once. ``restored``: the slide
        as a restored session lists it (its predictions shown, its window pulled again
        with the edits autosaved in it).
        """
        self.hint.setText(f"Opening {Path(path).name}…")
        self.session.notices.forget(path)  # chosen again: its problem is said again
        start_job(open_with_layers, path, self.state.output_root, restored,
                  on_return=lambda made: self._on_opened(path, made, restored),
                  on_error=lambda exc: self._on_open_failed(path, exc, restored))

    def _on_open_failed(self, path: Path, exc: BaseException, restored=None) -> None:
        from .workers import one_line

        # The hint no longer says "Opening…": it says that nothing was opened, and why.
        self.hint.setText(f"Not opened: {one_line(exc)}")
        self.session.notices.error(one_line(exc), about=path)
        if restored is not None:
            self._restore_next()

    def _restore_next(self) -> None:
        """Open the next slide of a restored session (one at a time, in workers)."""
        entry = self.state.next_restored()
        if entry is not None:
            self.open_slide(entry.slide, restored=entry)

    def _on_opened(self, path: Path, made, restored=None) -> None:
        """Put the layers made in the worker in the viewer, a step per turn (see
        :mod:`.layer_turns`), then open the slide in the session."""
        (levels, meta, _), slide_layer, region_layer, found, labels, problems = made
        self.slide_layer = slide_layer
        redraw_when_decoded(slide_layer)
        steps = insertion_steps(self.viewer, slide_layer)
        if REGION_LAYER not in self.viewer.layers:
            steps += insertion_steps(self.viewer, region_layer)
        steps.append(self._show_scale)
        run_in_turns(steps, lambda: self._opened(path, levels, meta, found, labels,
                                                 problems, restored))

    def _show_scale(self) -> None:
        self.viewer.canvas.overlays.scale_bar.visible = True
        self.viewer.reset_view()

    def _opened(self, path, levels, meta, found, labels, problems, restored) -> None:
        top = levels[0] if isinstance(levels, list) else levels
        self.state.open(path, meta["metadata"]["mpp"], (top.shape[1], top.shape[0]), found,
                        restored)
        for out_dir, (layer, pyramid) in labels.items():
            self.labels_layers.show_made(out_dir, layer, pyramid)
        for line in problems:
            self.session.notices.warning(f"Not restored: {line}")
        self.hint.setText(f"{len(found)} finished prediction(s) of this slide in the output "
                          "folder: Edit region and the exports use them." if found else "")
        if restored is not None and restored.window is not None and \
                restored.window[0] in self.state.outputs:
            start_job(pull_with_table, *restored.window,
                      on_return=lambda pulled: self._on_pulled(pulled, restored=True))
        if restored is not None:
            self._restore_next()

    # -- regions and prediction ---------------------------------------------------------
    def drawn_region(self) -> tuple[int, int, int, int] | None:
        """The level-0 region of the last rectangle drawn, if any."""
        layer = self.viewer.layers[REGION_LAYER] if REGION_LAYER in self.viewer.layers \
            else None
        if layer is not None and len(layer.data):
            corners = [layer.data_to_world(point)[-2:] for point in layer.data[-1]]
            return self.state.region_from_corners(corners)
        return None

    def current_region(self) -> tuple[int, int, int, int]:
        """The drawn rectangle's level-0 region, or a square at the centre of the view."""
        drawn = self.drawn_region()
        if drawn is not None:
            return drawn
        return self.state.region_around(self.viewer.scene.camera.center[-2:])

    def edit_region(self) -> tuple[int, int, int, int]:
        """The region *Edit region* pulls (see :meth:`SlideSession.edit_region`)."""
        return self.state.edit_region(self.drawn_region(),
                                      self.viewer.scene.camera.center[-2:])

    def _on_predict(self) -> None:
        self.predict(self.current_region())

    def view_region(self) -> tuple[int, int, int, int]:
        """The level-0 region the canvas shows, clipped to the slide."""
        camera = self.viewer.scene.camera
        return self.state.region_in_view(camera.center[-2:],
                                         self.viewer.canvas.viewbox_size(self.viewer.layers),
                                         camera.zoom)

    def _on_predict_view(self) -> None:
        region = self.view_region()
        if not region[2] or not region[3]:
            self.hint.setText("The view shows none of the slide: move to the slide first.")
            return
        self.predict(region)

    def _on_predict_whole(self) -> None:
        self.predict(None)

    def predict(self, region) -> None:
        """Predict a level-0 region (None: the whole tissue) in a child process.

        The region's Labels layer is made first (in a worker, then put in the viewer in
        turns), so that napari builds no layer while the job runs.
        """
        if self.session.run_dir is None:
            self.hint.setText("Choose a model first: train one or open a run in Train.")
            return
        out_dir = self.state.output_for(region)
        self.preparing = out_dir
        self._set_running(True)
        # Closing napari meanwhile means the job never starts.
        preparation = self.session.jobs.started(SLIDE, out_dir.name, stop=self._on_stop)
        if self.labels_layers.shown(out_dir):
            self._start(out_dir, region, preparation)
            return
        self.hint.setText("Preparing the region's layer…")
        start_job(empty_region_layer, out_dir, self.state.size, self.state.mpp,
                  on_return=lambda layer: self.labels_layers.prepare(
                      out_dir, layer, lambda: self._start(out_dir, region, preparation)),
                  on_error=lambda exc: self._not_started(exc, preparation))

    def _not_started(self, exc: BaseException, preparation) -> None:
        from .workers import one_line

        self.session.jobs.ended(preparation)
        self.preparing = None
        self._set_running(False)
        self.hint.setText(f"Not started: {one_line(exc)}")

    def _start(self, out_dir: Path, region, preparation) -> None:
        from ..core.child_job import ChildJob

        self.session.jobs.ended(preparation)
        if self.preparing != out_dir:  # stopped (or napari closed) before it started
            return
        self.preparing = None
        self.job = ChildJob(self.predict_target, {
            "model_path": self.session.run_dir, "checkpoint": self.session.checkpoint,
            "slide": self.state.slide, "out_dir": out_dir, "region": region},
            log_path=self.session.output_folder() / "logs" / "predict-slide.log").start()
        self.hint.setText("Predicting…")
        # Stopped (closing napari too), the job keeps its finished tiles: predicting the
        # same region again continues it.
        entry = self.session.jobs.started(SLIDE, out_dir.name, stop=self.job.stop,
                                          kill=self.job.kill)
        self.worker = start_job(relay_region, self.job, out_dir, region,
                                self.labels_layers.min_interval,
                                on_yield=lambda item: self._on_progress(out_dir, *item),
                                on_return=lambda ended: self._on_predicted(
                                    out_dir, region, ended[1]),
                                on_finish=lambda: self._on_job_ended(entry))

    def _on_job_ended(self, entry) -> None:
        self._set_running(False)
        self.session.jobs.ended(entry)

    def _on_progress(self, out_dir: Path, report, live) -> None:
        if live is not None:
            self.labels_layers.tiles_done(out_dir, live)
        if hasattr(report, "total"):
            self.progress.setRange(0, max(1, report.total))
            self.progress.setValue(report.done)
            self.hint.setText(f"{report.done} of {report.total} tiles, {report.nuclei} nuclei")

    def _on_predicted(self, out_dir: Path, region, labels) -> None:
        if labels is None:
            self.hint.setText("Stopped: predicting the same region again continues.")
            return
        self.labels_layers.finished(out_dir, labels)
        self.state.predicted(out_dir, region or (0, 0, *self.state.size))
        self.hint.setText(f"Predicted into {out_dir}")

    def _on_stop(self) -> None:
        if self.preparing is not None:  # its job never starts
            self.preparing = None
            self._set_running(False)
            self.hint.setText("Stopped before the first tile.")
        elif self.job is not None:
            self.job.stop()
            self.hint.setText("Stopping after this tile…")

    @property
    def busy(self) -> bool:
        """Whether a region is being predicted (or its layer made before it starts)."""
        return self.preparing is not None or (self.job is not None and self.job.is_alive())

    def _set_running(self, running: bool) -> None:
        for key in ("predict", "view", "whole"):
            self.buttons[key].setEnabled(not running and self.state.slide is not None)
        self.buttons["stop"].setEnabled(running)

    # -- windows ------------------------------------------------------------------------
    def _on_edit(self) -> None:
        region = self.edit_region()
        out_dir = self.state.output_holding(region)
        if out_dir is None:
            self.hint.setText("Predict this region first (or draw a smaller rectangle).")
            return
        start_job(pull_with_table, out_dir, region, on_return=self._on_pulled)

    def _on_pulled(self, pulled, restored: bool = False) -> None:
        window, rows = pulled
        # A restored session's window takes back the edits autosaved in it, unasked.
        ask = (lambda _question: True) if restored else \
            (lambda question: self.ask(self, question))
        self.window_layers.show(window, rows, ask)
        self.state.set_window(window)

    def _on_write_back(self) -> None:
        self.window_layers.cancel_autosave()  # the write-back spends the autosave
        window = self.state.window
        entry = self.session.jobs.started(WRITE_BACK, window.out_dir.name)
        start_job(write_back_with_table, window, self.window_layers.edited(),
                  self.labels_layers.pyramid(window.out_dir),
                  on_return=lambda written: self._on_written(window, *written),
                  on_finish=lambda: self.session.jobs.ended(entry))

    def _on_written(self, window, result, rows) -> None:
        self.window_layers.written(result, rows)
        self.labels_layers.rewritten(window.out_dir)
        self.hint.setText(f"Wrote back: {len(result.removed)} removed, {len(result.changed)} "
                          f"changed, {len(result.added)} added"
                          + (f"; {result.restored_pixels} pixels of cut nuclei restored"
                             if result.restored_pixels else ""))

    def _on_add_to_training(self) -> None:
        from ..core.slide.training_windows import add_window_to_training_set

        window = self.state.window
        folder = self.state.windows_folder
        replace = self.state.training_sample(window).exists()
        if replace and not self.ask(self, "This region is already in the training set. "
                                    "Replace it?"):
            return
        entry = self.session.jobs.started(SAVE, "training sample")
        start_job(add_window_to_training_set, window, folder, self.window_layers.edited(),
                  replace, on_return=lambda sample: self.hint.setText(
                      f"Added {sample.name} to the training set {folder}"),
                  on_finish=lambda: self.session.jobs.ended(entry))

    def _on_state_changed(self, what: str) -> None:
        if what == "restored":
            self._restore_next()
        has_slide, has_window = self.state.slide is not None, self.state.window is not None
        if has_slide:
            mpp = f"{self.state.mpp:.3g} µm/px" if self.state.mpp else "pixel size unknown"
            self.slide_label.setText(f"{self.state.slide.name}: {self.state.size[0]}x"
                                     f"{self.state.size[1]} px, {mpp}")
        else:  # another session restored: its slides open one by one
            self.slide_label.setText("No slide open.")
        self._set_running(self.busy)
        self.buttons["edit"].setEnabled(bool(self.state.outputs))
        for button in self.measurements.buttons.values():
            button.setEnabled(bool(self.state.outputs))
        for key in ("write", "train"):
            self.buttons[key].setEnabled(has_window)
