"""A session restored, but not as it was saved, says so: one line per cause, naming the
file, with the nuclei kept (a run folder gone, an image that is not one, a table lost)."""

import json
import shutil

import numpy as np
import pytest
import test_session_classes as with_classes

from conftest import write_png
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.session import Session, actions
from napari_nuclei.session.restore import MAX_NAMED_PROBLEMS, restore_session


def make_prediction():
    crops = [(2, 2, np.ones((8, 8), bool)), (20, 20, np.ones((10, 10), bool))]
    return Prediction(64, 64, np.array([0.95, 0.9], np.float32), crops)


@pytest.fixture
def saved(tmp_path):
    """A session of one corrected image, its image in a test folder, from a run of one
    class: ``(output folder, the labels saved)``."""
    test_dir = tmp_path / "test"
    write_png(test_dir / "img.png", np.zeros((64, 64), np.uint8))
    run = tmp_path / "run"
    run.mkdir()
    (run / "settings.json").write_text("{}")
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    session.test_dir, session.run_dir = test_dir, run
    session.add_prediction("img", test_dir / "img.png", make_prediction())
    image = session.images["img"]
    image.labels[image.labels == 1] = 0
    session.labels_painted("img", [(slice(2, 10), slice(2, 10))])
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    return tmp_path / "out", image.labels.copy()


def restored_saying(folder):
    session = Session()
    said = []
    session.notices.said.connect(lambda level, line: said.append((level, line)))
    problems = restore_session(session, folder)
    return session, problems, said


def edit_document(folder, change):
    path = folder / "session.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def gone_run(folder, tmp_path):
    shutil.rmtree(tmp_path / "run")
    return tmp_path / "run"


def damaged_run(folder, tmp_path):
    (tmp_path / "run" / "settings.json").write_text('{"score_thresh_test": 7}')
    return tmp_path / "run" / "settings.json"


def text_as_image(folder, tmp_path):
    (tmp_path / "test" / "img.png").write_text("not an image\n")
    return tmp_path / "test" / "img.png"


def system_file_as_image(folder, tmp_path):
    edit_document(folder, lambda d: d["images"][0].update(image_path="/etc/passwd"))
    return "/etc/passwd"


def gone_image(folder, tmp_path):
    (tmp_path / "test" / "img.png").unlink()
    return tmp_path / "test" / "img.png"


def gone_table(folder, tmp_path):
    (folder / "corrected" / "img.csv").unlink()
    return folder / "corrected" / "img.csv"


def gone_test_folder(folder, tmp_path):
    shutil.rmtree(tmp_path / "test")
    return tmp_path / "test"


@pytest.mark.parametrize("damage, words", [
    (gone_run, "not there"), (damaged_run, "score_thresh_test"),
    (text_as_image, "not a PNG file"), (system_file_as_image, "unreadable image"),
    (gone_image, "not there"), (gone_table, "is missing"),
    (gone_test_folder, "not there"),
])
def test_a_damage_is_said_in_one_line_naming_the_file_and_the_nuclei_are_kept(
        saved, tmp_path, damage, words):
    folder, labels = saved
    named = damage(folder, tmp_path)
    session, problems, said = restored_saying(folder)
    assert problems == []
    np.testing.assert_array_equal(session.images["img"].labels, labels)
    [(level, line)] = said  # the test folder gone: not once more for the image in it
    assert level == "warning" and "\n" not in line
    assert str(named) in line and words in line


@pytest.mark.parametrize("damage", [text_as_image, system_file_as_image])
def test_a_file_that_is_not_an_image_is_no_longer_the_images(saved, tmp_path, damage):
    """Nothing shows it or adds it to a training set as the image; the next save says so."""
    folder, _ = saved
    damage(folder, tmp_path)
    session, _, _ = restored_saying(folder)
    assert session.images["img"].image_path is None
    session.labels_painted("img", [(slice(30, 31), slice(30, 31))])
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    entry = json.loads((folder / "session.json").read_text())["images"][0]
    assert entry["image_path"] is None


