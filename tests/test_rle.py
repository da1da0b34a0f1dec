import numpy as np
import pytest
from pycocotools import mask as mask_utils

from napari_nuclei.core import rle
from napari_nuclei.core.coco import coco_to_labels, labels_to_coco
from napari_nuclei.core.labels import iter_label_rles, rles_to_labels


def reference(mask):
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return encoded["counts"].decode("ascii")


@pytest.mark.parametrize("seed", range(40))
def test_encode_matches_pycocotools_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 30, 2)
    mask = rng.random((height, width)) < rng.uniform(0.05, 0.95)
    encoded = rle.encode_mask(mask)
    if not mask.any():
        assert encoded is None
        return
    assert encoded["size"] == [height, width]
    assert encoded["counts"] == reference(mask)
    np.testing.assert_array_equal(rle.decode(encoded), mask)


@pytest.mark.parametrize(
    "box", [(0, 0, 5, 5), (3, 4, 8, 9), (0, 6, 3, 9), (5, 0, 8, 2), (0, 0, 8, 9), (7, 8, 8, 9)]
)
def test_masks_touching_frame_edges(box):
    mask = np.zeros((8, 9), bool)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = True
    assert rle.encode_mask(mask)["counts"] == reference(mask)
    assert rle.bbox(rle.encode_mask(mask)) == [left, top, right - left, bottom - top]
    assert rle.area(rle.encode_mask(mask)) == mask.sum()


def test_box_outside_frame_is_refused():
    with pytest.raises(ValueError, match="outside"):
        rle.encode_box_mask(np.ones((3, 3), bool), 6, 0, 8, 8)


def test_label_image_round_trip_with_gaps_in_ids():
    labels = np.zeros((40, 50), np.int32)
    labels[2:10, 3:9] = 4
    labels[20:30, 30:45] = 17
    labels[25:35, 5:7] = 9
    pairs = list(iter_label_rles(labels))
    assert [value for value, _ in pairs] == [4, 9, 17]
    rebuilt = rles_to_labels([r for _, r in pairs], 40, 50, values=[v for v, _ in pairs])
    np.testing.assert_array_equal(rebuilt, labels)


def test_later_masks_win_overlaps():
    a = np.zeros((10, 10), bool)
    a[0:6, 0:6] = True
    b = np.zeros((10, 10), bool)
    b[4:10, 4:10] = True
    labels = rles_to_labels([rle.encode_mask(a), rle.encode_mask(b)], 10, 10)
    assert labels[5, 5] == 2 and labels[0, 0] == 1 and labels[9, 9] == 2


def test_labels_to_coco_and_back():
    labels = np.zeros((16, 16), np.int32)
    labels[1:5, 1:5] = 3
    labels[8:15, 9:12] = 1
    coco = labels_to_coco(labels, "img.png", image_id=5)
    assert coco["images"] == [{"id": 5, "file_name": "img.png", "height": 16, "width": 16}]
    anns = coco["annotations"]
    assert [a["area"] for a in anns] == [21, 16]
    assert anns[0]["bbox"] == [9, 8, 3, 7]
    back = coco_to_labels(coco, 5)
    # Values are renumbered 1..N but the partition of pixels is the same.
    np.testing.assert_array_equal(back > 0, labels > 0)
    assert len(np.unique(back[labels == 3])) == 1 and len(np.unique(back[labels == 1])) == 1
