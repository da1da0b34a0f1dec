"""Competition submission files: build, validate, write.

A submission is a JSON list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
"score", "segmentation": {"size": [h, w], "counts": "<RLE string>"}}``, one entry per
nucleus; ``category_id`` is 1 for the one default class, else the COCO id of the
nucleus' class in the run's classes. Every file is validated before it is written, so a
malformed one never leaves this program.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from . import rle as rle_utils
from .atomic import write_json_atomic
from .dataset import TEST_IDS_NAME, Dataset, check_declared_size, read_test_ids
from .errors import DatasetError
from .validate import load_json
from .validate.schemas import check_submission, submission_entries_of


def submission_entries(image_id: int, rles: Iterable[dict], scores: Iterable[float],
                       category_ids: Iterable[int] | None = None) -> list:
    """Entries of one image; box and size come from each RLE, so they always agree.

    Parameters
    ----------
    image_id : int
        The image's id (from ``test_img_ids.json``).
    rles : iterable of dict
        Compressed RLE with string counts, one per nucleus.
    scores : iterable of float
        Matching scores in [0, 1].
    category_ids : iterable of int, optional
        Each nucleus' class as a COCO category id (1, ``nucleus``, by default).

    Returns
    -------
    list of dict
    """
    rles, scores = list(rles), list(scores)
    categories = [1] * len(rles) if category_ids is None else list(category_ids)
    return [
        {"image_id": int(image_id), "category_id": int(category),
         "bbox": [float(v) for v in rle_utils.bbox(rle)], "score": float(score),
         "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}}
        for rle, score, category in zip(rles, scores, categories, strict=True)
    ]


def validate_submission(entries, image_sizes: dict[int, tuple[int, int]], where: str | Path,
                        unknown_images_ok: bool = False,
                        category_ids: tuple[int, ...] | None = (1,)) -> list:
    """Check a submission before it is written or scored.

    Each entry must be an object with the five keys, an integer ``image_id`` (of a known
    image unless ``unknown_images_ok``), a ``category_id`` of ``category_ids``, a
    ``score`` in [0, 1], a
    compressed RLE of that image's size whose runs cover it exactly, and a ``bbox``
    equal to the RLE's box (:func:`~.validate.schemas.check_detection`).

    Parameters
    ----------
    entries : list of dict
        The submission.
    image_sizes : dict of int to (int, int)
        ``image_id -> (height, width)``.
    where : str or Path
        The file being written or read, named in errors.
    unknown_images_ok : bool
        Accept well-formed entries of images outside ``image_sizes`` (not scored).
    category_ids : tuple of int or None
        The classes entries may name (1, the one default class, unless given; None: any
        category id).

    Returns
    -------
    list of dict
        The entries of known images.

    Raises
    ------
    InputError
        Naming the first bad entry and what is wrong with it.
    """
    return check_submission(entries, image_sizes, where, unknown_images_ok, category_ids)


def write_submission(path: str | Path, entries: list, image_sizes,
                     category_ids: tuple[int, ...] | None = (1,)) -> Path:
    """Validate and write a submission atomically (its entries naming ``category_ids``)."""
    validate_submission(entries, image_sizes, path, category_ids=category_ids)
    return write_json_atomic(path, entries)


def read_submission(path: str | Path) -> list:
    """Load a submission (or the ``annotations`` of a COCO results file); its entries are
    checked by :func:`validate_submission`."""
    path = Path(path)
    return submission_entries_of(load_json(path), path)


def image_ids_by_name(dataset: Dataset, test_ids: str | Path | None = None) -> dict[str, int]:
    """Image id per file name: from ``test_img_ids.json`` when given (or in the folder),
    else the dataset's own deterministic ids."""
    if test_ids is None and (dataset.root / TEST_IDS_NAME).is_file():
        test_ids = dataset.root / TEST_IDS_NAME
    if test_ids is None:
        return {Path(r.file_name).name: r.image_id for r in dataset.records}
    test_ids = Path(test_ids)
    entries = read_test_ids(test_ids)
    by_name = {Path(e["file_name"]).name: (number, e) for number, e in enumerate(entries)}
    names = [Path(r.file_name).name for r in dataset.records]
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DatasetError(test_ids, f"does not list {', '.join(missing[:5])}")
    for record in dataset.records:
        number, entry = by_name[Path(record.file_name).name]
        check_declared_size(test_ids, f"entry {number}", record.path, entry["height"],
                            entry["width"])
    return {name: entry["id"] for name, (_, entry) in by_name.items()}
