"""The dock tells each problem once, in one truthful line, and never leaves a hint saying
work is under way when it is not. Journeys in a real viewer; predictions and training by
stand-ins in the child process."""

import shutil

import notification_helpers
import numpy as np
import pytest
import test_dock_journeys as journeys
from test_dock_journeys import choose, make_dock, predict_folder

pytestmark = pytest.mark.gui
notifications = notification_helpers.notifications
fake_model = journeys.fake_model
mixed_test_folder = journeys.mixed_test_folder


def test_a_missing_training_folder_is_told_once_and_check_says_it_in_the_summary(
        make_napari_viewer, qtbot, tmp_path, notifications):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, tmp_path / "run")
    data = widget.data_tab
    missing = tmp_path / "missing"
    data.train_field.set_text(str(missing))  # typed in
    assert widget.session.train_dir == missing
    data.check_button.click()
    data.check_button.click()
    assert notifications == [f"{missing}: no such file or folder"]
    assert data.summary.text() == f"{missing}: no such file or folder"
    # Chosen again (after another folder), it is told again: it may be new to the user.
    data.train_field.set_text(str(tmp_path))
    data.train_field.set_text(str(missing))
    assert notifications[-1] == f"{missing}: no such file or folder"


def reopened_after(change, make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model,
                   test_folder, notifications):
    """Predict the test folder, quit, ``change()`` the disk, then *Open session…* in a
    new window: its viewer and dock, the notifications cleared before the opening."""
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model, test_folder)
    predict_folder(qtbot, widget)
    viewer.close()  # saves the session
    change()
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *_a, **_k: str(tmp_path / "session"))
    notifications.clear()
    with qtbot.waitSignal(widget.data_tab.session_read, timeout=60_000):
        widget.data_tab.open_session_button.click()
    return viewer, widget


def test_a_session_whose_data_folder_is_gone_opens_with_one_line_about_it(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model, mixed_test_folder,
        notifications):
    viewer, widget = reopened_after(
        lambda: shutil.rmtree(mixed_test_folder), make_napari_viewer, qtbot, tmp_path,
        monkeypatch, fake_model, mixed_test_folder, notifications)
    assert "3 predicted image(s)" in widget.data_tab.summary.text()
    assert widget.session.test_dir == mixed_test_folder
    # Every image shown: the missing pixels of each are not told again, one by one.
    for name in ("gray", "rgb", "deep", "gray"):
        choose_row(qtbot, widget, name)
    layers = widget.predict_tab.layers
    qtbot.waitUntil(lambda: layers.pixels._reading is None)
    assert notifications == [f"{mixed_test_folder}: no such file or folder"]


def test_a_moved_test_folder_chosen_at_its_new_place_shows_the_images_again(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, fake_model, mixed_test_folder,
        notifications):
    """Quit, move the test folder, Open session…: one line says it is gone; choosing
    its new place shows each image's pixels and the session is saved with them."""
    import json

    moved = tmp_path / "moved"
    viewer, widget = reopened_after(
        lambda: shutil.move(mixed_test_folder, moved), make_napari_viewer, qtbot,
        tmp_path, monkeypatch, fake_model, mixed_test_folder, notifications)
    layers = widget.predict_tab.layers
    qtbot.waitUntil(lambda: layers.current is not None and not layers.pixels.reading)
    assert notifications == [f"{mixed_test_folder}: no such file or folder"]
    shown = layers.current
    widget.data_tab.test_field.set_text(str(moved))  # typed in, as a chosen folder is
    qtbot.waitUntil(lambda: shown in layers.pixels, timeout=30_000)
    assert layers.image_layer.visible and layers.image_layer.name == shown
    assert layers.image_layer.metadata["source_file"] == str(moved / f"{shown}.png")
    for name in ("gray", "rgb", "deep"):
        choose_row(qtbot, widget, name)
        qtbot.waitUntil(lambda name=name: name in layers.pixels, timeout=30_000)
        assert layers.image_layer.data.shape[:2] == layers.labels_layer.data.shape
    assert notifications[1:] == [f"3 image(s) of this session found again in {moved}, "
                                 "the folder's new place"]
    wanted = sorted(str(moved / f"{n}.png") for n in ("gray", "rgb", "deep"))

    def saved_paths():
        document = json.loads((tmp_path / "session" / "session.json").read_text())
        return sorted(entry["image_path"] for entry in document["images"])

    viewer.close()  # the save begins in a worker
    qtbot.waitUntil(lambda: saved_paths() == wanted, timeout=10_000)


def choose_row(qtbot, widget, name):
    """Click an image in the list of predicted images (its pixels may be gone)."""
    predict = widget.predict_tab
    rows = [predict.images.item(i).text().split(" · ")[0] for i in range(predict.images.count())]
    predict.images.setCurrentRow(rows.index(name))
    qtbot.waitUntil(lambda: predict.layers.current == name)


