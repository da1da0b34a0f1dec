"""The kinds of file users hand in, each checked entry by entry.

Each function takes the parsed document (from :func:`~.json_input.load_json`) or the
rows of a table and the file's path, checks every field's type and value, and raises
:class:`~napari_nuclei.core.errors.DatasetError` naming the file, the entry and the
problem. What passes is safe to hand to pycocotools and numpy.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DatasetError
from . import fields
from .fields import InvalidValue, describe, in_file
from .limits import check_pixels
from .paths import relative_name, same_file_key
from .segmentation import check_rle, check_segmentation

TEST_ID_KEYS = ("id", "file_name", "height", "width")
SUBMISSION_KEYS = ("image_id", "category_id", "bbox", "score", "segmentation")
_MAX_LABEL = 2**31 - 1  # label images are int32


def _image_size(entry: dict, required: bool) -> tuple[int, int] | None:
    """``(height, width)`` of an image entry (both or neither), within the limit."""
    present = [key for key in ("height", "width") if key in entry]
    if not present and not required:
        return None
    fields.required(entry, ("height", "width"))
    height = fields.integer(entry["height"], "height", minimum=1)
    width = fields.integer(entry["width"], "width", minimum=1)
    check_pixels(height, width, "declared image")
    return height, width


def check_test_ids(data, path: Path) -> list[dict]:
    """``test_img_ids.json``: a non-empty list of ``{"id", "file_name", "height", "width"}``
    with unique ids and names."""
    if not isinstance(data, list) or not data:
        raise DatasetError(path, 'expected a non-empty list of {"id", "file_name", "height", '
                           f'"width"}}, not {describe(data)}')
    seen_ids, seen_names = set(), set()
    for number, entry in enumerate(data):
        with in_file(path, f"entry {number}"):
            fields.obj(entry, "entry")
            fields.required(entry, TEST_ID_KEYS)
            image_id = fields.identifier(entry["id"], "id")
            name = same_file_key(relative_name(entry["file_name"]))
            _image_size(entry, required=True)
            if image_id in seen_ids:
                raise InvalidValue(f"id {image_id} appears twice")
            if name in seen_names:
                raise InvalidValue(f"{name} appears twice")
        seen_ids.add(image_id)
        seen_names.add(name)
    return data


def check_coco(data, path: Path, sizes_required: bool = False) -> dict:
    """A COCO instances document: ``images``, ``annotations`` and ``categories``.

    Image entries need an ``id`` and a relative ``file_name`` (and ``height``/``width``
    when ``sizes_required``, as for ground truth whose images may be absent).
    Annotations need an ``image_id`` of a listed image and a ``segmentation``; their
    ``iscrowd`` is 0 or 1, ``bbox`` a box and ``category_id`` an integer where present.
    Segmentations are checked against declared sizes here; those of images without
    declared sizes are checked against the pixels when the image is read.

    Returns
    -------
    dict
        The document, unchanged.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetError(path, 'not a COCO instances file (no "images" list)')
    with in_file(path):
        annotations = fields.array(data.get("annotations", []), '"annotations"')
        fields.array(data.get("categories", []), '"categories"')
    sizes: dict[int, tuple[int, int] | None] = {}
    names = set()
    for number, image in enumerate(data["images"]):
        with in_file(path, f"image entry {number}"):
            fields.obj(image, "image entry")
            fields.required(image, ("id", "file_name"))
            image_id = fields.identifier(image["id"], "id")
            name = same_file_key(relative_name(image["file_name"]))
            if image_id in sizes:
                raise InvalidValue(f"id {image_id} appears twice")
            if name in names:
                raise InvalidValue(f"file_name {name} appears twice")
            sizes[image_id] = _image_size(image, sizes_required)
            names.add(name)
    for number, ann in enumerate(annotations):
        where = f"annotation {number}"
        with in_file(path, where):
            fields.obj(ann, "annotation")
            fields.required(ann, ("image_id", "segmentation"))
            if "id" in ann:
                fields.identifier(ann["id"], "id")
            image_id = fields.identifier(ann["image_id"], "image_id")
            if image_id not in sizes:
                raise InvalidValue(f"image_id {image_id} is not an image of the file")
            if "iscrowd" in ann:
                fields.integer(ann["iscrowd"], "iscrowd", minimum=0, maximum=1)
            if "bbox" in ann:
                fields.box(ann["bbox"])
            if "category_id" in ann:
                fields.identifier(ann["category_id"], "category_id")
            if sizes[image_id] is not None:
                check_segmentation(ann["segmentation"], *sizes[image_id])
    return data


def is_crowd(annotation: dict) -> bool:
    """True for a COCO ``iscrowd: 1`` region: ignored in evaluation, never a nucleus."""
    return annotation.get("iscrowd", 0) == 1


