"""Corrected slide windows as training samples, so the next run learns from them.

A window becomes one sample of a training set in the Data Science Bowl layout that
``train`` reads: ``SET/train/<sample>/images/<sample>.png`` and one binary PNG per
nucleus in ``SET/train/<sample>/masks/``, with ``sample.json`` beside them (slide, region,
pixel size). ``SET/training_set.json`` records the set's pixel size: windows of several
slides join one set when they share it (within 2%, as prediction resamples), so the
run can be trained with that ``--mpp``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..errors import InputError
from ..validate import load_json
from .engine import slide_name

SET_NAME = "training_set.json"
SAMPLE_NAME = "sample.json"
_SAME_PIXEL_SIZE = 0.02


def sample_name(window) -> str:
    """``<slide>_x<x>_y<y>_<w>x<h>`` from the window's level-0 region."""
    x, y, w, h = window.level0_region
    return f"{slide_name(Path(window.slide))}_x{x}_y{y}_{w}x{h}"


def _set_pixel_size(folder: Path, mpp: float | None) -> dict:
    path = folder / SET_NAME
    if not path.is_file():
        return {"mpp": mpp, "samples": []}
    try:
        data = load_json(path)
        known, samples = data["mpp"], list(data["samples"])
    except (InputError, ValueError, KeyError, TypeError):
        raise InputError(path, "cannot be read as a training set description") from None
    if (known is None) != (mpp is None) or (
            known is not None and abs(mpp / known - 1) > _SAME_PIXEL_SIZE):
        def said(v):
            return "unknown" if v is None else f"{v:.4g} µm"

        raise InputError(folder, f"holds windows at pixel size {said(known)}; this window is "
                         f"at {said(mpp)}: use another training set for it")
    return {"mpp": known, "samples": samples}


def add_window_to_training_set(window, training_set: str | Path, labels=None,
                               replace: bool = False) -> Path:
    """Write a window (its pixels and labels) as a training sample.

    Parameters
    ----------
    window : SlideWindow
        From :func:`napari_nuclei.core.slide.window.pull_window`.
    training_set : str or Path
        The training set folder (created when missing).
    labels : array-like, optional
        The corrected labels (default: ``window.labels``).
    replace : bool
        Replace a sample of the same region already in the set (the old one is moved
        into ``train/.replaced/``, never deleted).

    Returns
    -------
    Path
        The sample folder.

    Raises
    ------
    InputError
        A window with no nuclei, labels of another shape, a sample already there, or
        a set at another pixel size.
    """
    import cv2
    from skimage.segmentation import relabel_sequential

    from ..corrections import add_to_training_set

    folder = Path(training_set).expanduser().resolve()
    labels = np.asarray(window.labels if labels is None else labels)
    if labels.shape != window.shape:
        raise InputError(folder, f"the labels are {labels.shape}, the window {window.shape}")
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if not len(ids):
        raise InputError(folder, "the window holds no nuclei: nothing to learn from")
    described = _set_pixel_size(folder, window.mpp)
    name = sample_name(window)
    sample = folder / "train" / name
    if sample.exists() and not replace:
        raise InputError(sample, "is already in the training set (add it again with "
                         "replace: the old one is moved aside)")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".window.", dir=folder) as scratch:
        image_path = Path(scratch) / f"{name}.png"
        if not cv2.imwrite(str(image_path), cv2.cvtColor(window.image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write the window's image into {scratch}")
        # Slide ids are large and sparse; the sample numbers its nuclei 1..n.
        # A sample replaced is moved aside, never deleted.
        sample = add_to_training_set(folder / "train", name, image_path,
                                     relabel_sequential(labels.astype(np.int64))[0],
                                     replace=replace)
    x, y, w, h = window.level0_region
    write_json_atomic(sample / SAMPLE_NAME, {
        "slide": window.slide, "output": str(window.out_dir),
        "level0_region": {"x": x, "y": y, "width": w, "height": h},
        "mpp": window.mpp, "nuclei": int(len(ids))})
    if name not in described["samples"]:
        described["samples"].append(name)
    write_json_atomic(folder / SET_NAME, described, indent=1)
    return sample


def training_set_mpp(training_set: str | Path) -> float | None:
    """The pixel size recorded for a training set of windows (None when unknown)."""
    path = Path(training_set) / SET_NAME
    if not path.is_file():
        return None
    try:
        value = load_json(path)["mpp"]
    except (InputError, ValueError, KeyError, TypeError):
        raise InputError(path, "cannot be read as a training set description") from None
    return float(value) if value else None
