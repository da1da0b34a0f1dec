"""The dock widget in a real viewer (Xvfb): data, training, prediction, correction, export."""

import json
import time

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from conftest import SAMPLE_DATA

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(make_napari_viewer):
    from napari_nuclei._qt.dock import NucleiDock

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    assert isinstance(widget, NucleiDock)
    widget.data_tab.set_paths(SAMPLE_DATA, SAMPLE_DATA / "test", SAMPLE_DATA / "test_gt")
    yield viewer, widget
    for tab in (widget.train_tab, widget.predict_tab):
        if tab.worker is not None:
            tab.worker.quit()
            tab.worker.await_workers() if hasattr(tab.worker, "await_workers") else None


def _wait_idle(qtbot, worker, timeout=600_000):
    qtbot.waitUntil(lambda: not worker.is_running, timeout=timeout)


def test_data_section_checks_and_opens_images(dock, qtbot):
    viewer, widget = dock
    data = widget.data_tab
    assert data.images.count() == 5  # 3 training + 2 test images
    data.check_button.click()
    qtbot.waitUntil(lambda: "108 nuclei" in data.summary.text(), timeout=60_000)
    assert data.summary.text().startswith("3 images")
    data._on_open_image(data.images.item(0))
    assert [layer.name for layer in viewer.layers][-2:] == ["fluo_r0c0", "fluo_r0c0 nuclei"]


def test_training_from_the_widget_updates_the_plot_and_stops_with_a_checkpoint(
        dock, qtbot, tmp_path):
    _, widget = dock
    train = widget.train_tab
    train.form.iterations.setValue(200)
    train.form.val_fraction.setValue(0.0)
    train.form.output.set_text(str(tmp_path / "run"), emit=False)

    # Responsiveness: a 20 ms timer on the GUI thread, watched while the worker trains.
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    train.start_button.click()
    qtbot.waitUntil(lambda: len(train.plot.reports) >= 3, timeout=300_000)
    last[0] = time.perf_counter()
    gaps.clear()
    qtbot.waitUntil(lambda: len(train.plot.reports) >= 12, timeout=300_000)
    timer.stop()
    lines = train.plot.figure.axes[0].get_lines()
    assert len(lines[0].get_xdata()) >= 3  # the plot holds the data it was given
    train.stop_button.click()
    _wait_idle(qtbot, train.worker)
    done = len(train.plot.reports)
    assert done < 200
    assert (tmp_path / "run" / f"model_{done - 1:07d}.pth").is_file()
    assert "Stopped at iteration" in train.status.text()
    worst = max(gaps)
    print(f"worst GUI-thread timer gap during training: {worst * 1000:.0f} ms "
          f"over {len(gaps)} ticks")
    assert worst < 0.2
    # Resume continues the same run.
    train.form.iterations.setValue(200)
    train.resume_button.click()
    qtbot.waitUntil(lambda: train.plot.reports[-1].iteration > done, timeout=300_000)
    train.stop_button.click()
    _wait_idle(qtbot, train.worker)


def test_checkpoint_list_and_best_choice(dock, tiny_run):
    _, widget = dock
    widget.train_tab.open_run(tiny_run[0])
    assert widget.train_tab.checkpoints.count() >= 3
    widget.train_tab.best_button.click()
    chosen = widget.state.data.checkpoint
    assert chosen is not None and chosen.parent == tiny_run[0]
    assert "val AP" in widget.train_tab.checkpoints.currentItem().text()


def _empty_spot(labels, size):
    """Top-left corner of a background square of ``size`` pixels."""
    for top in range(0, labels.shape[0] - size, 4):
        for left in range(0, labels.shape[1] - size, 4):
            if not labels[top : top + size, left : left + size].any():
                return top, left
    raise AssertionError("no background left in the image")


def test_predict_correct_autosave_and_export(dock, qtbot, tiny_run, tmp_path):
    viewer, widget = dock
    widget.train_tab.open_run(tiny_run[0])
    predict = widget.predict_tab
    predict.threshold.setValue(30)
    predict.folder_button.click()
    qtbot.waitUntil(lambda: len(widget.state.data.predicted) == 2, timeout=300_000)
    _wait_idle(qtbot, predict.worker)
    predicted = widget.state.data.predicted["fluo_r1c1"]
    layer = predicted.layer
    assert layer.name == "fluo_r1c1 nuclei (predicted)"
    assert {"score", "area", "bbox_x"} <= set(layer.features.columns)
    assert len(layer.features) == len(np.unique(layer.data)) - 1 > 0

    # Raising the threshold re-filters without running the network.
    before = len(np.unique(layer.data))
    predict.threshold.setValue(90)
    assert len(np.unique(layer.data)) < before
    predict.threshold.setValue(30)

    # A correction: erase nucleus 1, paint a new one.
    edited = np.asarray(layer.data).copy()
    edited[edited == 1] = 0
    top, left = _empty_spot(edited, 10)
    edited[top : top + 10, left : left + 10] = 5000
    layer.data = edited
    assert "1 added, 1 removed, 0 edited" in predict.edits.text()
    autosaved = SAMPLE_DATA / "test" / "napari_nuclei_corrected" / "fluo_r1c1.tif"
    try:
        qtbot.waitUntil(autosaved.is_file, timeout=10_000)

        out = tmp_path / "submission.json"
        widget.export_tab.export_submission(str(out))
        entries = json.loads(out.read_text())
        assert {e["image_id"] for e in entries} == {1, 2}
        assert any(e["score"] == 1.0 for e in entries if e["image_id"] == 1)
        assert "Wrote" in widget.export_tab.result.text()

        viewer.layers.selection.active = layer
        widget.export_tab.export_coco(str(tmp_path / "nuclei.json"))
        coco = json.loads((tmp_path / "nuclei.json").read_text())
        assert len(coco["annotations"]) == len(np.unique(edited)) - 1

        result = widget.export_tab.evaluate()
        assert result is not None and "AJI" in widget.export_tab.result.text()
    finally:
        for path in autosaved.parent.glob("*"):
            path.unlink()
        autosaved.parent.rmdir()


def test_add_corrected_images_to_training_set(dock, qtbot, tiny_run, tmp_path):
    import shutil

    viewer, widget = dock
    train_copy = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA / "train", train_copy / "train")
    widget.data_tab.set_paths(train=train_copy)
    widget.train_tab.open_run(tiny_run[0])
    viewer.open_sample("napari-nuclei", "fluorescence")
    viewer.layers.selection.active = viewer.layers["fluo_r0c0"]
    widget.predict_tab.current_button.click()
    qtbot.waitUntil(lambda: "fluo_r0c0" in widget.state.data.predicted, timeout=300_000)
    _wait_idle(qtbot, widget.predict_tab.worker)
    layer = widget.state.data.predicted["fluo_r0c0"].layer
    edited = np.asarray(layer.data).copy()
    edited[:12, :12] = 7777
    layer.data = edited
    widget.predict_tab.add_button.click()
    masks = list((train_copy / "train" / "fluo_r0c0" / "masks").glob("*.png"))
    assert len(masks) == len(np.unique(edited)) - 1
