"""Correcting nucleus classes in the dock, in a real viewer, with a tiny two-class run:
counted, set by the session, a click and a number key, undone, autosaved, restored and
handed in; a one-class model shows no classes at all."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from class_helpers import class_image
from test_dock_journeys import fake_model, make_dock, predict_folder, quit_and_open_session

from conftest import write_png
from napari_nuclei.cli import main

pytestmark = pytest.mark.gui
fake_model = fake_model  # a fixture of the journeys, for the one-class model


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """A tiny two-class run on the generated set, through the CLI, and a test folder of
    two of its kind of images."""
    pytest.importorskip("detectron2")
    from class_helpers import write_dsb_classes

    base = tmp_path_factory.mktemp("dock_classes")
    data = write_dsb_classes(base / "dsb", count=3)
    run_dir = base / "run"
    assert main(["train", "--data", str(data), "--out", str(run_dir), "--preset", "tiny",
                 "--iters", "4", "--checkpoint-period", "2", "--eval-period", "2",
                 "--val-fraction", "0.34", "--score-thresh", "0.05", "--device", "cpu",
                 "-q"]) == 0
    test = base / "test"
    ids = []
    for index in (0, 1):
        image = class_image(10 + index)[0]
        write_png(test / f"t{index}.png", image)
        ids.append({"id": index + 1, "file_name": f"t{index}.png", "height": image.shape[0],
                    "width": image.shape[1]})
    (test / "test_img_ids.json").write_text(json.dumps(ids))
    return run_dir, test


def class_dock(make_napari_viewer, qtbot, tmp_path, run_dir, test_dir):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, None, test_dir)
    widget.session.use_run(run_dir)
    return viewer, widget


def row_counts(panel) -> dict[str, int]:
    """The count each class's row shows."""
    return {name: int(text.rsplit("·", 1)[1]) for name, text in panel.counts().items()}


