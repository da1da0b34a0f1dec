"""The compact training masks give the same Mask R-CNN targets as detectron2's BitMasks."""

import numpy as np
import pytest
import torch

from conftest import make_masks, write_png
from napari_nuclei.core.rle import encode_mask

d2_transforms = pytest.importorskip("detectron2.data.transforms")


def _dataset_dict(tmp_path, shape=(120, 160), n=25):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    path = write_png(tmp_path / "img.png", image)
    masks = [m for m in make_masks(shape, n, seed=7, radius=(3, 12)) if m.any()]
    # A nucleus cut by the frame edge exercises the clamped border of roi_align.
    edge = np.zeros(shape, bool)
    edge[:9, 150:] = True
    masks.append(edge)
    annotations = []
    for mask in masks:
        rle = encode_mask(mask)
        ys, xs = np.nonzero(mask)
        annotations.append({
            "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs) + 1),
                     float(np.ptp(ys) + 1)],
            "bbox_mode": 1,  # BoxMode.XYWH_ABS
            "category_id": 0,
            "segmentation": rle,
        })
    record = {"file_name": str(path), "image_id": 1, "height": shape[0], "width": shape[1],
              "annotations": annotations}
    return record


def _proposals(gt_boxes: torch.Tensor, seed=0) -> torch.Tensor:
    """Jittered copies of the ground-truth boxes, as the ROI sampler would pair them."""
    generator = torch.Generator().manual_seed(seed)
    sizes = (gt_boxes[:, 2:] - gt_boxes[:, :2]).repeat(1, 2)
    noise = (torch.rand(gt_boxes.shape, generator=generator) - 0.5) * 0.4 * sizes
    return gt_boxes + noise


def _both_mappers(record, augmentations):
    from detectron2.data import DatasetMapper

    from napari_nuclei.core.training.mapper import NucleiMapper

    reference = DatasetMapper(is_train=True, augmentations=list(augmentations),
                              image_format="BGR", use_instance_mask=True,
                              instance_mask_format="bitmask")
    ours = NucleiMapper.__new__(NucleiMapper)
    ours.is_train, ours.augmentations, ours._cache = True, list(augmentations), {}
    return reference(dict(record)), ours(dict(record))


def _targets(sample, index, boxes):
    masks = sample["instances"].gt_masks[index]
    return masks.crop_and_resize(boxes, 28)


@pytest.mark.parametrize("flip", [False, True])
def test_targets_equal_bitmasks_exactly_without_resize(tmp_path, flip):
    record = _dataset_dict(tmp_path)
    augmentations = [d2_transforms.RandomFlip(prob=1.0 if flip else 0.0)]
    reference, ours = _both_mappers(record, augmentations)
    assert torch.equal(reference["image"], ours["image"])
    assert torch.equal(reference["instances"].gt_boxes.tensor, ours["instances"].gt_boxes.tensor)
    # Index like the ROI sampler does: a long tensor with repeats.
    index = torch.tensor([3, 0, 0, 5, len(record["annotations"]) - 1, 2, 7])
    boxes = _proposals(reference["instances"].gt_boxes.tensor[index])
    expected = _targets(reference, index, boxes)
    got = _targets(ours, index, boxes)
    assert expected.any()
    assert torch.equal(expected, got)


@pytest.mark.parametrize("size", [200, 301])
def test_targets_match_bitmasks_within_rounding_after_resize(tmp_path, size):
    record = _dataset_dict(tmp_path)
    augmentations = [d2_transforms.ResizeShortestEdge(size, 1000),
                     d2_transforms.RandomFlip(prob=1.0)]
    reference, ours = _both_mappers(record, augmentations)
    assert reference["image"].shape == ours["image"].shape
    assert torch.allclose(reference["instances"].gt_boxes.tensor,
                          ours["instances"].gt_boxes.tensor)
    index = torch.arange(len(ours["instances"]))
    boxes = _proposals(reference["instances"].gt_boxes.tensor, seed=1)
    expected = _targets(reference, index, boxes)
    got = _targets(ours, index, boxes)
    # The reference resampled each full-frame mask with nearest neighbours first (on
    # these 5-25 pixel nuclei that moves edges by up to half a pixel); the crops are
    # sampled at the same places without that step. Only edge pixels differ.
    disagreement = (expected != got).float().mean().item()
    assert disagreement < 0.05
    intersection = (expected & got).sum(dim=(1, 2)).float()
    union = (expected | got).sum(dim=(1, 2)).float().clamp(min=1)
    assert (intersection / union).mean() > 0.9
    # And the crop targets do not depend on the resize: the same proposals mapped back
    # to the original frame give the unresized targets.
    _, unresized = _both_mappers(record, [d2_transforms.RandomFlip(prob=1.0)])
    sy, sx = (a / b for a, b in zip(ours["image"].shape[1:], unresized["image"].shape[1:],
                                    strict=True))
    original_boxes = boxes / torch.tensor([sx, sy, sx, sy])
    unresized_targets = _targets(unresized, index, original_boxes)
    # Equal but for float rounding of the mapped boxes at the 0.5 threshold.
    assert (unresized_targets != got).float().mean().item() < 0.002


def test_mapper_keeps_memory_to_the_crops(tmp_path):
    record = _dataset_dict(tmp_path)
    _, ours = _both_mappers(record, [d2_transforms.RandomFlip(prob=0.0)])
    masks = ours["instances"].gt_masks
    stored = sum(c.numel() for c in masks.crops)
    assert stored < 0.2 * len(masks) * 120 * 160
