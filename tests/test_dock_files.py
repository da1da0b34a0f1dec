"""Files the Data section writes, opened again: Save as COCO JSON starts in the dataset's
folder, and a COCO JSON that cannot be opened says why, in one line."""

import json

import notification_helpers
import pytest
from test_dock_journeys import make_dock

pytestmark = pytest.mark.gui
notifications = notification_helpers.notifications


def test_coco_json_is_offered_beside_its_images_and_opens_again(
        make_napari_viewer, qtbot, tmp_path, monkeypatch, dsb_root, notifications):
    from qtpy.QtWidgets import QFileDialog

    monkeypatch.chdir(tmp_path)  # napari started from elsewhere than the data
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, tmp_path / "run",
                               train_dir=dsb_root)
    data = widget.data_tab
    data.check_button.click()
    qtbot.waitUntil(lambda: data.save_button.isEnabled(), timeout=60_000)
    offered = []

    def save_dialog(_parent, _title, start, _pattern):
        offered.append(start)
        return start, "JSON (*.json)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    data.save_button.click()
    assert offered == [str(dsb_root / "annotations.json")]
    qtbot.waitUntil(lambda: data.summary.text().startswith("Saved"))
    # The gray, RGBA and 16-bit training images open again, with their nuclei.
    layers = viewer.open(str(dsb_root / "annotations.json"), plugin="napari-nuclei")
    assert {layer.name for layer in layers} >= {"a_img", "b_img", "c_img"}
    assert not notifications


def test_a_coco_json_saved_away_from_its_images_says_why_it_does_not_open(
        make_napari_viewer, tmp_path, dsb_root, notifications):
    from napari_nuclei.core.convert import iter_conversion
    from napari_nuclei.core.dataset import open_dataset
    from napari_nuclei.core.jobs import drain

    coco = drain(iter_conversion(open_dataset(dsb_root))).coco
    away = tmp_path / "elsewhere" / "annotations.json"
    away.parent.mkdir()
    away.write_text(json.dumps(coco))
    viewer = make_napari_viewer()
    assert viewer.open(str(away), plugin="napari-nuclei") == []  # no error of napari's
    assert len(notifications) == 1
    (line,) = notifications
    assert line.startswith(f"Not opened: {away}: image ")
    assert f"not found under {away.parent}" in line


def test_the_coco_json_target_falls_back_to_the_output_folder_then_home(tmp_path):
    from pathlib import Path

    from napari_nuclei.session.data import coco_json_target

    out = tmp_path / "session"
    out.mkdir()
    assert coco_json_target(tmp_path / "gone", out) == out / "annotations.json"
    assert coco_json_target(None, None) == Path.home() / "annotations.json"
