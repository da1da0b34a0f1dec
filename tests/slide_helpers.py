"""A stand-in model and small generated slides for the whole-slide tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from conftest import SAMPLE_DATA
from napari_nuclei.core.image_io import read_image
from napari_nuclei.core.models import RawDetections
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.slide.synthetic import write_test_slide

HE_TILE = SAMPLE_DATA / "test" / "he_tile_1000.png"


class BlobModel:
    """Stands in for the network: every dark blob (H&E nuclei and clumps) is a nucleus.

    The same pixels give the same blobs wherever a tile is cut, so a stitched slide can
    be compared with the blobs of the whole image; the largest blobs are wider than the
    tile overlap.
    """

    min_size_test = 256
    max_size_test = 256
    detections_per_image = 2000
    score_thresh = None
    weights = None
    device = "cpu"
    classes = ClassSet.default()

    def __init__(self, threshold: int = 110, min_area: int = 30):
        self.threshold, self.min_area = threshold, min_area
        self.tiles_seen = 0
        self.batches = []  # tiles per forward pass

    def resize_scale(self, height, width):
        return 1.0

    def detect_down_to(self, score):
        pass

    def infer_batch(self, images, resize=True):
        self.batches.append(len(images))
        return [self.infer(image, resize) for image in images]

    def infer(self, bgr, resize=True):
        import cv2
        from scipy import ndimage

        self.tiles_seen += 1
        dark = (bgr.mean(axis=2) < self.threshold).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=4)
        boxes, probs, scores = [], [], []
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < self.min_area:
                continue
            # Each blob on its own (so a tile edge changes nothing else), holes filled, so
            # that blobs are compact as nuclei are.
            blob = ndimage.binary_fill_holes(labels[y : y + h, x : x + w] == i)
            crop = torch.from_numpy(blob.astype(np.float32))
            probs.append(torch.nn.functional.interpolate(
                crop[None, None], (64, 64), mode="bilinear", align_corners=False)[0, 0])
            boxes.append((x, y, x + w, y + h))
            scores.append(0.5 + 0.5 * min(1.0, area / 5000))
        order = np.argsort(-np.asarray(scores), kind="stable")
        return RawDetections(
            np.asarray(boxes, np.float32).reshape(-1, 4)[order],
            np.asarray(scores, np.float32)[order],
            torch.stack(probs)[torch.as_tensor(order)] if probs else torch.zeros((0, 64, 64)),
            False)


def he_tile() -> np.ndarray:
    return read_image(HE_TILE)


def make_slide(path: Path, size: int = 1024, seed: int = 1, **kwargs) -> Path:
    """A small pyramidal JPEG TIFF of 512-pixel H&E blocks, some blank."""
    return write_test_slide(path, he_tile(), size, seed=seed, block=512, **kwargs)
