"""Journeys through the dock in a real viewer: what the user made is never destroyed or
misshown. Predictions are made in-process by a stand-in for the child process."""

import json

import numpy as np
import pytest

from conftest import write_png

pytestmark = pytest.mark.gui


def fake_prediction(pixels, n=3, seed=0):
    """``n`` square nuclei scored 0.95 down to 0.6, placed at random in the image."""
    from napari_nuclei.core.predict.instances import Prediction

    height, width = pixels.shape[:2]
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        size = int(rng.integers(5, 9))
        top, left = int(rng.integers(0, height - size)), int(rng.integers(0, width - size))
        crops.append((top, left, np.ones((size, size), bool)))
    scores = np.linspace(0.95, 0.6, n).astype(np.float32)
    return Prediction(height, width, scores, crops)


class FakeJob:
    """In place of the child process: predicts each source in the relay thread.

    Each image gets ``n`` nuclei; a test sets another ``n`` to stand for another model.
    """

    n = 3

    def __init__(self, _target, kwargs, log_path=None):
        self.sources = kwargs["sources"]
        self.stopping = False

    def start(self):
        return self

    def stop(self):
        self.stopping = True

    def is_alive(self):
        return False

    def kill(self):
        pass

    def reports(self):
        from napari_nuclei.core.image_io import read_image
        from napari_nuclei.core.predict.outputs import ImagePredicted

        for done, source in enumerate(self.sources, start=1):
            pixels = source.pixels if source.pixels is not None else read_image(source.path)
            yield ImagePredicted(done, len(self.sources), source.name, source.path,
                                 fake_prediction(pixels, FakeJob.n, done),
                                 pixels if source.pixels is None else None)
        return len(self.sources)


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    monkeypatch.setattr("napari_nuclei.core.child_job.ChildJob", FakeJob)
    run = tmp_path / "run"  # a run of one class, with every setting at its default
    run.mkdir()
    (run / "settings.json").write_text("{}")
    return run


@pytest.fixture
def mixed_test_folder(tmp_path):
    """A test folder of a grayscale, an RGB and a 16-bit image of different sizes."""
    folder = tmp_path / "mixed"
    rng = np.random.default_rng(5)
    write_png(folder / "gray.png", rng.integers(0, 255, (60, 70), dtype=np.uint8))
    write_png(folder / "rgb.png", rng.integers(0, 255, (50, 40, 3), dtype=np.uint8))
    write_png(folder / "deep.png", rng.integers(0, 65535, (64, 64), dtype=np.uint16))
    ids = [{"id": i, "file_name": n, "height": h, "width": w} for i, (n, h, w) in
           enumerate((("gray.png", 60, 70), ("rgb.png", 50, 40), ("deep.png", 64, 64)),
                     start=1)]
    (folder / "test_img_ids.json").write_text(json.dumps(ids))
    return folder


def make_dock(make_napari_viewer, qtbot, tmp_path, run_dir, test_dir=None, train_dir=None):
    """A viewer with the dock, its folders chosen and a model (the stand-in) in use."""
    from napari_nuclei._qt.dock import NucleiDock

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    assert isinstance(widget, NucleiDock)
    widget.data_tab.set_paths(train_dir, test_dir, None, tmp_path / "session")
    widget.session.run_dir = run_dir
    qtbot.waitUntil(lambda: widget.close_guard.watching)  # it guards napari's window
    return viewer, widget


def wait_predicted(qtbot, widget, names):
    predict = widget.predict_tab
    qtbot.waitUntil(lambda: set(names) <= set(widget.session.images)
                    and predict.current_button.isEnabled(), timeout=30_000)
    qtbot.waitUntil(lambda: not predict.worker.is_running)


def predict_folder(qtbot, widget, names=("gray", "rgb", "deep")):
    widget.predict_tab.folder_button.click()
    wait_predicted(qtbot, widget, names)


def quit_and_open_session(make_napari_viewer, qtbot, monkeypatch, tmp_path, viewer, run_dir,
                          test_dir=None, train_dir=None):
    """Close napari (the dock saves what is pending), start it again and press *Open
    session…* on the output folder."""
    from qtpy.QtWidgets import QFileDialog

    viewer.close()
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, run_dir, test_dir,
                               train_dir)
    folder = tmp_path / "session"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(folder))
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=60_000):
        widget.data_tab.open_session_button.click()
    assert "Session restored" in widget.data_tab.summary.text()
    return viewer, widget


