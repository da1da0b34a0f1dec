"""Competition submission files: build, validate, write.

A submission is a JSON list of ``{"image_id", "category_id": 1, "bbox": [x, y, w, h],
"score", "segmentation": {"size": [h, w], "counts": "<RLE string>"}}``, one entry per
nucleus. Every file is validated before it is written, so a malformed one never leaves
this program.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from . import rle as rle_utils
from .atomic import write_json_atomic
from .dataset import TEST_IDS_NAME, Dataset, read_test_ids
from .errors import DatasetError, InputError

_KEYS = {"image_id", "category_id", "bbox", "score", "segmentation"}


def submission_entries(image_id: int, rles: Iterable[dict], scores: Iterable[float]) -> list:
    """Entries of one image; box and size come from each RLE, so they always agree.

    Parameters
    ----------
    image_id : int
        The image's id (from ``test_img_ids.json``).
    rles : iterable of dict
        Compressed RLE with string counts, one per nucleus.
    scores : iterable of float
        Matching scores in [0, 1].

    Returns
    -------
    list of dict
    """
    return [
        {"image_id": int(image_id), "category_id": 1,
         "bbox": [float(v) for v in rle_utils.bbox(rle)], "score": float(score),
         "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}}
        for rle, score in zip(rles, scores, strict=True)
    ]


def validate_submission(entries, image_sizes: dict[int, tuple[int, int]], where: str | Path):
    """Check a submission before it is written or scored.

    Each entry must have the five keys, ``category_id`` 1, an ``image_id`` of a known
    image, a ``score`` in [0, 1], an RLE of that image's size, and a ``bbox`` equal to the
    RLE's box.

    Parameters
    ----------
    entries : list of dict
        The submission.
    image_sizes : dict of int to (int, int)
        ``image_id -> (height, width)``.
    where : str or Path
        The file being written or read, named in errors.

    Raises
    ------
    InputError
        Naming the first bad entry and what is wrong with it.
    """
    if not isinstance(entries, list):
        raise InputError(where, "a submission must be a JSON list of detections")
    for number, entry in enumerate(entries):
        problem = _entry_problem(entry, image_sizes)
        if problem:
            raise InputError(where, f"entry {number}: {problem}")


def _entry_problem(entry, image_sizes) -> str:
    if not isinstance(entry, dict) or not _KEYS <= entry.keys():
        missing = _KEYS - set(entry) if isinstance(entry, dict) else _KEYS
        return f"missing {', '.join(sorted(missing))}"
    if entry["image_id"] not in image_sizes:
        return f"image_id {entry['image_id']} is not a known image"
    if entry["category_id"] != 1:
        return f"category_id must be 1, not {entry['category_id']}"
    score = entry["score"]
    if not isinstance(score, int | float) or not math.isfinite(score) or not 0 <= score <= 1:
        return f"score {score!r} is not in [0, 1]"
    segmentation = entry["segmentation"]
    if not isinstance(segmentation, dict) or not isinstance(segmentation.get("counts"), str):
        return "segmentation must be an RLE with a string 'counts'"
    height, width = image_sizes[entry["image_id"]]
    if list(segmentation.get("size", [])) != [height, width]:
        return f"RLE size {segmentation.get('size')} differs from the image ({height}x{width})"
    try:
        box = rle_utils.bbox(segmentation)
    except Exception as exc:  # pycocotools raises on malformed counts
        return f"RLE cannot be decoded ({exc})"
    if len(entry["bbox"]) != 4 or any(abs(a - b) > 1e-3 for a, b in zip(entry["bbox"], box,
                                                                         strict=True)):
        return f"bbox {entry['bbox']} does not match its mask's box {box}"
    return ""


def write_submission(path: str | Path, entries: list, image_sizes) -> Path:
    """Validate and write a submission atomically."""
    validate_submission(entries, image_sizes, path)
    return write_json_atomic(path, entries)


def read_submission(path: str | Path) -> list:
    """Load a submission (or the ``annotations`` of a COCO results file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data = [{**a, "score": a.get("score", 1.0)} for a in data["annotations"]]
    return data


def image_ids_by_name(dataset: Dataset, test_ids: str | Path | None = None) -> dict[str, int]:
    """Image id per file name: from ``test_img_ids.json`` when given (or in the folder),
    else the dataset's own deterministic ids."""
    if test_ids is None and (dataset.root / TEST_IDS_NAME).is_file():
        test_ids = dataset.root / TEST_IDS_NAME
    if test_ids is None:
        return {Path(r.file_name).name: r.image_id for r in dataset.records}
    entries = read_test_ids(Path(test_ids))
    ids = {Path(e["file_name"]).name: e["id"] for e in entries}
    names = [Path(r.file_name).name for r in dataset.records]
    missing = [name for name in names if name not in ids]
    if missing:
        raise DatasetError(test_ids, f"does not list {', '.join(missing[:5])}")
    return ids
