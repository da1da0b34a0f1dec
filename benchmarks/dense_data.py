"""A synthetic dense-nuclei data set for the benchmarks: 1000x1000 images, ~700 nuclei each.

Written as a folder of images with label images (``<name>.png`` + ``<name>_labels.tif``),
a layout every command reads; nuclei are random ellipses that do not overlap.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile


def dense_labels(size: int, n_nuclei: int, rng: np.random.Generator) -> np.ndarray:
    """An int32 label image of up to ``n_nuclei`` non-overlapping elliptical nuclei."""
    labels = np.zeros((size, size), np.int32)
    scratch = np.zeros((size, size), np.uint8)
    value = 0
    for _ in range(n_nuclei * 3):
        if value == n_nuclei:
            break
        scratch[:] = 0
        center = (int(rng.integers(12, size - 12)), int(rng.integers(12, size - 12)))
        axes = (int(rng.integers(6, 13)), int(rng.integers(6, 13)))
        cv2.ellipse(scratch, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        inside = scratch.astype(bool)
        if labels[inside].any():
            continue
        value += 1
        labels[inside] = value
    return labels


def write_dense_set(folder: Path, n_images: int, n_nuclei: int = 700, size: int = 1000,
                    seed: int = 0) -> Path:
    """Write ``n_images`` H&E-like images with their label images into ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_images):
        labels = dense_labels(size, n_nuclei, rng)
        image = np.full((size, size, 3), (230, 200, 220), np.uint8)
        image[labels > 0] = (120, 60, 150)
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{index:02d}.png"), image)
        tifffile.imwrite(folder / f"img{index:02d}_labels.tif", labels)
    return folder
