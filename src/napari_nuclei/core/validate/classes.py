"""Checks of the nucleus classes a user file declares: COCO ``categories``, a run's class
list, and the ``label,class`` tables beside label images.

A class name is shown in the dock, written into QuPath's path classes and used as a CSV
value, so it must be short printable text; ids are COCO category ids.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DatasetError
from . import fields
from .fields import InvalidValue, describe, in_file

# More classes than any nuclei taxonomy in use (PanNuke 5, CoNIC 6, Lizard 6, PUMA 10).
MAX_CLASSES = 64
MAX_NAME_LENGTH = 80
_MAX_LABEL = 2**31 - 1


def class_name(value, name: str = "name") -> str:
    """A class name: non-empty printable text of at most 80 characters, no commas or
    quotes at its ends (it becomes a CSV value and a QuPath path class)."""
    text = fields.text(value, name).strip()
    if not text:
        raise InvalidValue(f"{name} is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidValue(f"{name} is longer than {MAX_NAME_LENGTH} characters")
    if not text.isprintable():
        raise InvalidValue(f"{name} {text[:40]!r} holds a control character")
    if ":" in text:
        # QuPath reads "A: B" as a derived class of A.
        raise InvalidValue(f"{name} {text!r} holds a colon (QuPath reads it as two classes)")
    return text


def colour(value, name: str = "color") -> tuple[int, int, int]:
    """An ``[r, g, b]`` colour of integers from 0 to 255."""
    if not isinstance(value, list) or len(value) != 3:
        raise InvalidValue(f"{name} must be [r, g, b], not {describe(value)}")
    return tuple(fields.integer(v, name, minimum=0, maximum=255) for v in value)


def check_categories(categories, path: str | Path) -> list[dict]:
    """COCO ``categories``: objects with an ``id`` (unique) and a ``name`` (unique), at
    most :data:`MAX_CLASSES` of them; an optional ``color``.

    Returns
    -------
    list of dict
        ``{"id", "name"}`` (and ``"color"`` where given), sorted by id.
    """
    with in_file(path):
        fields.array(categories, '"categories"')
        if len(categories) > MAX_CLASSES:
            raise InvalidValue(f"{len(categories)} categories; at most {MAX_CLASSES} are "
                               "supported")
    checked, names = {}, set()
    for number, category in enumerate(categories):
        with in_file(path, f"category {number}"):
            fields.obj(category, "category")
            fields.required(category, ("id", "name"))
            category_id = fields.integer(category["id"], "id", minimum=1,
                                         maximum=fields.MAX_ID)
            name = class_name(category["name"])
            if category_id in checked:
                raise InvalidValue(f"id {category_id} appears twice")
            if name.casefold() in names:
                raise InvalidValue(f"name {name!r} appears twice")
            entry = {"id": category_id, "name": name}
            if "color" in category:
                entry["color"] = list(colour(category["color"]))
            checked[category_id] = entry
            names.add(name.casefold())
    return [checked[key] for key in sorted(checked)]


def read_class_table(path: Path, required: bool = True) -> dict[int, str]:
    """A class table beside a label image: CSV with ``label`` (integer >= 1, unique) and
    ``class`` (a class name) columns; other columns are ignored.

    Parameters
    ----------
    path : Path
    required : bool
        False accepts a table without a ``class`` column (a score table of one class),
        read as no classes.

    Returns
    -------
    dict of int to str
        ``label -> class name``.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise DatasetError(path, "is empty: a class table needs label and class "
                                   "columns")
            missing = {"label", "class"} - {(f or "").strip() for f in reader.fieldnames}
            if missing == {"class"} and not required:
                return {}
            if missing:
                raise DatasetError(path, "not a class table: no "
                                   f"{' or '.join(sorted(missing))} column")
            table: dict[int, str] = {}
            for row in reader:
                row = {(k or "").strip(): v for k, v in row.items()}
                with in_file(path, f"line {reader.line_num}"):
                    label = _label(row.get("label"))
                    if label in table:
                        raise InvalidValue(f"label {label} appears twice")
                    table[label] = class_name(row.get("class") or "", "class")
                if len(set(table.values())) > MAX_CLASSES:
                    raise DatasetError(path, f"names more than {MAX_CLASSES} classes")
            return table
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(path, f"not a CSV table ({exc})") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None


def _label(value) -> int:
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 10):
        raise InvalidValue(f"label {text!r} is not a positive integer")
    return fields.integer(int(text), "label", minimum=1, maximum=_MAX_LABEL)
