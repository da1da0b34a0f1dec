"""How much neighbouring tiles overlap: enough for the largest nucleus seen in training.

A nucleus whose box centre lies in a tile's core is seen whole by that tile when its half
width is under half the overlap. The overlap therefore follows the largest nucleus of the
run's training data (recorded in its ``settings.json`` as ``largest_nucleus_px``, or
measured from the training annotations the run keeps), with a margin for predicted masks
that come out larger than drawn ones.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import InputError
from ..validate import load_json

# Used when the run does not say how large its nuclei were.
DEFAULT_MIN_OVERLAP = 64
_MARGIN = 1.25
_MIN_OVERLAP = 16


def largest_training_nucleus(run_dir: str | Path) -> int | None:
    """The largest box side (pixels) of the nuclei a run was trained on, if known.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder.

    Returns
    -------
    int or None
    """
    from ..runs import recorded_number

    run_dir = Path(run_dir)
    largest = recorded_number(run_dir, "largest_nucleus_px")
    if largest is not None:
        return int(math.ceil(largest))
    # Run folders are shared: read them with the guarded loader of user files.
    try:
        coco = load_json(run_dir / "train_annotations.json")
        sides = [max(a["bbox"][2], a["bbox"][3]) for a in coco.get("annotations", [])]
    except (InputError, AttributeError, KeyError, TypeError, IndexError):
        return None
    return int(math.ceil(max(sides))) if sides else None


def overlap_for(largest_nucleus: int | None, tile: int) -> int:
    """Tile overlap (even, pixels) for nuclei up to ``largest_nucleus`` pixels wide.

    Without a size, an eighth of the tile and at least ``DEFAULT_MIN_OVERLAP``; never
    more than half the tile.
    """
    if largest_nucleus is None:
        overlap = max(DEFAULT_MIN_OVERLAP, tile // 8)
    else:
        overlap = max(_MIN_OVERLAP, math.ceil(largest_nucleus * _MARGIN) + 4)
    overlap = min(overlap, tile // 2)
    return overlap - overlap % 2


def model_run_dir(model) -> Path | None:
    """The run folder a loaded model comes from (the folder of its checkpoint)."""
    weights = getattr(model, "weights", None)
    return Path(weights).parent if weights is not None else None


def tile_overlap(model, tile: int) -> int:
    """The overlap to predict with a model's run in tiles of side ``tile``."""
    run_dir = model_run_dir(model)
    return overlap_for(largest_training_nucleus(run_dir) if run_dir else None, tile)