def pixel_of(labels, label):
    ys, xs = np.nonzero(labels == label)
    return float(ys[len(ys) // 2]), float(xs[len(xs) // 2])


def click(layer, position):
    """A mouse press on the layer at ``position`` (world coordinates), as napari's
    canvas hands it to the layer's callbacks."""
    from napari.utils.interactions import mouse_press_callbacks

    mouse_press_callbacks(layer, SimpleNamespace(
        type="mouse_press", position=position, is_dragging=False, modifiers=(),
        button=1, handled=False, dims_displayed=(0, 1), view_direction=None))


def press_key(qtbot, viewer, key: int):
    """A number key pressed on napari's canvas (napari has no public handle on it)."""
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    qtbot.keyClick(canvas, getattr(Qt.Key, f"Key_{key}"))


def test_classes_are_counted_corrected_saved_restored_and_handed_in(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, class_run):
    from napari.utils.colormaps import DirectLabelColormap

    from napari_nuclei.core.label_files import read_label_classes

    run_dir, test_dir = class_run
    viewer, widget = class_dock(make_napari_viewer, qtbot, tmp_path, run_dir, test_dir)
    session, predict = widget.session, widget.predict_tab
    panel = predict.classes
    assert session.classes.names == ("lymphocyte", "tumor")
    predict_folder(qtbot, widget, ("t0", "t1"))
    name = predict.layers.current
    image = session.images[name]
    layer = predict.layers.labels_layer
    assert panel.isVisibleTo(predict)
    shown = image.prediction.above(image.score_thresh)
    assert len(shown) >= 3, "the tiny run found too few nuclei to correct"
    assert row_counts(panel) == shown.counts_per_class(session.classes)

    # By the session: a nucleus of the other class, counted, one undo step.
    first = 1
    before = image.nucleus_classes.of(first)
    other = 1 - before
    assert session.set_class(name, [first], other) == 1
    expected = dict(row_counts(panel))
    qtbot.waitUntil(lambda: row_counts(panel) != shown.counts_per_class(session.classes))
    assert str(image.edits).endswith("1 reclassified") and image.dirty
    rows = [predict.images.item(i).text() for i in range(predict.images.count())]
    assert any(row.startswith(f"{name} ·") and "1 reclassified" in row for row in rows)
    panel.undo_button.click()
    assert image.nucleus_classes.of(first) == before and not image.edited
    assert row_counts(panel) == shown.counts_per_class(session.classes)
    panel.redo_button.click()
    assert image.nucleus_classes.of(first) == other and row_counts(panel) == expected

    # Coloured by class: each nucleus in its class's colour.
    panel.colour_by.setCurrentText("class")
    assert isinstance(layer.colormap, DirectLabelColormap)
    colour = np.array([*session.classes.classes[other].color, 255]) / 255
    np.testing.assert_allclose(layer.colormap.color_dict[first], colour, atol=1e-6)

    # By a click while Set class is on: the current class, and no paint stroke.
    second, third = 2, 3
    panel.rows.setCurrentRow(other)
    assert session.current_class == other
    layer.mode = "paint"  # the user was painting
    panel.set_button.click()
    assert layer.mode == "pan_zoom"
    painted = layer.data.copy()
    if image.nucleus_classes.of(second) == other:
        session.set_class(name, [second], before)
    click(layer, pixel_of(layer.data, second))
    qtbot.waitUntil(lambda: image.nucleus_classes.of(second) == other)
    np.testing.assert_array_equal(layer.data, painted)
    np.testing.assert_allclose(layer.colormap.color_dict[second], colour, atol=1e-6)

    # By a number key, for the nucleus under the pointer.
    viewer.cursor.position = pixel_of(layer.data, third)
    key = before + 1 if image.nucleus_classes.of(third) != before else other + 1
    press_key(qtbot, viewer, key)
    qtbot.waitUntil(lambda: image.nucleus_classes.of(third) == key - 1)
    assert "is " in panel.hint.text()

    # Off again: the brush is back, the number keys are napari's mode keys again.
    panel.set_button.click()
    assert not panel.binding.setting and layer.mode == "paint"
    press_key(qtbot, viewer, 6)
    assert layer.mode == "pan_zoom" and image.nucleus_classes.of(third) == key - 1

    # A nucleus drawn by hand is of the current class.
    new = int(layer.data.max()) + 1
    ys, xs = np.nonzero(layer.data == 0)
    layer.brush_size = 3
    layer.paint((int(ys[0]) + 1, int(xs[0]) + 1), new)
    qtbot.waitUntil(lambda: image.edits.added == 1)
    assert image.nucleus_classes.of(new) == other

    # Autosaved: the class column of the corrected table says each nucleus' class.
    qtbot.waitUntil(lambda: not session.unsaved(), timeout=30_000)
    saved = read_label_classes(image.saved_to)
    names = session.classes.names
    assert saved[first] == saved[second] == names[other] and saved[new] == names[other]
    assert saved[third] == names[key - 1]
    counts = image.class_counts()

    # Handed in: each nucleus' category is its class as corrected.
    from pycocotools import mask as mask_utils

    path = tmp_path / "submission.json"
    widget.export_tab.export_submission(str(path))
    qtbot.waitUntil(lambda: path.is_file(), timeout=30_000)
    entries = json.loads(path.read_text())
    y, x = (int(v) for v in pixel_of(image.labels, first))
    ids = [e["category_id"] for e in entries if e["image_id"] == int(name[1]) + 1
           and mask_utils.decode(e["segmentation"])[y, x]]
    assert ids == [session.classes.ids[other]]

    # Quit and open the session: the classes come back.
    viewer, widget = quit_and_open_session(make_napari_viewer, qtbot, monkeypatch, tmp_path,
                                           viewer, None, test_dir)
    restored = widget.session.images[name]
    assert widget.session.classes.names == names
    assert restored.class_counts() == counts
    assert [restored.nucleus_classes.of(v) for v in (first, second, third, new)] == [
        other, other, key - 1, other]
    widget.predict_tab.layers.show(name)
    assert row_counts(widget.predict_tab.classes) == counts


def test_a_one_class_model_shows_no_classes(make_napari_viewer, qtbot, tmp_path,
                                            fake_model):
    from napari.utils.colormaps import DirectLabelColormap

    folder = tmp_path / "mixed"
    rng = np.random.default_rng(5)
    write_png(folder / "gray.png", rng.integers(0, 255, (60, 70), dtype=np.uint8))
    (folder / "test_img_ids.json").write_text(json.dumps(
        [{"id": 1, "file_name": "gray.png", "height": 60, "width": 70}]))
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model, folder)
    predict_folder(qtbot, widget, ("gray",))
    panel = widget.predict_tab.classes
    assert widget.session.classes.is_default and not panel.isVisibleTo(widget.predict_tab)
    image = widget.session.images["gray"]
    assert image.summary() == "gray · 3 nuclei · 0 added, 0 removed, 0 edited"
    layer = widget.predict_tab.layers.labels_layer
    panel.colour_by.setCurrentText("class")  # hidden, and nothing to colour by
    assert not isinstance(layer.colormap, DirectLabelColormap)


def test_a_data_set_with_classes_shows_its_ground_truth_classes(make_napari_viewer, qtbot,
                                                                tmp_path):
    from class_helpers import write_dsb_classes
    from napari.utils.colormaps import DirectLabelColormap

    root = write_dsb_classes(tmp_path / "dsb", count=2)
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, None, None, root)
    data = widget.data_tab
    qtbot.waitUntil(lambda: data.images.count() == 2)
    data.images.itemDoubleClicked.emit(data.images.item(0))
    layer = viewer.layers["img0 nuclei"]
    assert isinstance(layer.colormap, DirectLabelColormap)
    assert set(layer.features["class"]) == {"lymphocyte", "tumor"}
    data.check_button.click()
    qtbot.waitUntil(lambda: "nucleus classes" in data.summary.text(), timeout=30_000)
    assert "2 nucleus classes: lymphocyte" in data.summary.text()
