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


def test_reader_opens_a_dsb_folder(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open(str(SAMPLE_DATA / "train"), plugin="napari-nuclei")
    assert len(viewer.layers) == 6
    assert viewer.layers["fluo_r1c0 nuclei"].data.max() == 40


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
