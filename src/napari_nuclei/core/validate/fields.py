"""Checks of single values read from user files.

Each check returns the value when it is acceptable and raises :class:`InvalidValue`
with a short description otherwise; :func:`in_file` adds the file and the entry.
JSON's ``true``/``false`` are never accepted as numbers, although Python treats them
as 1 and 0.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

from ..errors import DatasetError

# Ids are stored as 64-bit integers by pycocotools' consumers (numpy, torch).
MAX_ID = 2**63 - 1


class InvalidValue(ValueError):
    """A value of an input file that is not what it must be (message: what is wrong)."""


@contextlib.contextmanager
def in_file(path: str | Path, where: str = "") -> Iterator[None]:
    """Report an :class:`InvalidValue` raised inside the block as a ``DatasetError``.

    Parameters
    ----------
    path : str or Path
        The file being checked.
    where : str
        The entry being checked ("entry 3", "annotation 12"), put before the problem.
    """
    try:
        yield
    except InvalidValue as exc:
        raise DatasetError(path, f"{where}: {exc}" if where else str(exc)) from None


def describe(value) -> str:
    """A short description of a JSON value for messages: ``the string '12'``, ``true``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int | float):
        return repr(value)
    return type(value).__name__


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (not a boolean, not a float) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an integer, not {describe(value)}")
    if minimum is not None and value < minimum:
        raise InvalidValue(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise InvalidValue(f"{name} {value} is larger than {maximum}")
    return value


def identifier(value, name: str) -> int:
    """A COCO id: an integer from 0 to 2**63 - 1."""
    return integer(value, name, minimum=0, maximum=MAX_ID)


def number(value, name: str, minimum: float | None = None,
           maximum: float | None = None) -> float:
    """A finite number (not a boolean) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{name} must be a number, not {describe(value)}")
    if not math.isfinite(value):
        raise InvalidValue(f"{name} must be finite, not {value}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InvalidValue(f"{name} {value!r} is not in [{minimum}, {maximum}]")
    return value


def text(value, name: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string, not {describe(value)}")
    if not value:
        raise InvalidValue(f"{name} is empty")
    return value


def box(value, name: str = "bbox") -> list:
    """A COCO box ``[x, y, width, height]`` of finite numbers, width and height >= 0."""
    if not isinstance(value, list) or len(value) != 4:
        raise InvalidValue(f"{name} must be a list [x, y, width, height], not {describe(value)}")
    for part, item in zip(("x", "y", "width", "height"), value, strict=True):
        number(item, f"{name} {part}", minimum=0 if part in ("width", "height") else None)
    return value


def obj(value, name: str) -> dict:
    """A JSON object."""
    if not isinstance(value, dict):
        raise InvalidValue(f"{name} must be an object, not {describe(value)}")
    return value


def array(value, name: str) -> list:
    """A JSON list."""
    if not isinstance(value, list):
        raise InvalidValue(f"{name} must be a list, not {describe(value)}")
    return value


def required(entry: dict, keys) -> None:
    """Every key of ``keys`` is present in ``entry``."""
    missing = [key for key in keys if key not in entry]
    if missing:
        raise InvalidValue(f"lacks {', '.join(missing)}")
