"""Turn a dataset dict into model input, with nuclei kept compact (:class:`CropMasks`).

The first time a sample is seen its image is read and normalised and its RLE masks are
decoded into crops once; later epochs reuse both. Augmentations (shortest-edge resize,
horizontal flip) are applied to the image and boxes as detectron2's ``DatasetMapper``
does, and recorded as a coordinate map for the masks instead of resampling them.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..image_io import read_image
from ..normalize import to_model_input
from ..rle import decode
from .crop_masks import CropMasks, axis_maps_of, crops_from_masks


def build_augmentations(cfg, is_train: bool) -> list:
    """detectron2's default augmentations for ``cfg`` (resize; flip when training)."""
    from detectron2.data import detection_utils

    return detection_utils.build_augmentation(cfg, is_train)


class NucleiMapper:
    """A ``mapper`` for detectron2's data loaders, fast on images with hundreds of nuclei.

    Parameters
    ----------
    cfg : CfgNode
        The run's config (input sizes, flip).
    is_train : bool
        Training samples carry ground truth; test samples only the resized image.
    """

    def __init__(self, cfg, is_train: bool = True):
        self.is_train = is_train
        self.augmentations = build_augmentations(cfg, is_train)
        self._cache: dict = {}

    def _load(self, record: dict):
        key = record["image_id"]
        if key not in self._cache:
            image = to_model_input(read_image(record["file_name"]))
            height, width = image.shape[:2]
            annotations = record.get("annotations", []) if self.is_train else []
            masks = (decode(a["segmentation"]) for a in annotations)
            crops, origins = crops_from_masks(masks, height, width)
            boxes = np.asarray([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
            # Dataset dicts hold the model's class index (0 for a one-class set).
            classes = np.asarray([a.get("category_id", 0) for a in annotations], np.int64)
            self._cache[key] = (image, crops, origins, boxes, classes)
        return self._cache[key]

    def __call__(self, record: dict) -> dict:
        """Map one dataset dict to ``{"image", "height", "width", "instances", ...}``."""
        from detectron2.data import transforms as T
        from detectron2.structures import Boxes, Instances

        record = copy.copy(record)
        image, crops, origins, boxes, classes = self._load(record)
        aug_input = T.AugInput(image)
        transforms = T.AugmentationList(self.augmentations)(aug_input)
        augmented = aug_input.image
        record["image"] = torch.as_tensor(np.ascontiguousarray(augmented.transpose(2, 0, 1)))
        record.pop("annotations", None)
        if not self.is_train:
            return record
        height, width = augmented.shape[:2]
        new_boxes = transforms.apply_box(boxes).clip(min=0) if len(boxes) else boxes
        new_boxes = np.minimum(new_boxes, [width, height, width, height])
        instances = Instances((height, width))
        instances.gt_boxes = Boxes(torch.as_tensor(new_boxes, dtype=torch.float32))
        instances.gt_classes = torch.from_numpy(classes)
        instances.gt_masks = CropMasks(crops, origins, axis_maps_of(transforms))
        keep = instances.gt_boxes.nonempty()
        record["instances"] = instances[keep]
        return record
