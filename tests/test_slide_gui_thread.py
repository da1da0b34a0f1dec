"""The GUI thread reads no slide labels from disk: while a slide job runs, its live
refreshes and its finished pyramid are read into memory by the relay worker, and napari
draws them from there."""

import threading

import numpy as np
import pytest
from slide_helpers import make_slide
from slide_window_helpers import labels_of

pytestmark = pytest.mark.gui


@pytest.fixture
def gui_thread_reads(monkeypatch):
    """Every zarr array read made on the GUI thread (the test's main thread)."""
    import zarr

    reads = []
    original = zarr.Array.__getitem__

    def recording(self, selection):
        if threading.current_thread() is threading.main_thread():
            reads.append((self.path, selection))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", recording)
    return reads


def test_live_refreshes_and_the_finished_pyramid_are_drawn_from_memory(
        make_napari_viewer, qtbot, tmp_path, gui_thread_reads):
    from napari_nuclei._qt.dock import NucleiDock

    slide = make_slide(tmp_path / "case_01.tif")
    viewer = make_napari_viewer()
    dock = NucleiDock(viewer)
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path
    section.predict_target = "slide_jobs_for_child:predict_region_slowly"
    section.labels_layers.min_interval = 0.0  # a refresh with every tile
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30_000)
    section.buttons["whole"].click()
    whole = section.state.output_for(None)
    qtbot.waitUntil(lambda: section.labels_layers.refreshes >= 3, timeout=120_000)
    live = section.labels_layers[whole]
    viewer.screenshot(canvas_only=True)  # napari draws what the refreshes gave it
    qtbot.waitUntil(lambda: whole in section.state.outputs, timeout=240_000)
    final = section.labels_layers[whole]
    assert final is live
    viewer.screenshot(canvas_only=True)
    shown = [np.asarray(level) for level in final.data]
    assert gui_thread_reads == []
    for k, level in enumerate(shown):  # read here, by the test, to compare
        np.testing.assert_array_equal(level, labels_of(whole, f"s{k}"))

    # A finished pyramid added as a layer of its own (Open session): read by a worker.
    dock.close_guard.finish_now()  # the session saved, with its slide
    gui_thread_reads.clear()
    again = NucleiDock(make_napari_viewer())
    again.data_tab.open_session(tmp_path / "session")
    qtbot.waitUntil(lambda: whole in again.slide_section.labels_layers, timeout=60_000)
    again.viewer.screenshot(canvas_only=True)
    shown = np.asarray(again.slide_section.labels_layers[whole].data[0])
    assert gui_thread_reads == []
    np.testing.assert_array_equal(shown, labels_of(whole))


def _slide_dock(make_napari_viewer, qtbot, tmp_path, target):
    from napari_nuclei._qt.dock import NucleiDock

    slide = make_slide(tmp_path / "case_01.tif")
    viewer = make_napari_viewer()
    dock = NucleiDock(viewer)
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path
    dock.slide_section.predict_target = target
    dock.slide_section.open_slide(slide)
    qtbot.waitUntil(lambda: dock.slide_section.state.slide is not None, timeout=30_000)
    return viewer, dock


def test_napari_builds_no_layer_while_a_slide_job_runs(make_napari_viewer, qtbot, tmp_path):
    viewer, dock = _slide_dock(make_napari_viewer, qtbot, tmp_path,
                               "slide_jobs_for_child:predict_region_slowly")
    section = dock.slide_section
    section.labels_layers.min_interval = 0.0
    inserted = []  # (layer name, whether the job was running then)
    viewer.layers.events.inserted.connect(lambda event: inserted.append(
        (event.value.name, section.job is not None and section.job.is_alive())))
    section.buttons["whole"].click()
    whole = section.state.output_for(None)
    qtbot.waitUntil(lambda: whole in section.state.outputs, timeout=240_000)
    assert section.labels_layers.refreshes >= 2  # the job's refreshes swapped data in
    assert inserted == [(f"{whole.name} nuclei", False)]
    layer = section.labels_layers[whole]
    assert layer in viewer.layers and layer.visible and layer.multiscale
    np.testing.assert_array_equal(np.asarray(layer.data[0]), labels_of(whole))


def test_stop_before_the_region_layer_is_made_starts_no_job(make_napari_viewer, qtbot,
                                                            tmp_path):
    viewer, dock = _slide_dock(make_napari_viewer, qtbot, tmp_path,
                               "slide_jobs_for_child:predict_region_slowly")
    section = dock.slide_section
    section.buttons["whole"].click()
    assert section.buttons["stop"].isEnabled() and not section.buttons["whole"].isEnabled()
    section.buttons["stop"].click()
    whole = section.state.output_for(None)
    qtbot.waitUntil(lambda: dock.session.jobs.idle, timeout=30_000)
    qtbot.waitUntil(lambda: whole in section.labels_layers, timeout=30_000)
    assert section.job is None and not whole.exists()
    assert section.hint.text() == "Stopped before the first tile."
    assert section.buttons["whole"].isEnabled() and not section.buttons["stop"].isEnabled()


def test_the_slide_is_drawn_coarse_then_sharp_without_decoding_on_the_gui_thread(
        make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_nuclei._qt.dock import NucleiDock
    from napari_nuclei.core.slide.readers import open_slide

    slide = make_slide(tmp_path / "case_01.tif", size=2048)
    reader = open_slide(slide)
    truth = reader.read(0, 1024, 512, 700, 600)
    reader.close()
    decoded_here = []
    original = type(reader).read

    def recording(self, *args):
        if threading.current_thread() is threading.main_thread():
            decoded_here.append(args)
        return original(self, *args)

    monkeypatch.setattr(type(reader), "read", recording)
    viewer = make_napari_viewer(show=True)
    dock = NucleiDock(viewer)
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30_000)
    layer = section.slide_layer
    assert layer in viewer.layers and layer.multiscale
    # Zoomed in on level 0 and moved there, as a pathologist pans: drawn, then redrawn
    # when the decoding thread has the blocks.
    drawn = []
    layer.events.set_data.connect(lambda _event: drawn.append(True))
    viewer.camera.zoom = 4 / layer.scale[0]
    viewer.camera.center = (812 * layer.scale[0], 1374 * layer.scale[1])
    viewer.screenshot(canvas_only=True)
    moved = len(drawn)
    # Drawn again, with nothing asked of napari, once the blocks are decoded.
    qtbot.waitUntil(lambda: len(drawn) > moved, timeout=30_000)
    qtbot.waitUntil(lambda: np.array_equal(layer.data[0][512:1112, 1024:1724], truth),
                    timeout=30_000)
    viewer.screenshot(canvas_only=True)
    assert decoded_here == []
