"""*Open session…* reads in a worker: the GUI thread loads no prediction, correction or
``session.json``, and a stroke made while the worker reads is saved, not lost."""

import threading

import numpy as np
import pytest
import test_dock_journeys as journeys
from test_dock_journeys import make_dock, predict_folder, quit_and_open_session

fake_model, mixed_test_folder = journeys.fake_model, journeys.mixed_test_folder  # fixtures

pytestmark = pytest.mark.gui


@pytest.fixture
def gui_thread_loads(monkeypatch):
    """The session files loaded on the GUI thread (the test's main thread)."""
    from napari_nuclei.session import restore, store

    loads = []

    def recording(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            if threading.current_thread() is threading.main_thread():
                loads.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    recording(restore, "load_prediction")
    recording(restore, "read_session_slides")
    recording(store, "read_session_file")
    return loads


def test_open_session_loads_nothing_on_the_gui_thread(make_napari_viewer, qtbot, monkeypatch,
                                                      tmp_path, fake_model, mixed_test_folder,
                                                      gui_thread_loads):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    layer, name = widget.predict_tab.layers.labels_layer, widget.predict_tab.layers.current
    layer.data_setitem(np.nonzero(layer.data == 1), 0)  # a correction
    corrected = layer.data.copy()
    viewer, widget = quit_and_open_session(make_napari_viewer, qtbot, monkeypatch, tmp_path,
                                           viewer, fake_model, mixed_test_folder)
    assert gui_thread_loads == []
    assert set(widget.session.images) == {"gray", "rgb", "deep"}
    np.testing.assert_array_equal(widget.session.images[name].labels, corrected)
    assert widget.session.images[name].edited


def test_a_stroke_made_while_the_session_is_read_is_saved(make_napari_viewer, qtbot,
                                                         monkeypatch, tmp_path, fake_model,
                                                         mixed_test_folder):
    from napari_nuclei.session import restore

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    widget.close_guard.finish_now()  # the session saved
    other = tmp_path / "other"
    widget.data_tab.set_paths(None, mixed_test_folder, None, other)  # another output folder
    predict_folder(qtbot, widget)
    layers = widget.predict_tab.layers
    name = layers.current
    reading = threading.Event()
    original = restore.read_session_slides

    def slow_read(folder):  # the stroke lands while the worker reads
        reading.wait(30)
        return original(folder)

    monkeypatch.setattr(restore, "read_session_slides", slow_read)
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=60_000):
        widget.data_tab.open_session(tmp_path / "session")
        layer = layers.labels_layer
        layer.data_setitem(np.nonzero(layer.data == 2), 0)
        stroke = widget.session.images[name].labels.copy()
        reading.set()
    assert "Session restored" in widget.data_tab.summary.text()
    # The restored session shows its first image (its pixels read in a worker).
    qtbot.waitUntil(lambda: layers.image_layer is not None and layers.current is not None
                    and layers.image_layer.name == layers.current
                    and not layers.pixels.reading, timeout=30_000)
    from napari_nuclei.core.image_io import read_labels

    np.testing.assert_array_equal(read_labels(other / "corrected" / f"{name}.tif"), stroke)


def test_closing_napari_while_a_session_is_read_shows_nothing_and_raises_nothing(
        make_napari_viewer, qtbot, monkeypatch, tmp_path, fake_model, mixed_test_folder):
    from napari_nuclei.session import restore

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    widget.close_guard.finish_now()
    reading = threading.Event()
    original = restore.read_session_slides

    def slow_read(folder):
        reading.wait(30)
        return original(folder)

    monkeypatch.setattr(restore, "read_session_slides", slow_read)
    widget.data_tab.open_session(tmp_path / "session")
    worker = widget.data_tab.reading
    viewer.close()
    with qtbot.waitSignal(worker.finished, timeout=30_000):
        reading.set()
    assert widget.data_tab.left  # the read session was not shown in the closed window


def test_another_session_is_not_opened_while_a_prediction_adds_to_this_one(
        make_napari_viewer, qtbot, tmp_path, fake_model, mixed_test_folder):
    from napari_nuclei.session.jobs import PREDICTION

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    widget.close_guard.finish_now()
    before = set(widget.session.images)
    running = widget.session.jobs.started(PREDICTION, "3 image(s)", stop=lambda: None)
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=10_000):
        widget.data_tab.open_session(tmp_path / "session")
    assert widget.data_tab.summary.text() == (
        "Not opened: a prediction (3 image(s)) is running; stop it or let it finish "
        "first, its results belong to the session open now.")
    assert widget.data_tab.reading is None and set(widget.session.images) == before
    widget.session.jobs.ended(running)
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=60_000):
        widget.data_tab.open_session(tmp_path / "session")
    assert "Session restored" in widget.data_tab.summary.text()


def test_the_score_slider_shows_the_threshold_of_the_image_in_view(
        make_napari_viewer, qtbot, monkeypatch, tmp_path, fake_model, mixed_test_folder):
    from test_dock_journeys import choose

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    predict, session = widget.predict_tab, widget.session
    choose(qtbot, widget, "gray")
    with qtbot.waitSignal(session.image_changed, timeout=10_000):
        predict.threshold.setValue(85)
    assert session.images["gray"].score_thresh == 0.85
    choose(qtbot, widget, "rgb")  # predicted at 0.5: the slider says so
    assert predict.threshold.value() == 50 and predict.threshold_label.text() == "score ≥ 0.50"
    layer = predict.layers.labels_layer
    layer.data_setitem(np.nonzero(layer.data == 1), 0)  # rgb corrected
    predict.threshold.setValue(70)
    qtbot.waitUntil(lambda: "applies to uncorrected images only" in predict.hint.text())
    assert predict.threshold.value() == 50 and session.score_thresh == 0.85  # refused
    assert session.images["rgb"].score_thresh == 0.5
    viewer, widget = quit_and_open_session(make_napari_viewer, qtbot, monkeypatch, tmp_path,
                                           viewer, fake_model, mixed_test_folder)
    for name, value in (("gray", 85), ("rgb", 50), ("gray", 85)):
        choose(qtbot, widget, name)
        assert widget.predict_tab.threshold.value() == value


def test_a_stroke_followed_at_once_by_closing_is_counted_and_saved(
        make_napari_viewer, qtbot, tmp_path, fake_model, mixed_test_folder):
    from napari_nuclei.core.image_io import read_labels

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    layers = widget.predict_tab.layers
    qtbot.waitUntil(lambda: widget.session.jobs.idle, timeout=30_000)  # all saved
    name, layer = layers.current, layers.labels_layer
    layer.data_setitem(np.nonzero(layer.data == 1), 0)
    widget.close_guard.finish_now()  # no turn of the event loop in between
    saved = tmp_path / "session" / "corrected" / f"{name}.tif"
    np.testing.assert_array_equal(read_labels(saved), layer.data)
    assert str(widget.session.images[name].edits) == "0 added, 1 removed, 0 edited"
