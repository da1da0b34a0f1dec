"""Nucleus classes in the session model: predicted, corrected like a paint stroke, undone,
saved, restored, handed in and added to the training set (no Qt)."""

import json

import numpy as np
import pytest

from conftest import write_png
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.label_files import read_label_classes
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.session import EditedImageError, Session
from napari_nuclei.session.actions import (
    apply_saved,
    save_session,
    session_snapshot,
)
from napari_nuclei.session.handin import images_snapshot, write_test_submission
from napari_nuclei.session.image_classes import ImageEdits
from napari_nuclei.session.restore import restore_session
from napari_nuclei.session.training_set import add_to_training

CLASSES = ClassSet.from_names(["lymphocyte", "tumor"])
SHAPE = (40, 60)


def two_class_prediction(n=6):
    """``n`` square nuclei in a row, scored 0.95 down to 0.6, classes 0, 1, 0, 1, …"""
    crops = [(5, 2 + 9 * i, np.ones((6, 6), bool)) for i in range(n)]
    scores = np.linspace(0.95, 0.6, n).astype(np.float32)
    return Prediction(*SHAPE, scores, crops, classes=np.arange(n) % 2)


def run_folder(folder, classes=CLASSES):
    """A run folder as far as its classes go (its settings.json; no checkpoint)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps({"classes": classes.to_json()}))
    return folder


def two_class_session(tmp_path, names=("img",)):
    session = Session(output_dir=tmp_path / "session")
    session.run_dir = run_folder(tmp_path / "run")
    assert session.classes == CLASSES  # the run's, whoever set the run
    for name in names:
        session.add_prediction(name, None, two_class_prediction())
    return session


def test_an_image_knows_each_nucleus_class_and_counts_them():
    session = Session()
    session.classes = CLASSES
    prediction = two_class_prediction()
    image = session.add_prediction("img", None, prediction)
    assert image.class_set == CLASSES
    assert image.class_counts() == prediction.above(0.5).counts_per_class(CLASSES)
    assert image.class_counts() == {"lymphocyte": 3, "tumor": 3}
    assert image.summary() == "img · 6 nuclei · 0 added, 0 removed, 0 edited · " \
                              "3 lymphocyte, 3 tumor"
    assert [image.nucleus_classes.name_of(v) for v in (1, 2)] == ["lymphocyte", "tumor"]


def test_a_class_change_is_a_correction_undone_and_redone_apart_from_strokes():
    session = Session()
    session.classes = CLASSES
    image = session.add_prediction("img", None, two_class_prediction())
    changes = []
    session.image_changed.connect(changes.append)
    assert session.set_class("img", [1], 1) == 1
    assert changes == ["img"] and image.dirty and image.edited
    assert image.edits == ImageEdits(0, 0, 0, 1)
    assert str(image.edits) == "0 added, 0 removed, 0 edited, 1 reclassified"
    assert image.class_counts() == {"lymphocyte": 2, "tumor": 4}
    # A label not in the image, or already of the class, changes nothing.
    assert session.set_class("img", [99, 2], 1) == 0 and changes == ["img"]
    with pytest.raises(ValueError, match="class 3 does not exist"):
        session.set_class("img", [1], 2)
    assert session.undo_class("img") and not image.edited
    assert image.class_counts() == {"lymphocyte": 3, "tumor": 3}
    assert session.redo_class("img") and image.edits.reclassified == 1
    assert not session.redo_class("img")
    # Given back its predicted class, the nucleus is no correction any more.
    session.current_class = 0
    assert session.set_class("img", [1]) == 1 and not image.edited
    # A reclassified nucleus erased counts as removed only.
    session.set_class("img", [3], 1)
    image.labels[image.labels == 3] = 0
    session.labels_painted("img", [(slice(0, 40), slice(0, 60))])
    assert str(image.edits) == "0 added, 1 removed, 0 edited"
    with pytest.raises(EditedImageError):
        session.set_threshold(0.9, "img")


def test_a_nucleus_drawn_by_hand_is_of_the_current_class_and_a_threshold_keeps_classes():
    session = Session()
    session.classes = CLASSES
    image = session.add_prediction("img", None, two_class_prediction())
    session.current_class = 1
    image.labels[30:35, 0:5] = 50
    session.labels_painted("img", [(slice(30, 35), slice(0, 5))])
    session.current_class = 0  # chosen later: the nucleus drawn keeps its class
    session.labels_painted("img", [(slice(30, 35), slice(0, 5))])
    assert image.nucleus_classes.name_of(50) == "tumor"
    assert image.class_counts() == {"lymphocyte": 3, "tumor": 4}
    # An uncorrected image shown at another threshold keeps the predicted classes.
    other = session.add_prediction("other", None, two_class_prediction())
    fresh = session.set_threshold(0.75, "other")
    assert fresh is not other and fresh.class_set == CLASSES
    assert fresh.class_counts() == two_class_prediction().above(0.75).counts_per_class(
        CLASSES)


def test_a_model_of_one_class_reads_as_before():
    session = Session()
    two = two_class_prediction(3)
    image = session.add_prediction("img", None, Prediction(*SHAPE, two.scores, two.crops))
    assert session.classes.is_default and not image.nucleus_classes.several
    assert image.summary() == "img · 3 nuclei · 0 added, 0 removed, 0 edited"


def test_corrected_classes_are_autosaved_and_restored(tmp_path):
    session = two_class_session(tmp_path, ("img", "untouched"))
    session.set_class("img", [1, 3], 1)
    apply_saved(session, save_session(session_snapshot(session)))
    corrected = session.corrected_folder() / "img.tif"
    assert session.images["img"].saved_to == corrected
    names = read_label_classes(corrected)
    assert names == {1: "tumor", 2: "tumor", 3: "tumor", 4: "tumor", 5: "lymphocyte",
                     6: "tumor"}
    assert (tmp_path / "session" / "predictions" / "untouched.csv").is_file()

    again = Session()
    assert restore_session(again, tmp_path / "session") == []
    assert again.run_dir == tmp_path / "run" and again.classes == CLASSES
    image = again.images["img"]
    assert image.edits.reclassified == 2 and image.class_counts() == {"lymphocyte": 1,
                                                                      "tumor": 5}
    assert again.images["untouched"].class_counts() == {"lymphocyte": 3, "tumor": 3}
    assert not again.images["untouched"].edited
    # Taken back after the restore, the nucleus is as predicted again.
    again.set_class("img", [1], 0)
    assert image.edits.reclassified == 1
    # The run folder gone, the classes are those the tables name.
    (tmp_path / "run" / "settings.json").unlink()
    third = Session()
    assert restore_session(third, tmp_path / "session") == []
    assert third.classes.names == CLASSES.names
    assert third.images["img"].class_counts() == {"lymphocyte": 1, "tumor": 5}


def test_a_saved_class_the_model_lacks_costs_its_image_only(tmp_path):
    session = two_class_session(tmp_path, ("img", "other"))
    session.set_class("img", [1], 1)
    apply_saved(session, save_session(session_snapshot(session)))
    table = session.corrected_folder() / "img.csv"
    table.write_text(table.read_text().replace("tumor", "necrosis", 1))
    again = Session()
    problems = restore_session(again, tmp_path / "session")
    assert len(problems) == 1 and "img.csv" in problems[0] and "necrosis" in problems[0]
    assert list(again.images) == ["other"]


def test_the_submission_hands_in_each_nucleus_with_its_corrected_class(tmp_path):
    folder = tmp_path / "test"
    write_png(folder / "img.png", np.zeros(SHAPE, np.uint8))
    (folder / "test_img_ids.json").write_text(json.dumps(
        [{"id": 4, "file_name": "img.png", "height": SHAPE[0], "width": SHAPE[1]}]))
    session = two_class_session(tmp_path)
    session.set_class("img", [1], 1)
    path = tmp_path / "submission.json"
    write_test_submission(path, folder, images_snapshot(session))
    entries = json.loads(path.read_text())
    by_score = sorted(entries, key=lambda e: -e["score"])
    assert [e["category_id"] for e in by_score] == [2, 2, 1, 2, 1, 2]


def test_corrected_classes_go_into_the_training_set_in_class_folders(tmp_path):
    image_path = write_png(tmp_path / "images" / "img.png", np.zeros(SHAPE, np.uint8))
    session = Session()
    session.classes = CLASSES
    session.add_prediction("img", image_path, two_class_prediction())
    session.set_class("img", [1], 1)
    train = tmp_path / "train"
    added = add_to_training(train, None, images_snapshot(session))
    assert added.added == ("img",)
    sample = train / "img"
    assert sorted(p.name for p in (sample / "masks").iterdir()) == ["lymphocyte", "tumor"]
    assert len(list((sample / "masks" / "tumor").iterdir())) == 4
    dataset = open_dataset(train)
    assert dataset.classes.names == ("lymphocyte", "tumor")
    assert sorted(dataset.records[0].mask_categories) == [1, 1, 2, 2, 2, 2]
    assert not [p for p in train.iterdir() if p.name.startswith(".")]  # no staging left
    # Replaced when asked: the earlier sample is kept aside.
    session.set_class("img", [2], 0)
    again = add_to_training(train, None, images_snapshot(session), frozenset({"img"}))
    assert again.added == ("img",) and again.aside is not None
    assert len(list((sample / "masks" / "lymphocyte").iterdir())) == 3
    session.classes = ClassSet.from_names(["a/b", "c"])
    session.add_prediction("slash", image_path, two_class_prediction())
    session.set_class("slash", [1], 1)
    with pytest.raises(InputError, match="cannot be a folder name"):
        add_to_training(tmp_path / "t2", None, [images_snapshot(session)[-1]])


def test_ground_truth_nuclei_are_coloured_and_named_by_class(tmp_path):
    from class_helpers import class_image, write_dsb_classes

    from napari_nuclei.core.convert import iter_conversion
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.session.data import classes_line, ground_truth_layers

    dataset = open_dataset(write_dsb_classes(tmp_path / "dsb", count=1))
    (_, _, _), (labels, kwargs, kind) = ground_truth_layers(dataset.records[0],
                                                            dataset.classes)
    assert kind == "labels"
    _, truth, names = class_image(0)
    features = kwargs["features"]
    for value, name in zip(features["index"], features["class"], strict=True):
        ys, xs = np.nonzero(labels == value)
        assert names[int(truth[ys[0], xs[0]])] == name
        colour = dataset.classes.classes[dataset.classes.index_of_name(name)].color
        np.testing.assert_allclose(kwargs["colormap"][value][:3], np.array(colour) / 255)
    assert kwargs["colormap"][0][3] == 0  # the background stays transparent
    counts = {n: list(names.values()).count(n) for n in ("lymphocyte", "tumor")}
    assert classes_line(drain(iter_conversion(dataset)).coco) == (
        f"2 nucleus classes: lymphocyte {counts['lymphocyte']}, tumor {counts['tumor']}")
    # One class: the layers as they always were.
    assert classes_line({"categories": [{"id": 1, "name": "nucleus"}]}) is None


def test_classed_and_plain_masks_never_mix_in_one_training_folder(dsb_root, tmp_path):
    from napari_nuclei.session.training_set import added_message

    image_path = write_png(tmp_path / "images" / "new.png", np.zeros(SHAPE, np.uint8))
    session = Session()
    session.classes = CLASSES
    session.add_prediction("new", image_path, two_class_prediction())
    session.set_class("new", [1], 1)
    train = dsb_root / "train"  # plain masks/*.png
    added = add_to_training(train, None, images_snapshot(session))
    assert added.added == () and added.other_layout == ("new",)
    assert "cannot mix" in added_message(added) and not (train / "new").exists()
    open_dataset(train)  # still a data set


def test_scoring_against_ground_truth_of_other_classes_is_refused_in_one_line(tmp_path):
    from napari_nuclei.session.handin import evaluate_test_folder

    folder = tmp_path / "test"
    write_png(folder / "img.png", np.zeros(SHAPE, np.uint8))
    (folder / "test_img_ids.json").write_text(json.dumps(
        [{"id": 4, "file_name": "img.png", "height": SHAPE[0], "width": SHAPE[1]}]))
    session = two_class_session(tmp_path)
    from napari_nuclei.core.rle import encode_box_mask

    square = encode_box_mask(np.ones((6, 6), bool), 5, 2, *SHAPE)
    truth = {"images": [{"id": 4, "file_name": "img.png", "height": SHAPE[0],
                         "width": SHAPE[1]}],
             "annotations": [{"id": 1, "image_id": 4, "category_id": 1,
                              "segmentation": square}],
             "categories": [{"id": 1, "name": "dead"}, {"id": 2, "name": "stroma"}]}
    (tmp_path / "gt.json").write_text(json.dumps(truth))
    with pytest.raises(InputError, match=r"gt.json: its classes \(dead, stroma\) are not the "
                       r"model's \(lymphocyte, tumor\)"):
        evaluate_test_folder(folder, tmp_path / "gt.json", images_snapshot(session))
    truth["categories"] = [{"id": 1, "name": "lymphocyte"}, {"id": 2, "name": "tumor"}]
    (tmp_path / "gt.json").write_text(json.dumps(truth))
    scored = evaluate_test_folder(folder, tmp_path / "gt.json", images_snapshot(session))
    assert set(scored["overall"]["per_class"]) == {"lymphocyte", "tumor"}
    from napari_nuclei.session.handin import scores_text

    lines = scores_text(scored).splitlines()
    assert lines[0].startswith("AP ") and len(lines) == 4
    assert lines[1].startswith("lymphocyte: AP ") and lines[2].startswith("tumor: AP ")
    assert lines[3].startswith("mPQ ")
