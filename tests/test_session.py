"""The session model without Qt: corrections, thresholds, autosave, save and restore."""

import json

import numpy as np
import pytest

from napari_nuclei.core.corrections import EditTracker, corrected_features
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.session import EditedImageError, Session, actions, handin
from napari_nuclei.session.restore import restore_session


def square(top, left, size):
    return top, left, np.ones((size, size), bool)


@pytest.fixture
def prediction():
    """Four nuclei on a 64x64 image; the last one scores below 0.5 (hidden at 0.5)."""
    crops = [square(2, 2, 8), square(20, 20, 10), square(40, 5, 6), square(50, 50, 9)]
    return Prediction(64, 64, np.array([0.95, 0.9, 0.8, 0.2], np.float32), crops)


@pytest.fixture
def session(tmp_path, prediction):
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    session.add_prediction("img", None, prediction)
    return session


def test_edit_tracker_counts_strokes_and_undo():
    predicted = np.zeros((30, 30), np.int32)
    predicted[2:6, 2:6] = 1
    predicted[10:15, 10:15] = 2
    current = predicted.copy()
    tracker = EditTracker(predicted, current)
    current[2:6, 2:6] = 0  # erase nucleus 1
    assert str(tracker.changed([(slice(2, 6), slice(2, 6))])) == "0 added, 1 removed, 0 edited"
    current[14:17, 14:17] = 2  # grow nucleus 2
    current[20:25, 20:25] = 9  # a new one
    counts = tracker.changed([(slice(14, 17), slice(14, 17)), (slice(20, 25), slice(20, 25))])
    assert (counts.added, counts.removed, counts.edited) == (1, 1, 1)
    assert tracker.hand_drawn() == {9}
    # Undo rewrites the data in place without saying where: recheck finds it.
    current[20:25, 20:25] = 0
    current[2:6, 2:6] = 1
    assert tracker.recheck() and str(tracker.counts) == "0 added, 0 removed, 1 edited"
    assert not tracker.recheck()  # nothing changed since
    current[14:17, 14:17] = predicted[14:17, 14:17]
    assert tracker.recheck() and not tracker.counts.any


def test_hand_drawn_nucleus_with_a_hidden_predictions_label_scores_one(session):
    image = session.images["img"]
    assert image.labels.max() == 3  # nucleus 4 (score 0.2) is hidden at 0.5
    # napari's M picks the highest visible label + 1 = 4, a hidden prediction's value.
    image.labels[30:34, 40:44] = 4
    counts = session.labels_painted("img", [(slice(30, 34), slice(40, 44))])
    assert (counts.added, counts.removed, counts.edited) == (1, 0, 0)
    snap = actions.snapshot(image)
    assert 4 not in snap.scores
    table = corrected_features(snap.labels, snap.scores)
    row = list(table["label"]).index(4)
    assert table["score"][row] == 1.0 and table["area"][row] == 16
    assert (table["bbox_x"][row], table["bbox_y"][row]) == (40, 30)
    entries = handin.image_entries(1, snap)
    drawn = [e for e in entries if e["bbox"] == [40, 30, 4, 4]]
    assert len(drawn) == 1 and drawn[0]["score"] == 1.0


def test_threshold_and_new_predictions_never_discard_corrections(session, prediction):
    assert session.apply_threshold("img", 0.1).labels.max() == 4  # untouched: re-filtered
    image = session.images["img"]
    image.labels[image.labels == 1] = 0
    session.labels_painted("img", [(slice(2, 10), slice(2, 10))])
    with pytest.raises(EditedImageError):
        session.apply_threshold("img", 0.9)
    with pytest.raises(EditedImageError):
        session.add_prediction("img", None, prediction)
    changed, removed = [], []
    session.image_changed.connect(changed.append)
    session.image_removed.connect(removed.append)
    replaced = session.add_prediction("img", None, prediction, replace_edits=True)
    assert not replaced.edited
    assert changed == ["img"] and removed == []  # the image's layer is reused