def choose(qtbot, widget, name):
    """Click an image in the list of predicted images; wait until it is shown."""
    predict = widget.predict_tab
    rows = [predict.images.item(i).text().split(" · ")[0] for i in range(predict.images.count())]
    predict.images.setCurrentRow(rows.index(name))
    layers = predict.layers
    qtbot.waitUntil(lambda: layers.current == name and layers.image_layer is not None
                    and layers.image_layer.name == name and layers.image_layer.visible)


def index_of(viewer, layer):
    return [other.unique_id for other in viewer.layers].index(layer.unique_id)


def assert_shown_as_it_is(viewer, widget, name, pixels):
    """The image fills a 2D canvas in a layer made for it, its nuclei drawn over it."""
    layers = widget.predict_tab.layers
    image, labels = layers.image_layer, layers.labels_layer
    np.testing.assert_array_equal(image.data, pixels)
    assert image.rgb == (pixels.ndim == 3)
    assert image.ndim == labels.ndim == viewer.dims.ndim == 2  # no slider: one plane
    assert tuple(labels.data.shape) == pixels.shape[:2]
    assert labels.data is widget.session.images[name].labels
    assert index_of(viewer, labels) > index_of(viewer, image)  # nuclei above their image
    assert labels.visible and image.visible
    shown = [layer.name for layer in viewer.layers if layer.visible]
    assert shown == [name, f"{name} nuclei (predicted)"]


# -- 1. adding corrections to the training set -------------------------------------------
def test_adding_a_training_image_back_asks_and_moves_its_hand_made_masks_aside(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model, dsb_root):
    from napari_nuclei.core.dataset import open_dataset
    from napari_nuclei.core.image_io import read_image

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               train_dir=dsb_root)
    data, predict, session = widget.data_tab, widget.predict_tab, widget.session
    train = dsb_root / "train"
    sample = train / "b_img"
    hand_made = {p.name: p.read_bytes() for p in (sample / "masks").iterdir()}
    assert len(hand_made) == 6
    # Double-click the training image, predict it from its layer, paint one stroke.
    rows = [data.images.item(i) for i in range(data.images.count())]
    data.images.itemDoubleClicked.emit(next(r for r in rows if r.text() == "train: b_img"))
    viewer.layers.selection.active = viewer.layers["b_img"]
    monkeypatch.setattr(FakeJob, "n", 9)
    predict.current_button.click()
    wait_predicted(qtbot, widget, ["b_img"])
    layer = predict.layers.labels_layer
    layer.brush_size = 3
    layer.paint((2, 2), 40)
    qtbot.waitUntil(lambda: session.images["b_img"].edited)
    nuclei = len(np.unique(session.images["b_img"].labels)) - 1

    # No: nothing of the sample changes.
    questions = []
    predict.ask = lambda _parent, question: questions.append(question) or False
    predict.add_button.click()
    qtbot.waitUntil(lambda: "not replaced" in predict.hint.text())
    assert len(questions) == 1
    assert f"b_img (its 6 masks, by the {nuclei} nuclei corrected here)" in questions[0]
    assert str(train / ".replaced") in questions[0] and "not deleted" in questions[0]
    assert {p.name: p.read_bytes() for p in (sample / "masks").iterdir()} == hand_made
    assert not (train / ".replaced").exists()

    # Yes: the corrections take the sample's place; the hand-made sample is moved aside
    # whole, and no reader takes the folder it is in for a sample.
    predict.ask = lambda _parent, question: questions.append(question) or True
    predict.add_button.click()
    qtbot.waitUntil(lambda: "Added 1" in predict.hint.text())
    (aside,) = (train / ".replaced").iterdir()
    assert f"the samples replaced are in {aside}" in predict.hint.text()
    assert {p.name: p.read_bytes() for p in (aside / "b_img" / "masks").iterdir()} == hand_made
    assert len(list((sample / "masks").glob("*.png"))) == nuclei
    assert [r.name for r in open_dataset(dsb_root).records] == ["a_img", "b_img", "c_img"]
    # Adding again, with no edit since, leaves the sample alone and asks nothing.
    predict.add_button.click()
    qtbot.waitUntil(lambda: "not edited since: b_img" in predict.hint.text())
    assert len(questions) == 2

    # Another image of a sample's name becomes a sample of its own: nothing is asked,
    # the sample of that name is left as it is.
    elsewhere = write_png(tmp_path / "elsewhere" / "a_img.png",
                          np.full((64, 80), 90, np.uint8))
    a_img = {p.name: p.read_bytes() for p in (train / "a_img" / "masks").iterdir()}
    viewer.add_image(read_image(elsewhere), name="a_img",
                     metadata={"source_file": str(elsewhere)})
    predict.current_button.click()
    wait_predicted(qtbot, widget, ["a_img"])
    layer = predict.layers.labels_layer
    layer.paint((30, 30), 60)
    qtbot.waitUntil(lambda: session.images["a_img"].edited)
    predict.add_button.click()
    qtbot.waitUntil(lambda: "a_img_corrected_1" in predict.hint.text())
    assert len(questions) == 2
    assert {p.name: p.read_bytes() for p in (train / "a_img" / "masks").iterdir()} == a_img
    copy = train / "a_img_corrected_1" / "images" / "a_img_corrected_1.png"
    assert copy.read_bytes() == elsewhere.read_bytes()


