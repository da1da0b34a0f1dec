"""Hand corrections of predicted nuclei: what changed, and feeding them back into training."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import staging_folder


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


Box = tuple[slice, slice]


def _union(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b,
                                                                                    strict=True))


class EditTracker:
    """Keeps :class:`EditCounts` of a label image up to date as it is edited.

    Each change is reported as the regions it touched, so that a paint stroke costs
    work in proportion to the stroke and to the nuclei under it, not to the image.

    Parameters
    ----------
    predicted : numpy.ndarray
        ``(H, W)`` label image as predicted (the nuclei shown before any edit).
    current : numpy.ndarray
        The label image being edited, usually the same array a napari layer paints into.
    """

    def __init__(self, predicted: np.ndarray, current: np.ndarray):
        self.predicted = predicted
        self.current = current
        boxes = ndimage.find_objects(predicted)
        # Where each label's pixels may be: its predicted box, grown by every region that
        # painted it.
        self._extent: dict[int, Box] = {
            value: box for value, box in enumerate(boxes, start=1) if box is not None}
        self.predicted_values = frozenset(self._extent)
        self._status: dict[int, str] = {}
        self._painted: list[Box] = []
        self._digest = 0

    def reset(self, current: np.ndarray) -> None:
        """Start over from a whole new label image (the layer's data was replaced)."""
        self.current = current
        self._extent = {v: b for v, b in self._extent.items() if v in self.predicted_values}
        self._status.clear()
        self._painted.clear()
        boxes = ndimage.find_objects(current)
        for value, box in enumerate(boxes, start=1):
            if box is not None:
                self._extent[value] = _union(self._extent.get(value), box)
        for value in self._extent:
            self._recheck(value)
        self._painted.append(tuple(slice(0, n) for n in current.shape))

    def changed(self, regions) -> EditCounts:
        """Record edits inside ``regions`` (tuples of slices); returns the new counts."""
        regions = [tuple(slice(int(s.start), int(s.stop)) for s in r) for r in regions]
        self._painted.extend(regions)
        self._update(regions)
        return self.counts

    def recheck(self) -> bool:
        """Recount after a change whose region is unknown (napari's undo and redo write
        only where strokes painted before): every painted region is looked at again.

        Returns
        -------
        bool
            Whether the painted regions changed since they were last looked at.
        """
        import zlib

        digest = 0
        for region in self._painted:
            digest = zlib.crc32(np.ascontiguousarray(self.current[region]), digest)
        if digest == self._digest:
            return False
        self._digest = digest
        self._update(self._painted)
        return True

    def _update(self, regions) -> None:
        candidates = set(self._status)
        for region in regions:
            now = np.unique(self.current[region])
            for value in now[now != 0].tolist():
                self._extent[value] = _union(self._extent.get(value), region)
            candidates.update(now.tolist())
            candidates.update(np.unique(self.predicted[region]).tolist())
        candidates.discard(0)
        for value in candidates:
            self._recheck(value)

    def _recheck(self, value: int) -> None:
        box = self._extent.get(value)
        if box is None:
            return
        now = self.current[box] == value
        if value not in self.predicted_values:
            status = "added" if now.any() else None
        elif not now.any():
            status = "removed"
        else:
            status = None if np.array_equal(self.predicted[box] == value, now) else "edited"
        if status is None:
            self._status.pop(value, None)
        else:
            self._status[value] = status

    @property
    def counts(self) -> EditCounts:
        """How many nuclei were added, removed and edited so far."""
        states = list(self._status.values())
        return EditCounts(states.count("added"), states.count("removed"),
                          states.count("edited"))

    def hand_drawn(self) -> set[int]:
        """Label values drawn by hand (absent from the prediction that was shown)."""
        return {v for v, s in self._status.items() if s == "added"}


def corrected_features(labels: np.ndarray, scores: dict[int, float],
                       hand_made_score: float = 1.0) -> dict[str, np.ndarray]:
    """A table of the nuclei in a corrected label image: label, score, area and box.

    Area and box are measured on ``labels`` itself, so a nucleus drawn by hand gets its
    own, never those of a prediction that had the same label value but was not shown.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(H, W)`` label image.
    scores : dict of int to float
        Predicted score of each label value that was shown; others get
        ``hand_made_score``.
    hand_made_score : float
        Score of nuclei drawn by hand.

    Returns
    -------
    dict of str to numpy.ndarray
        Columns ``label, score, area, bbox_x, bbox_y, bbox_w, bbox_h``.
    """
    rows = []
    boxes = ndimage.find_objects(labels)
    for value, box in enumerate(boxes, start=1):
        if box is None:
            continue
        area = int(np.count_nonzero(labels[box] == value))
        rows.append((value, scores.get(value, hand_made_score), area, box[1].start,
                     box[0].start, box[1].stop - box[1].start, box[0].stop - box[0].start))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    names = ("label", "score", "area", "bbox_x", "bbox_y", "bbox_w", "bbox_h")
    return {name: np.asarray(col, dtype=np.float64 if name == "score" else np.int64)
            for name, col in zip(names, columns, strict=True)}


# Replaced samples are kept here, in the training folder: a dot folder, which no dataset
# reader takes for a sample.
REPLACED_FOLDER = ".replaced"


@dataclass(frozen=True)
class SamplePlan:
    """Where an image's corrections would go in a training folder.

    Attributes
    ----------
    sample : str
        The sample folder written: the image's name, or ``<name>_corrected_<n>`` when
        that name holds another image.
    replaces : int or None
        None for a new sample; else the number of masks of the sample already there,
        which holds the same image and would be replaced (moved aside).
    """

    sample: str
    replaces: int | None = None


def _holds_image(sample: Path, image_path: Path) -> bool:
    """Whether a sample folder is that of this image: the image lies in it, or the
    sample's image is a copy of it."""
    import filecmp

    try:
        if sample.resolve() in image_path.resolve().parents:
            return True
        images = sample / "images"
        return images.is_dir() and any(
            f.is_file() and filecmp.cmp(f, image_path, shallow=False)
            for f in images.iterdir())
    except OSError:
        return False


def _masks_in(sample: Path) -> int:
    from .image_io import list_image_files

    masks = sample / "masks"
    return len(list_image_files(masks)) if masks.is_dir() else 0


def plan_sample(train_dir: str | Path, name: str, image_path: str | Path) -> SamplePlan:
    """Decide where an image's corrections go in a DSB training folder, writing nothing.

    The sample named after the image is replaced only when it holds the same image
    (the image was opened from the training set, or added before); a sample of that
    name holding another image is never touched: the corrections become a new sample.

    Parameters
    ----------
    train_dir : str or Path
        The folder of sample folders (``<train_dir>/<id>/images``).
    name : str
        The image's name.
    image_path : str or Path
        Its file.

    Returns
    -------
    SamplePlan
    """
    train_dir, image_path = Path(train_dir), Path(image_path)
    number = 0
    while True:
        sample = name if number == 0 else f"{name}_corrected_{number}"
        folder = train_dir / sample
        if not folder.exists() and not folder.is_symlink():
            return SamplePlan(sample)
        if _holds_image(folder, image_path):
            return SamplePlan(sample, _masks_in(folder))
        number += 1


def add_to_training_set(train_dir: str | Path, name: str, image_path: str | Path,
                        labels: np.ndarray, replace: bool = False,
                        when: str | None = None) -> Path:
    """Write an image and its corrected nuclei into a DSB-layout training folder.

    ``<train_dir>/<name>/images/<name><suffix>`` (a copy of the image) and one 0/255 PNG
    per nucleus in ``masks/``. The sample folder is built aside and moved into place, so
    a failure leaves nothing half-written. A sample already there is replaced only when
    ``replace`` is given, and is then moved into ``<train_dir>/.replaced/<when>/``, never
    deleted.

    Parameters
    ----------
    train_dir : str or Path
        The folder of sample folders.
    name : str
        The sample's name.
    image_path : str or Path
        The image.
    labels : numpy.ndarray
        ``(H, W)`` label image; each label value becomes one mask.
    replace : bool
        Replace (move aside) a sample of that name.
    when : str, optional
        The dated folder a replaced sample goes to (default: now).

    Returns
    -------
    Path
        The sample folder.

    Raises
    ------
    InputError
        When a sample of that name exists and ``replace`` is False.
    """
    import cv2

    from .aside import replace_keeping_old
    from .errors import InputError

    train_dir, image_path = Path(train_dir), Path(image_path)
    target = train_dir / name
    if (target.exists() or target.is_symlink()) and not replace:
        raise InputError(target, "is already in the training set; it is replaced only "
                         "when asked")
    train_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(train_dir, f".{name}.")
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
        return replace_keeping_old(staging, target, train_dir / REPLACED_FOLDER, when)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
