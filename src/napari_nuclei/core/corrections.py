"""Hand corrections of predicted nuclei: what changed, and feeding them back into training."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class EditCounts:
    """How a corrected label image differs from the prediction it started from."""

    added: int
    removed: int
    edited: int

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.edited)

    def __str__(self) -> str:
        return f"{self.added} added, {self.removed} removed, {self.edited} edited"


def count_edits(predicted: np.ndarray, corrected: np.ndarray) -> EditCounts:
    """Compare label images: labels new in ``corrected``, gone from it, or changed in shape.

    Parameters
    ----------
    predicted, corrected : numpy.ndarray
        ``(H, W)`` integer label images of the same image.

    Returns
    -------
    EditCounts
    """
    before = set(np.unique(predicted).tolist()) - {0}
    after = set(np.unique(corrected).tolist()) - {0}
    kept = sorted(before & after)
    edited = 0
    if kept:
        # A nucleus is edited when its pixels differ: compare its boxes in both images.
        boxes_before = ndimage.find_objects(predicted)
        boxes_after = ndimage.find_objects(corrected)
        for value in kept:
            a, b = boxes_before[value - 1], boxes_after[value - 1]
            if a != b or not np.array_equal(predicted[a] == value, corrected[b] == value):
                edited += 1
    return EditCounts(len(after - before), len(before - after), edited)


def add_to_training_set(train_dir: str | Path, name: str, image_path: str | Path,
                        labels: np.ndarray) -> Path:
    """Write an image and its corrected nuclei into a DSB-layout training folder.

    ``<train_dir>/<name>/images/<name><suffix>`` (a copy of the image) and one 0/255 PNG
    per nucleus in ``masks/``. The sample folder is built aside and moved into place, so
    a failure leaves nothing half-written; an earlier sample of the same name is replaced.

    Returns
    -------
    Path
        The sample folder.
    """
    import cv2

    train_dir, image_path = Path(train_dir), Path(image_path)
    train_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=train_dir))
    try:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        shutil.copyfile(image_path, staging / "images" / f"{name}{image_path.suffix}")
        for number, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            mask = np.zeros(labels.shape, np.uint8)
            mask[box][labels[box] == number] = 255
            if not cv2.imwrite(str(staging / "masks" / f"{name}_nucleus_{number:04d}.png"),
                               mask):
                raise OSError(f"could not write a mask of {name} into {staging}")
        target = train_dir / name
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        return target
    finally:
        if staging.exists():
            shutil.rmtree(staging)