# -- 2. corrections discarded stay discarded ---------------------------------------------
def test_corrections_replaced_by_a_new_prediction_never_come_back(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model, mixed_test_folder):
    import tifffile

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict, session = widget.predict_tab, widget.session
    folder = tmp_path / "session"
    predict_folder(qtbot, widget)
    choose(qtbot, widget, "gray")
    layer = predict.layers.labels_layer
    layer.data_setitem(np.nonzero(layer.data == 1), 0)
    qtbot.waitUntil(lambda: session.images["gray"].edited)
    qtbot.waitUntil(lambda: not session.needs_saving(), timeout=10_000)  # autosaved
    corrected = folder / "corrected" / "gray.tif"
    discarded = tifffile.imread(corrected)

    # Predict again and agree to replace the corrections: at that moment session.json
    # stops naming them and they are moved aside (kept, never deleted).
    at_once = []

    def on_changed(name):
        image = session.images[name]
        if name == "gray" and not image.edited and len(image.prediction) == 5:
            document = json.loads((folder / "session.json").read_text())
            entry = next(e for e in document["images"] if e["name"] == "gray")
            at_once.append((entry["labels"], corrected.exists()))

    session.image_changed.connect(on_changed)
    monkeypatch.setattr(FakeJob, "n", 5)
    questions = []
    predict.ask = lambda _parent, question: questions.append(question) or "gray" in question
    predict_folder(qtbot, widget)
    assert len(questions) == 1 and questions[0].startswith("gray has corrections")
    assert f"moved into {folder / 'replaced'}, not deleted" in questions[0]
    assert at_once and at_once[0] == (None, False)
    (aside,) = (folder / "replaced").glob("*/gray.tif")
    np.testing.assert_array_equal(tifffile.imread(aside), discarded)
    assert aside.with_suffix(".csv").is_file()
    shown = session.images["gray"].labels.copy()

    # After a restart, Open session shows the new prediction; the export hands it in.
    viewer, widget = quit_and_open_session(make_napari_viewer, qtbot, monkeypatch, tmp_path,
                                           viewer, fake_model, mixed_test_folder)
    restored = widget.session.images["gray"]
    assert not restored.edited and restored.saved_to is None
    np.testing.assert_array_equal(restored.labels, shown)
    widget.export_tab.export_submission(str(tmp_path / "submission.json"))
    qtbot.waitUntil(lambda: "Wrote" in widget.export_tab.result.text())
    entries = [e for e in json.loads((tmp_path / "submission.json").read_text())
               if e["image_id"] == 1]
    assert len(entries) == len(np.unique(shown)) - 1 == 5
    assert all(e["score"] < 1.0 for e in entries)  # none of them drawn by hand


# -- 3 to 5. mixed folders, across restarts ----------------------------------------------
def test_a_folder_mixing_gray_rgb_and_16_bit_images_shows_each_as_it_is_across_restarts(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model, mixed_test_folder):
    from napari_nuclei.core.image_io import read_image

    pixels = {name: read_image(mixed_test_folder / f"{name}.png")
              for name in ("gray", "rgb", "deep")}
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    for name in ("gray", "rgb", "deep", "rgb", "gray"):
        choose(qtbot, widget, name)
        assert_shown_as_it_is(viewer, widget, name, pixels[name])
    choose(qtbot, widget, "rgb")
    for step in ("rgb", "deep", "gray"):  # quit, open the session, switch images
        viewer, widget = quit_and_open_session(make_napari_viewer, qtbot, monkeypatch,
                                               tmp_path, viewer, fake_model,
                                               mixed_test_folder)
        # The image restored in view, its nuclei above it.
        layers = widget.predict_tab.layers
        qtbot.waitUntil(lambda layers=layers: layers.image_layer is not None
                        and layers.image_layer.visible)
        assert_shown_as_it_is(viewer, widget, layers.current, pixels[layers.current])
        for name in (step, "gray", "rgb", "deep", step):
            choose(qtbot, widget, name)
            assert_shown_as_it_is(viewer, widget, name, pixels[name])