def test_corrections_of_test_images_alone_are_not_added_and_the_hint_says_so(
        make_napari_viewer, qtbot, tmp_path, fake_model, mixed_test_folder, dsb_root):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder, dsb_root)
    predict = widget.predict_tab
    predict.add_button.click()
    qtbot.waitUntil(lambda: predict.hint.text().startswith("No corrected image"))
    predict_folder(qtbot, widget)
    choose(qtbot, widget, "deep")  # the 16-bit test image
    predict.layers.labels_layer.paint((30, 30), 60)
    qtbot.waitUntil(lambda: widget.session.images["deep"].edited)
    predict.add_button.click()
    qtbot.waitUntil(lambda: predict.hint.text().startswith("Nothing added"))
    assert predict.hint.text() == (
        "Nothing added to the training set: test images are never added (training on "
        "them would leak the test set): deep.")
    assert "No corrected image" not in predict.hint.text()


def start_training(qtbot, widget, tmp_path, target, device="cpu"):
    train = widget.train_tab
    train.train_target = target
    train.form.preset.value = "tiny"
    train.form.weights.value = "none (from scratch)"
    train.form.device.value = device
    train.form.output.set_text(str(tmp_path / "run"), emit=False)
    train.start_button.click()
    return train


def test_cuda_without_a_gpu_says_nothing_was_trained_and_leaves_no_run_folder(
        make_napari_viewer, qtbot, tmp_path, dsb_root, notifications):
    pytest.importorskip("detectron2")
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, tmp_path / "run",
                               train_dir=dsb_root)
    train = start_training(qtbot, widget, tmp_path,
                           "train_jobs_for_child:train_without_a_gpu", device="cuda")
    qtbot.waitUntil(lambda: "ended with an error" in train.status.text(), timeout=300_000)
    qtbot.waitUntil(lambda: not train.worker.is_running)
    status = train.status.text()
    assert "torch sees no CUDA GPU" in status
    assert "can be resumed" not in status and "Resume" not in status
    assert "nothing was trained" in status
    assert not (tmp_path / "run").exists()
    assert len(notifications) == 1 and "torch sees no CUDA GPU" in notifications[0]

    # In a folder the user made, only what the start wrote goes; theirs stays.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    train.start_button.click()
    assert train.status.text() == "Starting the training process…"
    qtbot.waitUntil(lambda: "ended with an error" in train.status.text(), timeout=300_000)
    qtbot.waitUntil(lambda: not train.worker.is_running)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]


def test_the_checkpoint_list_fills_as_checkpoints_are_written(
        make_napari_viewer, qtbot, tmp_path, dsb_root):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, tmp_path / "run",
                               train_dir=dsb_root)
    train = start_training(qtbot, widget, tmp_path,
                           "train_jobs_for_child:train_with_checkpoints")
    qtbot.waitUntil(lambda: train.checkpoints.count() == 2, timeout=120_000)
    assert train.training  # still running: listed as written, not when the run ends
    assert [train.checkpoints.item(i).text() for i in range(2)] == [
        "model_0000001.pth", "model_0000003.pth"]
    assert len(train.plot.reports) == 4
    train.stop_button.click()
    qtbot.waitUntil(lambda: train.result is not None, timeout=120_000)
    assert train.checkpoints.count() == 2
    assert train.status.text().startswith("Stopped at iteration 4 of 100")


def test_a_slide_that_cannot_be_opened_resets_the_hint_and_is_told_once(
        make_napari_viewer, qtbot, tmp_path, notifications):
    from napari_nuclei._qt.dock import NucleiDock

    broken = tmp_path / "case_02.svs"
    broken.write_bytes(b"not a slide at all" * 100)
    dock = NucleiDock(make_napari_viewer())
    section = dock.slide_section
    section.open_slide(broken)
    assert section.hint.text() == "Opening case_02.svs…"
    qtbot.waitUntil(lambda: not section.hint.text().startswith("Opening"), timeout=30_000)
    assert section.hint.text().startswith("Not opened: ")
    assert str(broken) in section.hint.text()
    assert section.state.slide is None
    assert len(notifications) == 1 and str(broken) in notifications[0]


def test_notices_say_each_problem_once_until_it_is_chosen_again(tmp_path):
    from napari_nuclei.session.notices import Notices

    notices, said = Notices(), []
    notices.said.connect(lambda level, line: said.append((level, line)))
    folder = tmp_path / "data"
    assert notices.error(f"{folder}: no such file or folder", about=folder)
    assert not notices.error(f"{folder}: no such file or folder", about=folder)
    assert not notices.error(f"{folder / 'a.png'}: file not found", about=folder / "a.png")
    assert notices.error(f"{tmp_path / 'b.png'}: file not found", about=tmp_path / "b.png")
    notices.forget(folder)
    assert notices.warning("again", about=folder / "a.png")
    assert notices.error("a line about nothing in particular")
    assert not notices.error("a line  about nothing in particular")
    assert [level for level, _ in said] == ["error", "error", "warning", "error"]
    assert np.all([line for _, line in said])
