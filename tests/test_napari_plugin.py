"""The plugin as napari sees it: manifest, sample data, reader and writers in a viewer."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from npe2 import PluginManager

from conftest import SAMPLE_DATA
from napari_nuclei.core import rle

pytestmark = __import__("pytest").mark.gui


def test_manifest_validates():
    npe2 = Path(sys.executable).parent / "npe2"
    result = subprocess.run([str(npe2), "validate", "napari-nuclei"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_viewer_finds_the_contributions(make_napari_viewer):
    make_napari_viewer()
    manager = PluginManager.instance()
    assert "napari-nuclei" in {m.name for m in manager.iter_manifests()}
    contributions = manager.get_manifest("napari-nuclei").contributions
    assert all(c.id.startswith("napari-nuclei.") for c in contributions.commands)
    assert {s.key for s in contributions.sample_data} == {"fluorescence", "he_tile"}
    assert len(contributions.readers) == 1 and len(contributions.writers) == 2


def test_open_sample_adds_image_and_nuclei(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-nuclei", "fluorescence")
    assert [layer.name for layer in viewer.layers] == ["fluo_r0c0", "fluo_r0c0 nuclei"]
    nuclei = viewer.layers["fluo_r0c0 nuclei"]
    assert type(nuclei).__name__ == "Labels"
    assert len(np.unique(nuclei.data)) - 1 == 35
    viewer.open_sample("napari-nuclei", "he_tile")
    assert viewer.layers["he_tile_1000"].rgb and viewer.layers["he_tile_1000"].data.shape == (
        1000, 1000, 3)


def test_reader_opens_coco_json_and_dataset_folders_through_its_function(
        make_napari_viewer, tmp_path):
    import shutil

    from napari_nuclei._reader import get_reader
    from napari_nuclei.core.convert import convert_dataset
    from napari_nuclei.core.dataset import open_dataset

    viewer = make_napari_viewer()
    shutil.copytree(SAMPLE_DATA / "train", tmp_path / "train")
    coco = tmp_path / "annotations.json"
    convert_dataset(open_dataset(tmp_path), coco)
    # Only this plugin reads JSON: napari opens it without asking.
    viewer.open(str(coco), plugin=None)
    assert viewer.layers["fluo_r1c0 nuclei"].data.max() == 40
    # Folders in a dataset layout are read by the reader function (the dock uses it).
    layers = get_reader(str(SAMPLE_DATA / "train"))(str(SAMPLE_DATA / "train"))
    assert len(layers) == 6
    assert get_reader(str(SAMPLE_DATA / "test" / "test_img_ids.json")) is not None


def test_plain_images_and_folders_open_with_napari_without_a_reader_choice(
        make_napari_viewer, tmp_path):
    import cv2

    from napari_nuclei._reader import get_reader

    folder = tmp_path / "plain"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), np.full((20, 30), 7, np.uint8))
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((20, 30), np.uint16))
    viewer = make_napari_viewer()
    # With plugin=None napari chooses as File ▸ Open does, and raises
    # MultipleReaderError where the GUI would show its "Choose reader" dialog.
    for path in (folder / "a.png", tmp_path / "one.tif"):
        added = viewer.open(str(path), plugin=None)
        assert added and added[0].data.shape[-2:] == (20, 30)
    # Other installed plugins may also offer to read folders; this one does not.
    manager = PluginManager.instance()
    for path in (folder, folder / "a.png", tmp_path / "one.tif"):
        offered = {r.plugin_name for r in manager.iter_compatible_readers([str(path)])}
        assert "napari" in offered and "napari-nuclei" not in offered
    assert viewer.open(str(folder), plugin="napari")[0].data.shape == (2, 20, 30)
    assert get_reader(str(folder)) is None
    assert get_reader(str(folder / "a.png")) is None


def test_writers_save_labels_as_coco_and_tiff(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-nuclei", "fluorescence")
    nuclei = viewer.layers["fluo_r0c0 nuclei"]
    nuclei.save(str(tmp_path / "nuclei.json"), plugin="napari-nuclei")
    coco = json.loads((tmp_path / "nuclei.json").read_text())
    assert coco["images"][0]["file_name"] == "fluo_r0c0.png"
    assert len(coco["annotations"]) == 35
    first = coco["annotations"][0]
    np.testing.assert_array_equal(rle.decode(first["segmentation"]), nuclei.data == 1)
    nuclei.save(str(tmp_path / "nuclei.tif"), plugin="napari-nuclei")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "nuclei.tif"), nuclei.data)