def test_use_run_takes_the_runs_threshold_and_refuses_other_folders(tmp_path):
    session = Session()
    with pytest.raises(InputError, match="not a training run"):
        session.use_run(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"score_thresh_test": 0.3}))
    (tmp_path / "model_final.pth").write_bytes(b"")
    changes = []
    session.events.checkpoint.connect(changes.append)
    session.use_run(tmp_path)
    assert session.score_thresh == 0.3 and session.checkpoint.name == "model_final.pth"
    assert changes[-1] == session.checkpoint


@pytest.mark.parametrize("value", [5.0, "0.3", None, [0.3]])
def test_use_run_refuses_a_threshold_that_cannot_be_one(tmp_path, value):
    (tmp_path / "settings.json").write_text(json.dumps({"score_thresh_test": value}))
    (tmp_path / "model_final.pth").write_bytes(b"")
    session = Session()
    with pytest.raises(InputError, match="settings.json: is damaged.*score_thresh_test"):
        session.use_run(tmp_path)
    assert session.run_dir is None


def test_autosave_writes_every_edited_image_into_the_output_folder(session, prediction,
                                                                   tmp_path):
    session.add_prediction("other", None, prediction)
    for name in ("img", "other"):
        session.images[name].labels[60:63, 0:3] = 77
        session.labels_painted(name, [(slice(60, 63), slice(0, 3))])
    assert {i.name for i in session.unsaved()} == {"img", "other"}
    state = actions.session_snapshot(session)
    saved = actions.save_session(state).corrections
    for name, path, generation in saved:
        session.mark_saved(name, path, generation)
    assert sorted(p.name for _, p, _ in saved) == ["img.tif", "other.tif"]
    assert all(p.parent == tmp_path / "out" / "corrected" for _, p, _ in saved)
    assert not session.unsaved()
    # An edit made while the autosave ran keeps the image unsaved.
    session.images["img"].labels[0, 60] = 78
    session.labels_painted("img", [(slice(0, 1), slice(60, 61))])
    session.mark_saved("img", saved[0][1], saved[0][2])
    assert [i.name for i in session.unsaved()] == ["img"]


def test_session_is_saved_and_restored(session, tmp_path):
    session.train_dir = tmp_path / "train"
    image = session.images["img"]
    image.labels[image.labels == 2] = 0
    session.labels_painted("img", [(slice(20, 30), slice(20, 30))])
    actions.save_session(actions.session_snapshot(session))

    restored = Session()
    added = []
    restored.image_added.connect(added.append)
    assert restore_session(restored, tmp_path / "out") == []
    assert added == ["img"] and restored.train_dir == tmp_path / "train"
    again = restored.images["img"]
    np.testing.assert_array_equal(again.labels, image.labels)
    assert str(again.edits) == "0 added, 1 removed, 0 edited"
    np.testing.assert_array_equal(again.prediction.labels(), image.prediction.labels())
    with pytest.raises(InputError, match="no saved session"):
        restore_session(Session(), tmp_path)


def test_predictions_are_made_ready_to_show_off_the_gui_thread(prediction):
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.predict.outputs import ImagePredicted, TileProgress

    def job():
        yield TileProgress(1, 1, "img", 1, 2)
        yield ImagePredicted(1, 1, "img", None, prediction)
        return 1

    prepared = []
    assert drain(actions.iter_prepared(job(), 0.5), prepared.append) == 1
    (tile, none), (done, image) = prepared
    assert isinstance(tile, TileProgress) and none is None
    assert done.name == image.name == "img" and image.score_thresh == 0.5
    np.testing.assert_array_equal(image.labels, prediction.above(0.5).labels())
    assert list(image.features()["label"]) == [1, 2, 3]
    # The session takes it as it is at that threshold, and makes it anew at another.
    session = Session(score_thresh=0.5)
    assert session.add_prediction("img", None, prediction, image=image) is image
    session.score_thresh = 0.85
    again = session.add_prediction("img", None, prediction, image=image)
    assert again is not image and again.labels.max() == 2


