"""The dock widget in a real viewer (Xvfb): data, training, prediction, correction, export."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLE_DATA

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer, qtbot, tmp_path):
    from napari_nuclei._qt.dock import NucleiDock

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    assert isinstance(widget, NucleiDock)
    widget.data_tab.set_paths(SAMPLE_DATA, SAMPLE_DATA / "test", SAMPLE_DATA / "test_gt",
                              tmp_path / "session")
    yield viewer, widget
    for tab in (widget.train_tab, widget.predict_tab):
        if tab.job is not None:
            tab.job.kill()
    workers = (widget.train_tab.worker, widget.predict_tab.worker, widget.export_tab.worker,
               widget.predict_tab.layers.autosave._saving)
    qtbot.waitUntil(lambda: not any(w is not None and w.is_running for w in workers))


def _wait_idle(qtbot, worker, timeout=600_000):
    qtbot.waitUntil(lambda: not worker.is_running, timeout=timeout)


def _predict_folder(qtbot, widget, tiny_run):
    assert widget.train_tab.open_run(tiny_run[0])
    predict = widget.predict_tab
    layers = predict.layers
    predict.folder_button.click()
    # Before the prediction starts, the reused pair of layers is made: the first test
    # image shown, its labels layer empty until its prediction comes.
    qtbot.waitUntil(lambda: layers.labels_layer is not None, timeout=60_000)
    assert not widget.session.images and not layers.labels_layer.data.any()
    first = sorted((SAMPLE_DATA / "test").glob("*.png"))[0].stem
    assert layers.image_layer.name == first and layers.image_layer.visible
    made = (layers.image_layer.unique_id, layers.labels_layer.unique_id)
    qtbot.waitUntil(lambda: len(widget.session.images) == 2, timeout=300_000)
    _wait_idle(qtbot, predict.worker)
    assert (layers.image_layer.unique_id, layers.labels_layer.unique_id) == made
    assert layers.current == first and layers.labels_layer.visible
    assert layers.labels_layer.data is widget.session.images[first].labels
    return predict


def test_data_section_checks_and_opens_images(dock, qtbot):
    viewer, widget = dock
    data = widget.data_tab
    assert data.images.count() == 5  # 3 training + 2 test images
    data.check_button.click()
    qtbot.waitUntil(lambda: "108 nuclei" in data.summary.text(), timeout=60_000)
    assert data.summary.text().startswith("3 images")
    data._on_open_image(data.images.item(0))
    assert [layer.name for layer in viewer.layers][-2:] == ["fluo_r0c0", "fluo_r0c0 nuclei"]
    # Another training folder makes the check stale: it cannot be saved as that folder's.
    data.set_paths(train=SAMPLE_DATA / "test_gt")
    assert not data.save_button.isEnabled()


def test_training_runs_in_a_child_process_stops_with_a_checkpoint_and_resumes(
        dock, qtbot, tmp_path):
    _, widget = dock
    train = widget.train_tab
    train.form.iterations.value = 200
    train.form.val_fraction.value = 0.0
    train.form.output.set_text(str(tmp_path / "run"), emit=False)
    train.start_button.click()
    qtbot.waitUntil(lambda: len(train.plot.reports) >= 3, timeout=300_000)
    assert train.training
    train.stop_button.click()
    qtbot.waitUntil(lambda: train.result is not None, timeout=300_000)
    done = train.result.iteration
    assert train.result.stopped and done < 200
    assert (tmp_path / "run" / f"model_{done - 1:07d}.pth").is_file()
    assert "Stopped at iteration" in train.status.text()
    # Start refuses to overwrite the run, in the dock's words; Resume continues it.
    train.start_button.click()
    assert "continue it with Resume" in train.status.text()
    train.resume_button.click()
    qtbot.waitUntil(lambda: train.plot.reports[-1].iteration > done, timeout=300_000)
    # Closing napari asks; keeping it open leaves the run going.
    widget.predict_tab.ask = lambda *_: False
    assert not widget.close_guard.may_close() and train.training
    # Closing anyway stops the child with a checkpoint that Resume can continue from;
    # napari closes once it has stopped, its event loop running meanwhile.
    widget.predict_tab.ask = lambda *_: True
    first = train.result
    with qtbot.waitSignal(widget.close_guard.closed, timeout=300_000):
        assert not widget.close_guard.may_close()
    assert not train.training
    qtbot.waitUntil(lambda: train.result is not first, timeout=300_000)
    last = train.result.iteration
    assert last > done and (tmp_path / "run" / f"model_{last - 1:07d}.pth").is_file()


def test_a_dying_training_process_is_reported_and_napari_lives_on(dock, qtbot, tmp_path):
    _, widget = dock
    train = widget.train_tab
    train.form.iterations.value = 200
    train.form.output.set_text(str(tmp_path / "run"), emit=False)
    train.start_button.click()
    qtbot.waitUntil(lambda: len(train.plot.reports) >= 1, timeout=300_000)
    train.job.kill()
    qtbot.waitUntil(lambda: "Training ended with an error" in train.status.text(),
                    timeout=60_000)
    assert "ended unexpectedly" in train.status.text()


def test_open_run_restores_settings_and_refuses_other_folders(dock, tiny_run, tmp_path):
    _, widget = dock
    train = widget.train_tab
    assert not train.open_run(tmp_path)
    assert "not a training run" in train.status.text()
    assert train.open_run(tiny_run[0])
    assert train.form.iterations.value == 60 and train.form.preset.value == "tiny"
    # Every field of the form says what it does and when to change it.
    assert all(len(widget.tooltip or "") > 30 for widget in train.form.form)
    assert train.checkpoints.count() >= 3
    train.best_button.click()
    chosen = widget.session.checkpoint
    assert chosen is not None and chosen.parent == tiny_run[0]
    assert "val AP" in train.checkpoints.currentItem().text()
    assert chosen.name in widget.predict_tab.model_label.text()
    train.plot.save_png(tmp_path / "loss.png")
    import cv2

    assert cv2.imread(str(tmp_path / "loss.png")).shape[1] >= 1600
    # The plot follows napari's theme.
    from napari.utils.theme import get_theme

    dark = train.plot.figure.get_facecolor()
    widget.viewer.theme = "light" if widget.viewer.theme == "dark" else "dark"
    assert train.plot.figure.get_facecolor() != dark
    expected = get_theme(widget.viewer.theme).background.as_hex()
    assert __import__("matplotlib").colors.to_hex(train.plot.figure.get_facecolor()) == expected


def test_dock_and_command_line_give_the_same_submission(dock, qtbot, tiny_run, tmp_path):
    _, widget = dock
    predict = _predict_folder(qtbot, widget, tiny_run)
    assert predict.threshold.value() == 30  # the tiny run's own test threshold
    cli_out = tmp_path / "cli.json"
    result = subprocess.run(
        [sys.executable, "-m", "napari_nuclei.cli", "predict", "--model", str(tiny_run[0]),
         "--images", str(SAMPLE_DATA / "test"), "-o", str(cli_out), "-q"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    widget.export_tab.export_submission(str(tmp_path / "dock.json"))
    qtbot.waitUntil(lambda: "Wrote" in widget.export_tab.result.text(), timeout=60_000)
    dock_entries = json.loads((tmp_path / "dock.json").read_text())
    cli_entries = json.loads(cli_out.read_text())
    assert len(dock_entries) == len(cli_entries) > 0
    assert sorted(e["bbox"] for e in dock_entries) == sorted(e["bbox"] for e in cli_entries)


def test_corrections_are_counted_autosaved_and_exported(dock, qtbot, tiny_run, tmp_path):
    viewer, widget = dock
    predict = _predict_folder(qtbot, widget, tiny_run)
    session = widget.session
    # One image at a time: the last one predicted, or the one chosen in the list.
    # One pair of layers is reused: it shows the image chosen, the others stay hidden.
    # A folder's first prediction is shown; the others are listed as they come.
    first, last = list(session.images)
    layer, pixels = predict.layers.labels_layer, predict.layers.image_layer
    assert predict.layers.current == first and layer.data is session.images[first].labels
    predict.images.setCurrentRow(list(session.images).index("fluo_r1c1"))
    image = session.images["fluo_r1c1"]
    assert predict.layers.current == "fluo_r1c1" and layer.data is image.labels
    assert layer.visible and pixels.visible and pixels.name == "fluo_r1c1"
    assert [lyr.name for lyr in viewer.layers if lyr.visible] == [
        "fluo_r1c1", "fluo_r1c1 nuclei (predicted)"]
    assert {"score", "area", "bbox_x"} <= set(layer.features.columns)

    # The slider re-filters the image in view only, once it rests.
    viewer.layers.selection.active = viewer.layers[layer.name]
    shown = len(np.unique(layer.data))
    other = session.images["he_tile_1000"].labels.copy()
    predict.threshold.setValue(90)
    qtbot.waitUntil(lambda: len(np.unique(layer.data)) < shown)
    np.testing.assert_array_equal(session.images["he_tile_1000"].labels, other)
    predict.threshold.setValue(30)
    qtbot.waitUntil(lambda: len(np.unique(layer.data)) == shown)
    image = session.images["fluo_r1c1"]
    assert layer.data is image.labels

    # Paint a nucleus with the label napari's M would pick: the highest shown + 1, which
    # is a prediction hidden by the threshold.
    hidden = int(layer.data.max()) + 1
    assert hidden <= len(image.prediction)
    top, left = _empty_spot(layer.data, 14)
    layer.brush_size = 5
    layer.paint((top + 7, left + 7), hidden)
    qtbot.waitUntil(lambda: str(image.edits) == "1 added, 0 removed, 0 edited")
    layer.undo()
    qtbot.waitUntil(lambda: not image.edited)
    layer.redo()
    qtbot.waitUntil(lambda: str(image.edits) == "1 added, 0 removed, 0 edited")
    # Erase nucleus 1 of the other image too: every edited image is autosaved. Undo
    # there does not reach back into the image shown before.
    predict.layers.show("he_tile_1000")
    assert layer.data is session.images["he_tile_1000"].labels
    layer.undo()
    assert str(image.edits) == "1 added, 0 removed, 0 edited"
    np.testing.assert_array_equal(layer.data, other)
    layer.data_setitem(np.nonzero(layer.data == 1), 0)
    qtbot.waitUntil(
        lambda: str(session.images["he_tile_1000"].edits) == "0 added, 1 removed, 0 edited")
    corrected = tmp_path / "session" / "corrected"
    qtbot.waitUntil(lambda: not session.unsaved(), timeout=30_000)
    assert sorted(p.name for p in corrected.glob("*.tif")) == ["fluo_r1c1.tif",
                                                               "he_tile_1000.tif"]
    assert not list((SAMPLE_DATA / "test").glob("*corrected*"))
    np.testing.assert_array_equal(
        __import__("tifffile").imread(corrected / "fluo_r1c1.tif"), image.labels)

    widget.export_tab.export_submission(str(tmp_path / "submission.json"))
    qtbot.waitUntil(lambda: "Wrote" in widget.export_tab.result.text(), timeout=60_000)
    entries = json.loads((tmp_path / "submission.json").read_text())
    drawn = [e for e in entries if e["image_id"] == 1 and e["score"] == 1.0]
    rows, cols = np.nonzero(image.labels == hidden)
    own_box = [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1]
    assert len(drawn) == 1 and drawn[0]["bbox"] == [int(v) for v in own_box]

    widget.export_tab.evaluate()
    qtbot.waitUntil(lambda: "AJI" in widget.export_tab.result.text(), timeout=60_000)

    # Predicting again asks first for each edited image; saying no keeps its
    # corrections. A detection cap reached is said once, when the folder is done, for
    # the predictions taken.
    from napari.utils.notifications import notification_manager

    said = len(notification_manager.records)
    predict.form.fields["max_dets"].value = 5
    predict.ask = lambda _parent, question: "he_tile_1000" in question
    predict.folder_button.click()
    qtbot.waitUntil(lambda: "Kept the corrections" in predict.hint.text(), timeout=300_000)
    _wait_idle(qtbot, predict.worker)
    assert session.images["fluo_r1c1"].edited
    capped = [record.message for record in notification_manager.records[said:]
              if "detection cap" in record.message]
    assert len(capped) == 1 and "he_tile_1000" in capped[0] and "fluo_r1c1" not in capped[0]
    assert session.images["he_tile_1000"].prediction.hit_cap  # replaced, under the new cap


def test_session_is_restored_from_its_output_folder(dock, qtbot, tiny_run, tmp_path):
    viewer, widget = dock
    predict = _predict_folder(qtbot, widget, tiny_run)
    predict.layers.show("fluo_r1c1")
    layer = predict.layers.labels_layer
    layer.data_setitem(np.nonzero(layer.data == 2), 0)
    widget.close_guard.finish_now()  # closing saves what is pending
    assert (tmp_path / "session" / "session.json").is_file()
    edited = layer.data.copy()

    widget.session.run_dir = None
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=60_000):
        widget.data_tab.open_session(tmp_path / "session")
    assert widget.session.run_dir == tiny_run[0].resolve()
    predict.layers.show("fluo_r1c1")
    restored = predict.layers.labels_layer
    assert restored.unique_id in {lyr.unique_id for lyr in viewer.layers}
    np.testing.assert_array_equal(restored.data, edited)
    # The image itself is read from its file again, off the GUI thread.
    qtbot.waitUntil(lambda: predict.layers.image_layer.name == "fluo_r1c1"
                    and predict.layers.image_layer.visible, timeout=60_000)
    assert str(widget.session.images["fluo_r1c1"].edits) == "0 added, 1 removed, 0 edited"


def _empty_spot(labels, size):
    """Top-left corner of a background square of ``size`` pixels."""
    for top in range(0, labels.shape[0] - size, 4):
        for left in range(0, labels.shape[1] - size, 4):
            if not labels[top : top + size, left : left + size].any():
                return top, left
    raise AssertionError("no background left in the image")


def test_predict_current_image_acts_on_the_image_in_view(dock, qtbot, tiny_run, tmp_path):
    viewer, widget = dock
    train_copy = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA / "train", train_copy / "train")
    widget.data_tab.set_paths(train=train_copy)
    assert widget.train_tab.open_run(tiny_run[0])
    viewer.open_sample("napari-nuclei", "fluorescence")
    hidden = viewer.add_image(np.zeros((64, 64), np.uint8), name="hidden", visible=False)
    viewer.layers.selection.active = viewer.layers["fluo_r0c0 nuclei"]  # ground truth
    predict = widget.predict_tab
    predict.current_button.click()
    qtbot.waitUntil(lambda: "fluo_r0c0" in widget.session.images, timeout=300_000)
    _wait_idle(qtbot, predict.worker)
    assert "hidden" not in widget.session.images and not hidden.visible
    assert not viewer.layers["fluo_r0c0 nuclei"].visible  # ground truth not drawn over
    assert predict.layers.current == "fluo_r0c0" and viewer.layers["fluo_r0c0"].visible
    layer = predict.layers.labels_layer
    layer.data_setitem(tuple(np.mgrid[:12, :12].reshape(2, -1)), 7777)
    qtbot.waitUntil(lambda: widget.session.images["fluo_r0c0"].edited)
    # The training set holds this image with its hand-made masks: asked first, they
    # are moved aside, not deleted.
    hand_made = len(list((train_copy / "train" / "fluo_r0c0" / "masks").glob("*.png")))
    questions = []
    predict.ask = lambda _parent, question: questions.append(question) or True
    predict.add_button.click()
    qtbot.waitUntil(lambda: "Added 1" in predict.hint.text(), timeout=60_000)
    assert len(questions) == 1 and f"fluo_r0c0 (its {hand_made} masks" in questions[0]
    masks = list((train_copy / "train" / "fluo_r0c0" / "masks").glob("*.png"))
    assert len(masks) == len(np.unique(layer.data)) - 1
    (aside,) = (train_copy / "train" / ".replaced").glob("*/fluo_r0c0")
    assert len(list((aside / "masks").glob("*.png"))) == hand_made

    # A stack is predicted plane by plane: the plane in view.
    stack = np.stack([viewer.layers["fluo_r0c0"].data] * 3)
    viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 1)
    predict.current_button.click()
    qtbot.waitUntil(lambda: "stack[1]" in widget.session.images, timeout=300_000)
    _wait_idle(qtbot, predict.worker)


def test_a_large_image_reports_tiles_and_stop_ends_it_at_the_next_tile(dock, qtbot, tiny_run):
    import re

    viewer, widget = dock
    predict = widget.predict_tab
    # Every field of the prediction form says what it does and when to change it.
    assert all(len(field.tooltip or "") > 30 for field in predict.form)
    assert widget.train_tab.open_run(tiny_run[0])
    predict.folder_button.click()
    predict.stop_button.click()  # before the prediction starts: it does not start
    qtbot.waitUntil(lambda: predict.current_button.isEnabled())
    assert predict.job is None and predict.hint.text() == "Stopped before the first image."
    viewer.open_sample("napari-nuclei", "he_tile")
    viewer.layers.selection.active = viewer.layers["he_tile_1000"]
    predict.form.fields["tile_size"].value = 128  # many small tiles
    predict.current_button.click()
    qtbot.waitUntil(lambda: "tile" in predict.progress.format(), timeout=300_000)
    predict.stop_button.click()
    _wait_idle(qtbot, predict.worker)
    done, total = map(int, re.search(r"tile (\d+)/(\d+)", predict.progress.format()).groups())
    assert done < total and total > 20
    assert "he_tile_1000" not in widget.session.images
    assert predict.hint.text() == "Stopped after 0 of 1 image(s)."


def test_every_control_the_plot_and_the_checkpoints_are_reachable_at_1280x720(dock, qtbot):
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from qtpy.QtCore import QPoint, QRect
    from qtpy.QtWidgets import (
        QAbstractButton,
        QAbstractScrollArea,
        QAbstractSlider,
        QAbstractSpinBox,
        QApplication,
        QComboBox,
        QLineEdit,
    )

    _, widget = dock
    window = widget.window()
    window.show()
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.height() <= 720 and widget.isVisible())
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit,
             QAbstractScrollArea, FigureCanvasQTAgg)
    checked = []
    for index in range(widget.tabs.count()):
        widget.tabs.setCurrentIndex(index)
        area = widget.tabs.widget(index)
        QApplication.processEvents()
        # The section's scroll area lies inside the window.
        bottom = area.mapTo(window, QPoint(0, area.height())).y()
        assert bottom <= window.height() and area.viewport().height() > 300
        for control in area.widget().findChildren(kinds):
            parent = control.parentWidget()
            while parent is not area.widget() and not isinstance(parent, QAbstractScrollArea):
                parent = parent.parentWidget()
            if parent is not area.widget() or not control.isVisibleTo(area.widget()):
                continue  # part of a list, or hidden on purpose (shown when needed)
            area.ensureWidgetVisible(control, 0, 0)
            QApplication.processEvents()
            shown = QRect(control.mapTo(area.viewport(), QPoint(0, 0)), control.size())
            assert area.viewport().rect().contains(shown), (widget.tabs.tabText(index),
                                                            control)
            assert control.height() >= min(control.minimumSizeHint().height(), 20)
            checked.append(control)
    train = widget.train_tab
    assert {id(train.plot), id(train.checkpoints), id(train.start_button),
            id(widget.predict_tab.threshold)} <= {id(c) for c in checked}