def test_an_image_that_is_not_there_keeps_its_path(saved, tmp_path):
    """Its folder may come back (a drive not mounted), so the path stays the session's."""
    folder, _ = saved
    gone_image(folder, tmp_path)
    session, _, _ = restored_saying(folder)
    assert session.images["img"].image_path == tmp_path / "test" / "img.png"


def test_a_run_folder_not_made_yet_is_not_a_damage_of_a_session_without_predictions(
        tmp_path):
    session = Session(output_dir=tmp_path / "out")
    session.run_dir = tmp_path / "new run"  # a training to come writes it
    actions.save_session(actions.session_snapshot(session))
    assert not (tmp_path / "new run").exists()
    _, problems, said = restored_saying(tmp_path / "out")
    assert problems == [] and said == []


def test_a_sound_session_restores_without_a_word(saved):
    folder, _ = saved
    _, problems, said = restored_saying(folder)
    assert problems == [] and said == []


def test_a_lost_class_table_says_the_classes_set_by_hand_are_lost(tmp_path):
    """With classes, the table is where the hand-set classes live: the line says what is
    lost, and the nuclei take their predicted classes as it says."""
    session = with_classes.two_class_session(tmp_path)
    classes = session.images["img"].nucleus_classes
    assert classes.name_of(1) == "lymphocyte"
    assert session.set_class("img", [1], 1) == 1 and classes.name_of(1) == "tumor"
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    table = session.corrected_folder() / "img.csv"
    table.unlink()
    again, problems, said = restored_saying(tmp_path / "session")
    assert problems == []
    [(_, line)] = said
    assert str(table) in line and "classes set by hand are lost" in line
    assert again.images["img"].nucleus_classes.name_of(1) == "lymphocyte"


def test_remarks_of_thousands_of_images_are_named_up_to_a_count(tmp_path):
    names = [f"img{i}" for i in range(MAX_NAMED_PROBLEMS + 5)]
    session = Session(output_dir=tmp_path / "out")
    for name in names:
        session.add_prediction(name, tmp_path / "gone" / f"{name}.png", make_prediction())
    actions.save_session(actions.session_snapshot(session))
    restored, problems, said = restored_saying(tmp_path / "out")
    assert problems == [] and sorted(restored.images) == sorted(names)
    assert len(said) == MAX_NAMED_PROBLEMS + 1 and said[-1][1] == "and 5 more remarks"


def test_choosing_a_moved_test_folder_finds_its_images_again_and_saves_them(saved,
                                                                           tmp_path):
    folder, labels = saved
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "test", moved)
    session, _, said = restored_saying(folder)
    assert len(said) == 1 and "not there" in said[0][1]
    found = []
    session.image_moved.connect(found.append)
    session.test_dir = moved
    image = session.images["img"]
    assert found == ["img"] and image.image_path == moved / "img.png"
    assert said[-1] == ("info", f"1 image(s) of this session found again in {moved}, the "
                                "folder's new place")
    assert session.needs_saving()
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    entry = json.loads((folder / "session.json").read_text())["images"][0]
    assert entry["image_path"] == str(moved / "img.png")
    again, problems, said_again = restored_saying(folder)
    assert problems == [] and said_again == []
    np.testing.assert_array_equal(again.images["img"].labels, labels)


def test_a_file_of_another_size_at_the_new_place_is_not_taken_for_the_image(saved,
                                                                           tmp_path):
    folder, _ = saved
    shutil.rmtree(tmp_path / "test")
    write_png(tmp_path / "elsewhere" / "img.png", np.zeros((32, 48), np.uint8))
    session, _, _ = restored_saying(folder)
    session.test_dir = tmp_path / "elsewhere"
    assert session.images["img"].image_path == tmp_path / "test" / "img.png"
    assert not session.needs_saving()