def submission_entries_of(data, path: Path) -> list:
    """The detections of a submission file: its list, or a COCO results document's
    ``annotations`` (score 1 where absent)."""
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        return [{**a, "score": a.get("score", 1.0)} if isinstance(a, dict) else a
                for a in data["annotations"]]
    if not isinstance(data, list):
        raise DatasetError(path, "a submission must be a JSON list of detections, "
                           f"not {describe(data)}")
    return data


def check_detection(entry, image_sizes: dict[int, tuple[int, int]],
                    unknown_images_ok: bool = False,
                    category_ids: tuple[int, ...] | None = (1,)) -> bool:
    """Check one submission entry; returns whether its image is known.

    ``category_ids`` are the classes an entry may name (the one default class, 1,
    unless the run or the ground truth has others; None: any category id, for scoring
    against ground truth that has no classes).

    Raises
    ------
    InvalidValue
        For a missing key, a wrong type or value, an RLE not of its image's size or
        whose runs do not add up, or a ``bbox`` other than its mask's box.
    """
    from .. import rle as rle_utils

    if not isinstance(entry, dict):
        raise InvalidValue(f"is {describe(entry)}, not a detection object")
    fields.required(entry, SUBMISSION_KEYS)
    image_id = entry["image_id"]
    if isinstance(image_id, str):
        raise InvalidValue(f"image_id is the string {image_id!r}; image ids are integers "
                           "(the ids of test_img_ids.json)")
    fields.identifier(image_id, "image_id")
    category = fields.identifier(entry["category_id"], "category_id")
    if category_ids is not None and category not in category_ids:
        allowed = (f"be {category_ids[0]}" if len(category_ids) == 1
                   else f"be one of {', '.join(map(str, category_ids))}")
        raise InvalidValue(f"category_id must {allowed}, not {entry['category_id']}")
    fields.number(entry["score"], "score", minimum=0, maximum=1)
    fields.box(entry["bbox"])
    known = image_id in image_sizes
    if not known and not unknown_images_ok:
        raise InvalidValue(f"image_id {image_id} is not a known image")
    size = image_sizes.get(image_id, (None, None))
    check_rle(entry["segmentation"], *size, compressed_only=True)
    box = rle_utils.bbox(entry["segmentation"])
    if any(abs(a - b) > 1e-3 for a, b in zip(entry["bbox"], box, strict=True)):
        raise InvalidValue(f"bbox {entry['bbox']} does not match its mask's box {box}")
    return known


def check_submission(entries, image_sizes: dict[int, tuple[int, int]], path: str | Path,
                     unknown_images_ok: bool = False,
                     category_ids: tuple[int, ...] | None = (1,)) -> list:
    """Check every entry of a submission list.

    Parameters
    ----------
    entries : list
        The detections.
    image_sizes : dict of int to (int, int)
        ``image_id -> (height, width)`` of the images scored or written.
    path : str or Path
        The file, named in errors.
    unknown_images_ok : bool
        Accept (well-formed) entries of images outside ``image_sizes``.
    category_ids : tuple of int
        The classes entries may name (:func:`check_detection`).

    Returns
    -------
    list
        The entries of known images.
    """
    if not isinstance(entries, list):
        raise DatasetError(path, "a submission must be a JSON list of detections, "
                           f"not {describe(entries)}")
    known = []
    for number, entry in enumerate(entries):
        with in_file(path, f"entry {number}"):
            if check_detection(entry, image_sizes, unknown_images_ok,
                               None if category_ids is None else tuple(category_ids)):
                known.append(entry)
    return known


def read_score_rows(path: Path) -> dict[int, float]:
    """A score table: CSV with ``label`` (integer >= 1, unique) and ``score`` (in [0, 1])
    columns; other columns are ignored."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                return {}
            missing = {"label", "score"} - set(reader.fieldnames)
            if missing:
                raise DatasetError(path, "not a score table: no "
                                   f"{' or '.join(sorted(missing))} column")
            table: dict[int, float] = {}
            for row in reader:
                with in_file(path, f"line {reader.line_num}"):
                    table.update([_score_row(row, table)])
            return table
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(path, f"not a CSV table ({exc})") from None


def _score_row(row: dict, table: dict) -> tuple[int, float]:
    label_text, score_text = (row.get("label") or "").strip(), (row.get("score") or "").strip()
    if not (label_text.isascii() and label_text.isdigit() and 0 < len(label_text) <= 10):
        raise InvalidValue(f"label {label_text!r} is not a positive integer")
    label = fields.integer(int(label_text), "label", minimum=1, maximum=_MAX_LABEL)
    if label in table:
        raise InvalidValue(f"label {label} appears twice")
    try:
        score = float(score_text)
    except ValueError:
        raise InvalidValue(f"score {score_text!r} is not a number") from None
    fields.number(score, "score", minimum=0, maximum=1)
    return label, score
