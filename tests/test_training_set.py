"""Corrected images added to the training set never delete what the user made (no Qt)."""

import numpy as np
import pytest

from conftest import write_png
from napari_nuclei.core.corrections import (
    REPLACED_FOLDER,
    SamplePlan,
    add_to_training_set,
    plan_sample,
)
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.session import Session
from napari_nuclei.session.handin import images_snapshot
from napari_nuclei.session.training_set import add_to_training, record_added, training_plan


def labels_with(n, shape=(64, 80)):
    labels = np.zeros(shape, np.int32)
    for value in range(1, n + 1):
        labels[4 * value : 4 * value + 3, 2:6] = value
    return labels


def masks_of(sample):
    return {p.name: p.read_bytes() for p in (sample / "masks").iterdir()}


def test_a_sample_is_replaced_only_when_it_holds_the_same_image(dsb_root, tmp_path):
    train = dsb_root / "train"
    own = train / "b_img" / "images" / "b_img.png"
    assert plan_sample(train, "b_img", own) == SamplePlan("b_img", 6)
    copy = tmp_path / "copy" / "b_img.png"
    copy.parent.mkdir()
    copy.write_bytes(own.read_bytes())
    assert plan_sample(train, "b_img", copy) == SamplePlan("b_img", 6)
    other = write_png(tmp_path / "other" / "b_img.png", np.zeros((64, 80), np.uint8))
    assert plan_sample(train, "b_img", other) == SamplePlan("b_img_corrected_1")
    add_to_training_set(train, "b_img_corrected_1", other, labels_with(2))
    assert plan_sample(train, "b_img", other) == SamplePlan("b_img_corrected_1", 2)
    assert plan_sample(train, "new", other) == SamplePlan("new")


def test_a_sample_replaced_is_moved_aside_whole(dsb_root):
    train = dsb_root / "train"
    image = train / "b_img" / "images" / "b_img.png"
    hand_made = masks_of(train / "b_img")
    with pytest.raises(InputError, match="already in the training set"):
        add_to_training_set(train, "b_img", image, labels_with(3))
    assert masks_of(train / "b_img") == hand_made
    add_to_training_set(train, "b_img", image, labels_with(3), replace=True, when="t1")
    assert masks_of(train / REPLACED_FOLDER / "t1" / "b_img") == hand_made
    assert len(masks_of(train / "b_img")) == 3
    # Replaced twice within a second: the earlier one keeps its place.
    add_to_training_set(train, "b_img", image, labels_with(4), replace=True, when="t1")
    assert masks_of(train / REPLACED_FOLDER / "t1" / "b_img") == hand_made
    assert len(masks_of(train / REPLACED_FOLDER / "t1" / "b_img-2")) == 3
    assert [r.name for r in open_dataset(dsb_root).records] == ["a_img", "b_img", "c_img"]


def test_the_session_plans_asks_for_replacements_and_leaves_added_corrections_alone(
        dsb_root, tmp_path):
    train = dsb_root / "train"
    test_dir = tmp_path / "test"
    paths = {"b_img": train / "b_img" / "images" / "b_img.png",
             "fresh": write_png(tmp_path / "fresh.png", np.zeros((64, 80), np.uint8)),
             "t": write_png(test_dir / "t.png", np.zeros((64, 80), np.uint8)),
             "layer": None, "untouched": tmp_path / "fresh.png"}
    session = Session(output_dir=tmp_path / "out")
    prediction = Prediction(64, 80, np.array([0.9], np.float32),
                            [(40, 40, np.ones((5, 5), bool))])
    for name, path in paths.items():
        session.add_prediction(name, path, prediction)
        if name != "untouched":
            session.images[name].labels[0:3, 0:3] = 9
            session.labels_painted(name, [(slice(0, 3), slice(0, 3))])
    plan = training_plan(dsb_root, test_dir, images_snapshot(session))
    assert plan.folder == train and plan.new == (("fresh", "fresh"),)
    assert [(r.image, r.sample, r.masks, r.nuclei) for r in plan.replaced] == [
        ("b_img", "b_img", 6, 2)]
    assert plan.tests == ("t",) and plan.no_file == ("layer",)
    hand_made = masks_of(train / "b_img")
    added = add_to_training(dsb_root, test_dir, images_snapshot(session))
    assert added.added == ("fresh",) and added.kept == ("b_img",) and added.aside is None
    assert masks_of(train / "b_img") == hand_made
    record_added(session, added)
    again = add_to_training(dsb_root, test_dir, images_snapshot(session), frozenset({"b_img"}))
    assert again.unchanged == ("fresh",) and again.added == ("b_img",)
    assert masks_of(again.aside / "b_img") == hand_made


def test_a_sample_added_has_the_mode_of_a_folder_made_there(dsb_root, tmp_path):
    """Readable by whoever shares the training set, as the samples beside it are."""
    train = dsb_root / "train"
    probe = train / "probe"
    probe.mkdir()  # what the umask gives a folder made here
    mode = probe.stat().st_mode & 0o777
    other = write_png(tmp_path / "other" / "new.png", np.zeros((64, 80), np.uint8))
    add_to_training_set(train, "new", other, labels_with(2))
    assert (train / "new").stat().st_mode & 0o777 == mode
    add_to_training_set(train, "new", other, labels_with(3), replace=True, when="t1")
    assert (train / "new").stat().st_mode & 0o777 == mode
    assert (train / REPLACED_FOLDER / "t1" / "new").stat().st_mode & 0o777 == mode