def _corrected_and_saved(session, name="img"):
    image = session.images[name]
    image.labels[image.labels == 1] = 0
    session.labels_painted(name, [(slice(2, 10), slice(2, 10))])
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    assert not session.needs_saving()
    return session.output_dir / "corrected" / f"{name}.tif"


def _entry(folder, name="img"):
    document = json.loads((folder / "session.json").read_text())
    return next(e for e in document["images"] if e["name"] == name)


def test_corrections_replaced_on_screen_are_set_aside_and_the_session_saved_at_once(
        session, prediction, tmp_path):
    import tifffile

    folder = tmp_path / "out"
    corrected = _corrected_and_saved(session)
    assert _entry(folder)["labels"] == "corrected/img.tif"
    saved = tifffile.imread(corrected)
    fewer = Prediction(64, 64, prediction.scores[:2], prediction.crops[:2])
    session.add_prediction("img", None, fewer, replace_edits=True)
    # No save was asked for: replacing the corrections saved the session.
    assert _entry(folder)["labels"] is None and not corrected.exists()
    (aside,) = (folder / "replaced").glob("*/img.tif")
    np.testing.assert_array_equal(tifffile.imread(aside), saved)
    assert aside.with_suffix(".csv").is_file()
    restored = Session()
    assert restore_session(restored, folder) == []
    assert not restored.images["img"].edited
    assert len(restored.images["img"].prediction) == 2  # the new prediction, saved too


def test_a_new_threshold_sets_aside_corrections_undone_since_they_were_saved(session,
                                                                              tmp_path):
    corrected = _corrected_and_saved(session)
    image = session.images["img"]
    image.labels[:] = image.predicted_labels  # undone by hand: no edit left
    session.labels_replaced("img", image.labels)
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    assert corrected.is_file() and not session.images["img"].edited
    session.apply_threshold("img", 0.1)
    assert not corrected.exists() and _entry(tmp_path / "out")["labels"] is None
    assert list((tmp_path / "out" / "replaced").glob("*/img.tif"))


def test_a_save_begun_before_its_image_was_replaced_writes_nothing(session, prediction,
                                                                    tmp_path):
    image = session.images["img"]
    image.labels[image.labels == 1] = 0
    session.labels_painted("img", [(slice(2, 10), slice(2, 10))])
    stale = actions.session_snapshot(session)  # an autosave's, taken before the answer
    session.add_prediction("img", None, prediction, replace_edits=True)
    saved = actions.save_session(stale)
    assert saved.stale and not saved.corrections
    assert not (tmp_path / "out" / "corrected" / "img.tif").exists()
    # Its late report does not mark the new image saved.
    session.mark_saved("img", tmp_path / "out" / "corrected" / "img.tif",
                       stale.images[0].generation)
    assert session.images["img"].saved_to is None


def test_opening_another_session_saves_the_open_one_first(session, prediction, tmp_path):
    other = Session(output_dir=tmp_path / "other", score_thresh=0.5)
    other.add_prediction("b", None, prediction)
    actions.save_session(actions.session_snapshot(other))
    image = session.images["img"]
    image.labels[image.labels == 1] = 0
    session.labels_painted("img", [(slice(2, 10), slice(2, 10))])
    assert restore_session(session, tmp_path / "other") == []
    assert list(session.images) == ["b"]
    back = Session()
    restore_session(back, tmp_path / "out")
    assert str(back.images["img"].edits) == "0 added, 1 removed, 0 edited"


def test_corrections_not_autosaved_yet_are_kept_aside_when_replaced(session, prediction,
                                                                     tmp_path):
    import tifffile

    image = session.images["img"]
    image.labels[image.labels == 1] = 0
    session.labels_painted("img", [(slice(2, 10), slice(2, 10))])
    corrected = image.labels.copy()
    session.add_prediction("img", None, prediction, replace_edits=True)
    (aside,) = (tmp_path / "out" / "replaced").glob("*/img.tif")
    np.testing.assert_array_equal(tifffile.imread(aside), corrected)
    assert _entry(tmp_path / "out")["labels"] is None


