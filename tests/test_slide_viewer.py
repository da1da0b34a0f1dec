"""Slides in a real viewer: a slide file opened lazily through the plugin, and the dock's
Slides section from opening to a training sample (stand-in model in the child)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from npe2 import PluginManager
from slide_helpers import make_slide
from slide_window_helpers import labels_of, table_of

pytestmark = pytest.mark.gui


def test_a_slide_file_opens_lazily_through_the_plugin(make_napari_viewer, tmp_path,
                                                      level_reads):
    slide = make_slide(tmp_path / "case_01.svs", size=4096, min_level_side=256)
    viewer = make_napari_viewer()
    offered = {r.plugin_name for r in PluginManager.instance().iter_compatible_readers(
        [str(slide)])}
    assert "napari-nuclei" in offered
    layer = viewer.open(str(slide), plugin="napari-nuclei")[0]
    assert layer.multiscale and layer.rgb and len(layer.data) == 5
    assert tuple(layer.scale) == (0.25, 0.25)
    assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]
    viewer.canvas.overlays.scale_bar.visible = True
    viewer.screenshot(canvas_only=True)  # draws what is in view
    assert level_reads and 0 not in level_reads  # coarse levels drawn, level 0 untouched


def test_the_slides_section_predicts_corrects_writes_back_and_adds_to_training(
        make_napari_viewer, qtbot, tmp_path):
    from napari_nuclei._qt.dock import NucleiDock
    from napari_nuclei.core.dataset import open_dataset

    slide = make_slide(tmp_path / "case_01.tif")
    viewer = make_napari_viewer()
    dock = NucleiDock(viewer)
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path  # the stand-in job below needs no trained run
    section.predict_target = "slide_jobs_for_child:predict_region_with_blobs"
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30000)
    assert section.slide_layer.multiscale and section.state.mpp == pytest.approx(0.25)

    # The section's Shapes layer is on the slide's scale: level-0 pixels 128..896.
    region = viewer.layers["slide region"]
    assert tuple(region.scale) == (0.25, 0.25)
    region.add_rectangles(np.array([[128, 128], [896, 896]]))
    assert section.current_region() == (128, 128, 768, 768)
    section.buttons["predict"].click()
    qtbot.waitUntil(lambda: bool(section.state.outputs), timeout=240000)
    out_dir = next(iter(section.state.outputs))
    labels_layer = section.labels_layers[out_dir]
    assert labels_layer.multiscale and tuple(labels_layer.scale) == (0.25, 0.25)
    assert section.progress.value() == section.progress.maximum()
    before = table_of(out_dir)
    assert len(before)

    region.data = []
    region.add_rectangles(np.array([[256, 256], [556, 656]]))
    section.buttons["edit"].click()
    qtbot.waitUntil(lambda: section.state.window is not None, timeout=30000)
    window = section.state.window
    assert section.window_labels.data.shape == (300, 400)
    assert tuple(section.window_labels.translate) == (64.0, 64.0)
    # A brush stroke is autosaved; pulled again, the window offers it back.
    section.window_labels.brush_size = 1
    section.window_labels.paint((5, 5), 777)
    qtbot.waitUntil(lambda: "autosaved" in section.hint.text(), timeout=30000)
    assert section.hint.text().startswith("1 nuclei corrected")
    autosaves = out_dir / "edits" / "autosave"
    assert len(list(autosaves.glob("*.npz"))) == 1
    section.ask = lambda *_: True
    section.buttons["edit"].click()
    qtbot.waitUntil(lambda: section.window_labels.data[5, 5] == 777, timeout=30000)
    section.window_labels.data = window.original.copy()
    features = section.window_labels.features.set_index("index")
    assert set(features.index) == set(np.unique(window.original).tolist()) - {0}
    assert (features.area_px == table_of(out_dir).loc[features.index].area_px).all()
    # Clicking a nucleus of the window shows its row, from the window's features.
    rows, cols = np.nonzero(window.original)
    clicked = int(window.original[rows[0], cols[0]])
    section.measurements._on_click(viewer, SimpleNamespace(
        position=((256 + rows[0] + 0.5) * 0.25, (256 + cols[0] + 0.5) * 0.25)))
    assert section.measurements.row["id"] == clicked
    assert section.measurements.row["area_px"] == features.loc[clicked].area_px
    gone = min(set(np.unique(window.original).tolist()) - {0} - window.cut_ids)
    edited = section.window_labels.data.copy()
    edited[edited == gone] = 0
    section.window_labels.data = edited
    section.buttons["write"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Wrote back"), timeout=30000)
    assert "1 removed" in section.hint.text()
    assert gone not in table_of(out_dir).index and len(table_of(out_dir)) == len(before) - 1
    assert not (labels_of(out_dir) == gone).any()
    assert gone not in set(section.window_labels.features["index"])
    assert not list(autosaves.glob("*.npz"))  # written back: the autosave is spent

    section.buttons["train"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Added"), timeout=30000)
    dataset = open_dataset(section.state.windows_folder)
    assert dataset.layout == "dsb" and len(dataset) == 1
    assert len(dataset.records[0].mask_paths) == len(set(np.unique(edited).tolist()) - {0})

    section.buttons["whole"].click()
    whole = section.state.output_for(None)
    qtbot.waitUntil(lambda: whole in section.state.outputs, timeout=240000)
    assert section.labels_layers[whole].multiscale
    assert len(table_of(whole)) > len(before)
    # Windows now come from the newest prediction holding them: the whole tissue.
    assert section.state.output_holding((256, 256, 400, 300)) == whole


def test_stopping_a_prediction_keeps_its_tiles_and_predicting_again_continues(
        make_napari_viewer, qtbot, tmp_path):
    from napari_nuclei._qt.dock import NucleiDock

    slide = make_slide(tmp_path / "case_01.tif")
    dock = NucleiDock(make_napari_viewer())
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path
    section.predict_target = "slide_jobs_for_child:predict_region_slowly"
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30000)
    section.buttons["whole"].click()
    whole = section.state.output_for(None)
    # The labels show up while the tiles are predicted, and are refreshed as they finish.
    qtbot.waitUntil(lambda: section.labels_layers.refreshes >= 2, timeout=120000)
    live = section.labels_layers[whole]
    assert live.multiscale and tuple(live.scale) == (0.25, 0.25)
    qtbot.waitUntil(lambda: np.asarray(live.data[1]).any(), timeout=60000)
    assert not (whole / "job" / "complete.json").exists()
    coarse = np.asarray(live.data[1])  # read first: level 0 is only ever ahead of it
    painted = coarse > 0
    assert painted.any()
    assert (coarse[painted] == np.asarray(live.data[0])[::2, ::2][painted]).all()
    section.buttons["stop"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Stopped"), timeout=60000)
    assert not (whole / "job" / "complete.json").exists() and not section.state.outputs
    done = len(list((whole / "job" / "records").glob("*.npz")))
    assert 2 <= done < section.progress.maximum()
    assert section.buttons["whole"].isEnabled() and not section.buttons["stop"].isEnabled()
    section.buttons["whole"].click()
    qtbot.waitUntil(lambda: whole in section.state.outputs, timeout=240000)
    assert (whole / "job" / "complete.json").is_file()
    # The live layer now shows the finished pyramid (one layer, no second one built).
    final = section.labels_layers[whole]
    assert final is live and final in section.viewer.layers
    assert [la.name for la in section.viewer.layers].count("case_01 nuclei") == 1
    assert final.metadata["labels"] == str((whole / "nuclei.ome.zarr").resolve())
    assert all(not d.name.startswith("live-") for d in final.data)
    assert np.array_equal(np.asarray(final.data[0]), labels_of(whole))


def test_predict_view_predicts_exactly_what_the_canvas_shows(make_napari_viewer, qtbot,
                                                             tmp_path):
    from napari_nuclei._qt.dock import NucleiDock

    slide = make_slide(tmp_path / "case_01.tif")
    viewer = make_napari_viewer()
    dock = NucleiDock(viewer)
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path
    section.predict_target = "slide_jobs_for_child:predict_region_with_blobs"
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30000)
    viewer.scene.camera.center = (100.0, 120.0)  # µm
    viewer.scene.camera.zoom = 8.0  # screen pixels per µm: about 100 µm of the 256 µm slide
    viewer.screenshot(canvas_only=True)
    # napari's own drawing: the world corners of the canvas, in level-0 pixels.
    (top, left), (bottom, right) = \
        viewer.window._qt_viewer.canvas._viewbox_corners_in_world[:, -2:] / 0.25
    x, y, w, h = section.view_region()
    assert abs(x - left) <= 1 and abs(y - top) <= 1
    assert abs(x + w - right) <= 1 and abs(y + h - bottom) <= 1
    assert 0 < w < 1024 and 0 < h < 1024
    section.buttons["view"].click()
    qtbot.waitUntil(lambda: bool(section.state.outputs), timeout=240000)
    assert list(section.state.outputs.values()) == [(x, y, w, h)]
    out_dir = next(iter(section.state.outputs))
    assert out_dir.name == f"case_01_x{x}_y{y}_{w}x{h}"

    # Clicking a nucleus of the region's labels (in view) shows its table row.
    labels = labels_of(out_dir)[y : y + h, x : x + w]
    ys, xs = np.nonzero(labels)
    nucleus = int(labels[ys[0], xs[0]])
    ys, xs = ys + y, xs + x
    measurements = section.measurements
    assert measurements._on_click in viewer.mouse_drag_callbacks
    click = SimpleNamespace(position=((ys[0] + 0.5) * 0.25, (xs[0] + 0.5) * 0.25))
    measurements._on_click(viewer, click)
    qtbot.waitUntil(lambda: measurements.row is not None, timeout=30000)
    assert measurements.row["id"] == nucleus
    assert measurements.table.item(0, 1).text() == str(nucleus)
    assert measurements.row["area_px"] == table_of(out_dir).loc[nucleus].area_px
    # The region's table and GeoJSON export in workers.
    measurements.ask_save_path = lambda *_: tmp_path / "region.csv"
    measurements.buttons["csv"].click()
    qtbot.waitUntil(lambda: section.hint.text().startswith("Exported"), timeout=30000)
    assert f"{len(table_of(out_dir))} rows" in section.hint.text()
    assert len((tmp_path / "region.csv").read_text().splitlines()) == len(table_of(out_dir)) + 1
    measurements.ask_save_path = lambda *_: tmp_path / "region.geojson"
    measurements.buttons["geojson"].click()
    qtbot.waitUntil(lambda: (tmp_path / "region.geojson").is_file(), timeout=30000)
    features = json.loads((tmp_path / "region.geojson").read_text())["features"]
    assert len(features) == len(table_of(out_dir))
    # The Export tab offers the same two files, and says the outcome there.
    measurements.ask_save_path = lambda *_: tmp_path / "from_export_tab.geojson"
    dock.export_tab.slide_buttons["geojson"].click()
    qtbot.waitUntil(lambda: dock.export_tab.result.text().startswith("Exported"),
                    timeout=30000)
    exported = json.loads((tmp_path / "from_export_tab.geojson").read_text())["features"]
    assert len(exported) == len(table_of(out_dir))
    measurements.ask_save_path = lambda *_: tmp_path / "from_export_tab.csv"
    dock.export_tab.slide_buttons["csv"].click()
    qtbot.waitUntil(lambda: "rows" in dock.export_tab.result.text(), timeout=30000)
    assert len((tmp_path / "from_export_tab.csv").read_text().splitlines()) == \
        len(table_of(out_dir)) + 1

    # Moved off the slide, the view is clipped to it; wholly outside, nothing starts.
    viewer.scene.camera.center = (-500.0, -500.0)
    section.buttons["view"].click()
    assert section.hint.text().startswith("The view shows none of the slide")
