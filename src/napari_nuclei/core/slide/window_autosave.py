"""Autosave of a window's corrections until they are written back.

Edits are saved beside the slide's outputs (``edits/autosave/``) with the labels they were
made over, so that they are offered back only while those labels are unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..validate import load_arrays
from .edits import EDITS

if TYPE_CHECKING:
    from .window import SlideWindow

AUTOSAVE = "autosave"


def _autosave_path(window: SlideWindow) -> Path:
    h, w = window.shape
    return window.out_dir / EDITS / AUTOSAVE / f"{window.top}_{window.left}_{h}x{w}.npz"


def touched_nuclei(window: SlideWindow, labels) -> int:
    """How many nuclei the edits of a window touch (removed, changed or drawn)."""
    labels = np.asarray(labels)
    differs = labels != window.original
    return len((set(np.unique(labels[differs]).tolist())
                | set(np.unique(window.original[differs]).tolist())) - {0})


def autosave_window(window: SlideWindow, labels) -> Path:
    """Save a window's edited labels (not yet written back) beside the slide's outputs."""
    from ..atomic import atomic_path

    path = _autosave_path(window)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, labels=np.asarray(labels, np.uint32),
                            original=window.original)
    return path


def autosaved_labels(window: SlideWindow) -> np.ndarray | None:
    """The autosaved edits of this window, if any were saved over the same labels."""
    path = _autosave_path(window)
    if not path.is_file():
        return None
    try:
        saved = load_arrays(path)
        labels, original = saved["labels"], saved["original"]
    except (InputError, KeyError):
        return None
    if labels.shape != window.shape or not np.array_equal(original, window.original):
        return None  # saved over labels that have changed since
    return labels


def discard_autosave(window: SlideWindow) -> None:
    """Remove a window's autosave (once written back)."""
    _autosave_path(window).unlink(missing_ok=True)
