"""Slides belong to the session: quitting napari and pressing *Open session…* brings back
the slide, its predictions and the window being corrected with its unsaved strokes; a
slide opened again finds its finished predictions on disk."""

import json

import numpy as np
import pytest
from slide_helpers import make_slide

pytestmark = pytest.mark.gui

TARGET = "slide_jobs_for_child:predict_region_with_blobs"


def slide_dock(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    qtbot.waitUntil(lambda: dock.close_guard.watching)
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path  # the stand-in job needs no trained run
    dock.slide_section.predict_target = TARGET
    return viewer, dock


def open_and_predict(qtbot, dock, slide, corners):
    section = dock.slide_section
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30_000)
    section.viewer.layers["slide region"].add_rectangles(np.array(corners))
    section.buttons["predict"].click()
    qtbot.waitUntil(lambda: bool(section.state.outputs), timeout=240_000)
    return next(iter(section.state.outputs))


def draw(section, corners):
    region = section.viewer.layers["slide region"]
    region.data = []
    region.add_rectangles(np.array(corners))


def test_quit_and_open_session_brings_back_the_slide_its_prediction_and_its_window(
        make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from qtpy.QtWidgets import QFileDialog

    slide = make_slide(tmp_path / "case_01.tif", size=768, seed=1)
    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path)
    section = dock.slide_section
    out_dir = open_and_predict(qtbot, dock, slide, [[128, 128], [640, 640]])
    draw(section, [[256, 256], [456, 456]])
    section.buttons["edit"].click()
    qtbot.waitUntil(lambda: section.state.window is not None, timeout=30_000)
    section.window_labels.brush_size = 1
    section.window_labels.paint((5, 5), 777)  # then quit at once: not autosaved yet
    assert dock.session.jobs.pending_saves
    with qtbot.waitSignal(dock.close_guard.closed, timeout=60_000):
        dock.window().close()
    document = json.loads((tmp_path / "session" / "session.json").read_text())
    assert document["slides"][0]["slide"] == str(slide)
    assert document["slides"][0]["window"]["region"] == [256, 256, 200, 200]

    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path)
    section = dock.slide_section
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *_a, **_k: str(tmp_path / "session"))
    with qtbot.waitSignal(dock.data_tab.session_read, timeout=60_000):
        dock.data_tab.open_session_button.click()
    qtbot.waitUntil(lambda: section.window_labels is not None, timeout=60_000)
    assert section.state.slide == slide and section.slide_layer in viewer.layers
    assert section.state.outputs == {out_dir: (128, 128, 512, 512)}
    assert section.labels_layers[out_dir] in viewer.layers
    assert tuple(section.labels_layers[out_dir].scale) == (0.25, 0.25)
    assert section.window_labels.data.shape == (200, 200)
    assert section.window_labels.data[5, 5] == 777  # the stroke made just before quitting
    assert section.buttons["edit"].isEnabled() and section.buttons["write"].isEnabled()
    # Written back now, the stroke reaches the slide's labels.
    section.buttons["write"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Wrote back"), timeout=30_000)
    from slide_window_helpers import labels_of

    assert labels_of(out_dir)[256 + 5, 256 + 5] != 0


def test_a_slide_opened_again_edits_and_exports_its_finished_predictions(
        make_napari_viewer, qtbot, tmp_path):
    slide = make_slide(tmp_path / "case_01.tif", size=768, seed=1)
    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path)
    out_dir = open_and_predict(qtbot, dock, slide, [[128, 128], [640, 640]])
    other = make_slide(tmp_path / "case_02.tif", size=768, seed=2)
    viewer.close()

    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path)
    section = dock.slide_section
    section.open_slide(other)  # another slide: none of its predictions are on disk
    qtbot.waitUntil(lambda: section.state.slide == other, timeout=30_000)
    assert not section.state.outputs and not section.buttons["edit"].isEnabled()
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide == slide, timeout=30_000)
    assert section.state.outputs == {out_dir: (128, 128, 512, 512)}
    assert section.buttons["edit"].isEnabled()
    assert all(b.isEnabled() for b in section.measurements.buttons.values())
    assert "1 finished prediction" in section.hint.text()
    draw(section, [[256, 256], [456, 456]])
    section.buttons["edit"].click()
    qtbot.waitUntil(lambda: section.state.window is not None, timeout=30_000)
    assert section.state.window.out_dir == out_dir
    section.measurements.ask_save_path = lambda *_: tmp_path / "region.csv"
    section.measurements.buttons["csv"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Exported"), timeout=30_000)
    assert (tmp_path / "region.csv").is_file()
