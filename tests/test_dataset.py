import json

import numpy as np
import pytest
import tifffile

from conftest import write_png
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.errors import DatasetError


def test_dsb_root_and_train_folder_are_the_same_dataset(dsb_root):
    from_root = open_dataset(dsb_root)
    from_train = open_dataset(dsb_root / "train")
    assert from_root.layout == from_train.layout == "dsb"
    assert [r.name for r in from_root.records] == ["a_img", "b_img", "c_img"]
    assert [r.image_id for r in from_root.records] == [1, 2, 3]
    assert from_root.records[0].file_name == "train/a_img/images/a_img.png"
    assert from_train.records[0].file_name == "a_img/images/a_img.png"
    assert [len(r.mask_paths) for r in from_root.records] == [4, 6, 5]


def test_single_sample_folder(dsb_root):
    dataset = open_dataset(dsb_root / "train" / "b_img")
    assert dataset.layout == "dsb" and len(dataset) == 1
    assert dataset.records[0].name == "b_img"


def test_non_image_files_in_masks_are_ignored(dsb_root):
    masks = dsb_root / "train" / "a_img" / "masks"
    (masks / ".DS_Store").write_bytes(b"\x00\x01")
    (masks / "Thumbs.db").write_bytes(b"\x00\x01")
    (masks / "notes.txt").write_text("drawn by hand")
    (masks / "._m001.png").write_bytes(b"resource fork")
    dataset = open_dataset(dsb_root)
    assert len(dataset.records[0].mask_paths) == 4


def test_missing_images_folder(dsb_root):
    (dsb_root / "train" / "d_img" / "masks").mkdir(parents=True)
    with pytest.raises(DatasetError, match="missing images/ folder") as info:
        open_dataset(dsb_root)
    assert "d_img" in str(info.value)


def test_id_whose_image_file_is_missing(dsb_root):
    (dsb_root / "train" / "b_img" / "images" / "b_img.png").rename(
        dsb_root / "train" / "b_img" / "images" / "other.png"
    )
    with pytest.raises(DatasetError, match="image file missing") as info:
        open_dataset(dsb_root)
    assert "b_img.png" in str(info.value)


def test_test_folder_takes_ids_from_json(test_folder):
    dataset = open_dataset(test_folder)
    assert dataset.layout == "test"
    assert [(r.file_name, r.image_id, r.height, r.width) for r in dataset.records] == [
        ("x.png", 3, 30, 40),
        ("y.png", 7, 50, 20),
    ]
    assert open_dataset(test_folder / "test_img_ids.json").records == dataset.records


@pytest.mark.parametrize(
    "content,message",
    [
        ("[{'id': 1}", "not valid JSON"),
        ('{"id": 1}', "non-empty list"),
        ('[{"id": 1, "file_name": "x.png"}]', "lacks height, width"),
        ('[{"id": 1, "file_name": "x.png", "height": 30, "width": 40},'
         ' {"id": 1, "file_name": "y.png", "height": 50, "width": 20}]', "appears twice"),
        ('[{"id": 1, "file_name": "x.png", "height": 30, "width": 40},'
         ' {"id": 2, "file_name": "z.png", "height": 50, "width": 20}]', "lists z.png"),
        ('[{"id": 1, "file_name": "x.png", "height": 30, "width": 40}]', "does not list 1"),
    ],
)
def test_bad_test_ids(test_folder, content, message):
    (test_folder / "test_img_ids.json").write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        open_dataset(test_folder)
    assert "test_img_ids.json" in str(info.value)


def test_labels_beside_images(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((10, 10), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((10, 10), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.ones((10, 10), np.int32))
    write_png(tmp_path / "b_labels.png", np.ones((10, 10), np.uint16))
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "labels"
    assert [(r.name, r.label_path.name) for r in dataset.records] == [
        ("a", "a_labels.tif"),
        ("b", "b_labels.png"),
    ]


def test_labels_folder(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((10, 10), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((10, 10), np.uint8))
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "labels" / "a.tif", np.ones((10, 10), np.int32))
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "labels"
    assert dataset.records[0].label_path == tmp_path / "labels" / "a.tif"
    assert dataset.records[1].label_path is None
    assert any("b.png: no label image" in w for w in dataset.warnings)


def test_coco_json_with_image_root(tmp_path):
    write_png(tmp_path / "imgs" / "a.png", np.zeros((10, 12), np.uint8))
    coco = {
        "images": [{"id": 4, "file_name": "a.png", "height": 10, "width": 12}],
        "annotations": [{"id": 1, "image_id": 4, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}],
        "categories": [{"id": 1, "name": "nucleus"}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match="a.png not found"):
        open_dataset(tmp_path / "ann.json")
    dataset = open_dataset(tmp_path / "ann.json", image_root=tmp_path / "imgs")
    assert dataset.layout == "coco"
    assert dataset.records[0].image_id == 4 and len(dataset.records[0].annotations) == 1


def test_plain_image_folder_and_nothing(tmp_path):
    write_png(tmp_path / "imgs" / "a.png", np.zeros((10, 12), np.uint8))
    assert open_dataset(tmp_path / "imgs").layout == "images"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such file"):
        open_dataset(tmp_path / "missing")


@pytest.mark.parametrize("listed", [False, True])
def test_two_images_of_one_name_are_refused_naming_both(tmp_path, listed):
    """Outputs are named after each image: same.png and same.tif would write over each
    other's labels and be handed in as one image."""
    folder = tmp_path / "test"
    write_png(folder / "same.png", np.zeros((30, 40), np.uint8))
    tifffile.imwrite(folder / "same.tif", np.zeros((20, 20), np.uint8))
    if listed:
        (folder / "test_img_ids.json").write_text(json.dumps([
            {"id": 1, "file_name": "same.png", "height": 30, "width": 40},
            {"id": 2, "file_name": "same.tif", "height": 20, "width": 20}]))
    with pytest.raises(DatasetError) as raised:
        open_dataset(folder)
    assert str(raised.value) == (
        f"{folder}: holds two images named 'same' (same.png and same.tif): each image's "
        "outputs are named after it, so names must differ; rename one")


def test_predict_refuses_a_folder_of_two_images_of_one_name(tmp_path, capsys):
    from napari_nuclei.cli import main

    folder = tmp_path / "test"
    write_png(folder / "same.png", np.zeros((30, 40), np.uint8))
    tifffile.imwrite(folder / "same.tif", np.zeros((20, 20), np.uint8))
    labels = tmp_path / "labels"
    # The folder is refused before any model is looked for.
    assert main(["predict", "--model", str(tmp_path / "run"), "--images", str(folder),
                 "-o", str(tmp_path / "s.json"), "--labels-dir", str(labels)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"napari-nuclei: error: {folder}: holds two images named 'same' "
                   "(same.png and same.tif): each image's outputs are named after it, so "
                   "names must differ; rename one"]
    assert not labels.exists() and not (tmp_path / "s.json").exists()
