import json

import cv2
import numpy as np
import pytest
import tifffile
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from conftest import SAMPLE_DATA, disk, write_dsb_sample, write_png
from napari_nuclei.core import rle
from napari_nuclei.core.convert import convert_dataset, iter_conversion
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.image_io import read_mask
from napari_nuclei.core.jobs import drain


def assert_every_mask_round_trips(dataset, coco):
    """Decoding each annotation gives back exactly the pixels of its mask file."""
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    checked = 0
    for record in dataset.records:
        anns = by_image.get(record.image_id, [])
        masks = [read_mask(p) for p in record.mask_paths]
        masks = [m for m in masks if m.any()]
        assert len(anns) == len(masks)
        for ann, mask in zip(anns, masks, strict=True):
            np.testing.assert_array_equal(rle.decode(ann["segmentation"]), mask)
            assert ann["area"] == mask.sum()
            ys, xs = np.nonzero(mask)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            checked += 1
    return checked


def test_dsb_conversion_round_trips_every_mask(dsb_root, tmp_path):
    dataset = open_dataset(dsb_root)
    conversion = convert_dataset(dataset, tmp_path / "out.json")
    coco = json.loads((tmp_path / "out.json").read_text())
    assert coco == json.loads(json.dumps(conversion.coco))
    assert [im["file_name"] for im in coco["images"]] == [
        "train/a_img/images/a_img.png", "train/b_img/images/b_img.png",
        "train/c_img/images/c_img.png"]
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 16))
    assert coco["categories"] == [{"id": 1, "name": "nucleus"}]
    assert all(isinstance(a["segmentation"]["counts"], str) and a["iscrowd"] == 0
               and a["category_id"] == 1 for a in coco["annotations"])
    assert assert_every_mask_round_trips(dataset, coco) == 15


def test_sample_data_round_trips_every_mask(tmp_path):
    dataset = open_dataset(SAMPLE_DATA)
    conversion = convert_dataset(dataset, tmp_path / "sample.json")
    assert conversion.n_images == 3
    assert assert_every_mask_round_trips(dataset, conversion.coco) == 108


def test_overlapping_masks_are_kept_whole_and_counted(tmp_path):
    shape = (40, 40)
    a, b, c = disk(shape, (15, 15), 8), disk(shape, (20, 20), 8), disk(shape, (35, 35), 3)
    write_dsb_sample(tmp_path / "train", "s", np.zeros(shape, np.uint8), [a, b, c])
    dataset = open_dataset(tmp_path)
    conversion = drain(iter_conversion(dataset))
    assert conversion.overlapping == 1
    assert any("1 mask(s) overlap" in line for line in conversion.warning_lines())
    decoded = [rle.decode(ann["segmentation"]) for ann in conversion.coco["annotations"]]
    for got, want in zip(decoded, [a, b, c], strict=True):
        np.testing.assert_array_equal(got, want)


def test_empty_mask_is_skipped_with_a_warning(tmp_path):
    shape = (20, 20)
    sample = write_dsb_sample(tmp_path / "train", "s", np.zeros(shape, np.uint8),
                              [disk(shape, (5, 5), 3), np.zeros(shape, bool)])
    conversion = drain(iter_conversion(open_dataset(tmp_path)))
    assert conversion.n_annotations == 1
    assert conversion.empty_files == [str(sample / "masks" / "m002.png")]
    assert "1 empty mask(s) skipped" in conversion.warning_lines()[0]


def test_parallel_conversion_equals_serial(dsb_root):
    dataset = open_dataset(dsb_root)
    serial = drain(iter_conversion(dataset, workers=1))
    parallel = drain(iter_conversion(dataset, workers=2))
    assert serial.coco == parallel.coco


def test_progress_reports_each_image(dsb_root):
    reports = []
    drain(iter_conversion(open_dataset(dsb_root)), reports.append)
    assert [(r.done, r.total, r.item) for r in reports] == [
        (1, 3, "a_img"), (2, 3, "b_img"), (3, 3, "c_img")]


def test_label_layout_conversion(tmp_path):
    labels = np.zeros((30, 30), np.int32)
    labels[2:8, 2:9] = 5
    labels[10:20, 12:25] = 2
    write_png(tmp_path / "a.png", np.zeros((30, 30, 3), np.uint8))
    tifffile.imwrite(tmp_path / "a_labels.tif", labels)
    coco = drain(iter_conversion(open_dataset(tmp_path))).coco
    decoded = [rle.decode(a["segmentation"]) for a in coco["annotations"]]
    np.testing.assert_array_equal(decoded[0], labels == 2)
    np.testing.assert_array_equal(decoded[1], labels == 5)


def test_coco_layout_reencodes_polygons_and_keeps_rle(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((20, 20), np.uint8))
    mask = disk((20, 20), (10, 10), 4)
    coco_in = {
        "images": [{"id": 9, "file_name": "a.png", "height": 20, "width": 20}],
        "annotations": [
            {"id": 1, "image_id": 9, "segmentation": rle.encode_mask(mask)},
            {"id": 2, "image_id": 9, "segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]]},
        ],
        "categories": [{"id": 1, "name": "nucleus"}],
    }
    (tmp_path / "in.json").write_text(json.dumps(coco_in))
    coco = drain(iter_conversion(open_dataset(tmp_path / "in.json"))).coco
    np.testing.assert_array_equal(rle.decode(coco["annotations"][0]["segmentation"]), mask)
    assert coco["annotations"][1]["bbox"][:2] == [1, 1]
    assert coco["images"][0]["id"] == 9


def test_output_loads_in_pycocotools_and_scores_itself_perfectly(dsb_root, tmp_path):
    out = tmp_path / "gt.json"
    convert_dataset(open_dataset(dsb_root), out)
    gt = COCO(str(out))
    assert len(gt.getImgIds()) == 3 and len(gt.getAnnIds()) == 15
    results = [dict(a, score=1.0) for a in json.loads(out.read_text())["annotations"]]
    dt = gt.loadRes(results)
    evaluator = COCOeval(gt, dt, "segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def test_mask_size_mismatch_is_an_error(tmp_path):
    sample = write_dsb_sample(tmp_path / "train", "s", np.zeros((20, 20), np.uint8),
                              [disk((20, 20), (5, 5), 3)])
    cv2.imwrite(str(sample / "masks" / "m002.png"), np.full((20, 21), 255, np.uint8))
    from napari_nuclei.core.errors import DatasetError
    with pytest.raises(DatasetError, match=r"size 20x21 differs from its image s.png \(20x20\)"):
        convert_dataset(open_dataset(tmp_path), tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()
