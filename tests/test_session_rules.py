"""Rules the dock's widgets only call: nuclei counted, the threshold applied, a session
restored, a slide window's training sample, a folder holding a run. Each in the session
model or the core, and through the dock in a real viewer."""

import json

import numpy as np
import pytest
import test_dock_journeys as journeys
from test_dock_journeys import choose, fake_prediction, make_dock, predict_folder

from napari_nuclei.session import EditedImageError, ImageState, Session

pytestmark = pytest.mark.gui
fake_model = journeys.fake_model
mixed_test_folder = journeys.mixed_test_folder


def image(name="gray", n=4, shape=(40, 50)):
    return ImageState.predicted(name, None, fake_prediction(np.zeros(shape), n), 0.5)


def test_an_image_counts_its_nuclei_as_corrected():
    state = image(n=4)  # scores 0.95 to 0.6: all four shown at 0.5
    assert state.nuclei == 4
    assert state.summary() == "gray · 4 nuclei · 0 added, 0 removed, 0 edited"
    labels = state.labels
    labels[labels == 1] = 0  # one removed
    labels[0:3, 0:3] = 99  # one drawn
    state.tracker.changed([(slice(0, 40), slice(0, 50))])
    assert state.nuclei == 4
    assert state.summary().startswith("gray · 4 nuclei · 1 added, 1 removed")


def test_a_threshold_applies_to_the_image_shown_unless_it_is_corrected():
    session = Session()
    for name in ("gray", "rgb"):
        session.images[name] = image(name)
    assert session.set_threshold(0.9, None) is None and session.score_thresh == 0.9
    shown = session.set_threshold(0.7, "gray")
    assert shown is session.images["gray"] and shown.nuclei == 3
    assert session.images["rgb"].nuclei == 4  # not shown: left as it is
    session.labels_replaced("rgb", np.zeros_like(session.images["rgb"].labels))
    with pytest.raises(EditedImageError, match="uncorrected images only: it stays at 0.50"):
        session.set_threshold(0.8, "rgb")
    assert session.score_thresh == 0.7  # refused: nothing changed unseen
    assert session.threshold_shown("rgb") == 0.5 and session.threshold_shown("gray") == 0.7
    assert session.threshold_shown(None) == 0.7


def test_a_restored_session_is_announced_once_every_field_has_its_value(tmp_path):
    session = Session(train_dir=tmp_path / "old")
    session.images["old"] = image("old")
    seen = []
    session.events.train_dir.connect(lambda *_: seen.append(
        ("train_dir", session.test_dir, list(session.images))))
    session.image_removed.connect(lambda name: seen.append(("removed", name)))
    session.image_added.connect(lambda name: seen.append(("added", name)))
    fields = {"train_dir": tmp_path / "train", "test_dir": tmp_path / "test",
              "gt_dir": None, "run_dir": None, "checkpoint": None, "score_thresh": 0.4}
    session.restore(tmp_path / "session", fields, [image("gray"), image("deep")])
    assert seen == [("removed", "old"), ("train_dir", tmp_path / "test", []),
                    ("added", "gray"), ("added", "deep")]
    assert session.output_dir == tmp_path / "session" and session.score_thresh == 0.4


def test_a_slide_window_has_one_training_sample_per_region(tmp_path):
    from types import SimpleNamespace

    from napari_nuclei.core.slide.training_windows import sample_name
    from napari_nuclei.session.slides import SlideSession

    state = SlideSession(lambda: tmp_path)
    window = SimpleNamespace(slide="case_01.tif", level0_region=(10, 20, 300, 400),
                             out_dir=tmp_path / "slides" / "case_01_x10_y20_300x400")
    assert state.training_sample(window) == (tmp_path / "slide_windows" / "train"
                                             / sample_name(window))


def test_a_folder_holding_only_a_checkpoint_holds_a_run_for_the_core_and_the_dock(
        make_napari_viewer, qtbot, tmp_path, dsb_root):
    from napari_nuclei.core.errors import InputError
    from napari_nuclei.core.training.run import _check_new_run_dir, holds_run

    run = tmp_path / "run"
    assert not holds_run(run)
    run.mkdir()
    assert not holds_run(run)
    (run / "model_0000019.pth").write_bytes(b"weights")
    assert holds_run(run)
    with pytest.raises(InputError, match="already holds a training run"):
        _check_new_run_dir(run)
    (run / "model_0000019.pth").unlink()
    (run / "settings.json").write_text(json.dumps({}))
    assert holds_run(run)

    (run / "settings.json").unlink()
    (run / "model_0000019.pth").write_bytes(b"weights")
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, run, train_dir=dsb_root)
    train = widget.train_tab
    train.form.output.set_text(str(run), emit=False)
    train.start_button.click()
    assert train.status.text().startswith(f"{run} already holds a training run")
    assert train.job is None


def test_the_dock_lists_counts_and_refilters_through_the_session(
        make_napari_viewer, qtbot, tmp_path, fake_model, mixed_test_folder):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict, session = widget.predict_tab, widget.session
    predict_folder(qtbot, widget)
    rows = [predict.images.item(i).text() for i in range(predict.images.count())]
    assert rows == [image.summary() for image in session.images.values()]
    assert sorted(session.images) == ["deep", "gray", "rgb"]
    choose(qtbot, widget, "rgb")
    predict.threshold.setValue(90)  # only the 0.95 nucleus of three passes
    qtbot.waitUntil(lambda: session.images["rgb"].score_thresh == 0.9)
    assert session.score_thresh == 0.9 and session.images["rgb"].nuclei == 1
    assert session.images["gray"].nuclei == 3  # not in view: left at its threshold
    assert predict.layers.labels_layer.data is session.images["rgb"].labels
    qtbot.waitUntil(lambda: "rgb · 1 nuclei · 0 added, 0 removed, 0 edited" in [
        predict.images.item(i).text() for i in range(predict.images.count())])
    # Corrected, the image keeps its labels; the hint says why.
    predict.layers.labels_layer.paint((10, 10), 50)
    qtbot.waitUntil(lambda: session.images["rgb"].edited)
    predict.threshold.setValue(60)
    qtbot.waitUntil(lambda: "uncorrected images only" in predict.hint.text())
    # Refused, it changes nothing: the slider is back at the image's threshold.
    assert session.images["rgb"].score_thresh == 0.9 and session.score_thresh == 0.9
    assert predict.threshold.value() == 90


def test_shown_scores_follow_the_resolved_nuclei_when_a_hidden_one_is_dropped():
    import numpy as np

    from napari_nuclei.core.predict.instances import Prediction
    from napari_nuclei.session.model import ImageState

    big = np.ones((10, 10), bool)
    hidden = np.ones((4, 4), bool)  # inside the big one, which scores better
    apart = np.ones((5, 5), bool)
    prediction = Prediction(40, 40, np.array([0.9, 0.8, 0.7], np.float32),
                            [(0, 0, big), (3, 3, hidden), (20, 20, apart)])
    image = ImageState.predicted("a", None, prediction, 0.5)
    assert sorted(np.unique(image.labels).tolist()) == [0, 1, 2]
    assert image.shown_scores() == {1: pytest.approx(0.9), 2: pytest.approx(0.7)}