def test_a_reused_layer_takes_only_images_it_can_show_as_they_are():
    from napari_nuclei.session.layers import LayerFit, image_fit, labels_fit, labels_move

    gray, rgb = image_fit((60, 70)), image_fit((50, 40, 3))
    assert gray == LayerFit("image", False, 2, (1.0, 1.0)) and rgb.rgb and rgb.ndim == 2
    assert image_fit((64, 64)).takes(gray) and image_fit((8, 8, 4)).takes(rgb)
    assert not gray.takes(rgb) and not rgb.takes(gray)
    assert not image_fit((3, 60, 70)).takes(gray)  # a stack is not a plane
    assert not labels_fit((60, 70)).takes(gray)
    assert not labels_fit((60, 70), (0.5, 0.5)).takes(labels_fit((60, 70)))
    assert labels_fit((60, 70), (0.5, 0.5)).takes(labels_fit((9, 9), (0.5, 0.5 + 1e-12)))
    assert labels_move(image_index=0, labels_index=1) is None
    assert labels_move(image_index=3, labels_index=1) == (1, 4)


def test_corrections_this_session_did_not_save_are_kept_aside_not_written_over(
        session, tmp_path):
    """An entry that could not be restored leaves its corrections in ``corrected/``:
    the next save of an image of that name moves them aside and says so."""
    from napari_nuclei.core.image_io import read_labels
    from napari_nuclei.core.label_files import write_label_outputs

    corrected = tmp_path / "out" / "corrected"
    hand_made = np.zeros((64, 64), np.int32)
    hand_made[10:20, 10:20] = 7
    write_label_outputs(corrected, "img", hand_made,
                        {"label": np.array([7]), "score": np.array([1.0])})
    said = []
    session.notices.said.connect(lambda level, line: said.append((level, line)))
    image = session.images["img"]
    image.labels[30:34, 40:44] = 9
    session.labels_painted("img", [(slice(30, 34), slice(40, 44))])
    saved = actions.save_session(actions.session_snapshot(session))
    actions.apply_saved(session, saved)
    [(where, moved)] = saved.kept_aside
    assert where == corrected / "img.tif" and moved.parent.parent == tmp_path / "out" / "replaced"
    np.testing.assert_array_equal(read_labels(moved), hand_made)
    assert moved.with_suffix(".csv").is_file()
    np.testing.assert_array_equal(read_labels(corrected / "img.tif"), image.labels)
    assert said == [("warning", f"{corrected / 'img.tif'} held corrections this session had "
                                f"not saved (not restored, or another session's): kept as "
                                f"{moved}")]
    # The image's own later saves write over its own file, with nothing more kept aside.
    image.labels[40:44, 40:44] = 10
    session.labels_painted("img", [(slice(40, 44), slice(40, 44))])
    again = actions.save_session(actions.session_snapshot(session))
    assert again.kept_aside == () and len(list(moved.parent.iterdir())) == 2


def test_an_older_snapshot_saved_last_does_not_undo_a_newer_save(session, tmp_path):
    """An autosave in a worker may end after a save made at once (closing): what it
    would write is older, so it writes nothing."""
    from napari_nuclei.core.image_io import read_labels

    image = session.images["img"]
    older = actions.session_snapshot(session)  # before the stroke
    image.labels[30:34, 40:44] = 9
    session.labels_painted("img", [(slice(30, 34), slice(40, 44))])
    newer = actions.session_snapshot(session)
    actions.apply_saved(session, actions.save_session(newer))
    assert actions.save_session(older).stale
    document = json.loads((tmp_path / "out" / "session.json").read_text())
    assert document["images"][0]["labels"] == "corrected/img.tif"
    np.testing.assert_array_equal(read_labels(tmp_path / "out" / "corrected" / "img.tif"),
                                  image.labels)
    assert restore_session(Session(), tmp_path / "out") == []
