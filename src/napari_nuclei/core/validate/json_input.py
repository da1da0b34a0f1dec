"""The one loader for JSON files that users hand in."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DatasetError
from .limits import MAX_JSON_MB_ENV, max_json_bytes


def _refuse_constant(name: str):
    # NaN and Infinity are Python extensions, not JSON; no valid input holds them.
    raise ValueError(f"{name} is not a JSON value")


def load_json(path: str | Path):
    """Parse a JSON file, refusing with one line what cannot be parsed safely.

    Guards against files too large for memory, nesting deep enough to exhaust the
    parser's stack, ``NaN``/``Infinity`` and integers with thousands of digits.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    object
        The parsed document; its structure is checked by :mod:`.schemas`.

    Raises
    ------
    DatasetError
        Naming the file and the problem.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise DatasetError(path, "is not a file")
        limit = max_json_bytes()
        if size > limit:
            raise DatasetError(
                path, f"is {size / 2**20:,.0f} MB, larger than the limit of "
                f"{limit / 2**20:,.0f} MB (raise it with --max-json-mb or {MAX_JSON_MB_ENV})")
        with open(path, encoding="utf-8") as fh:
            return json.load(fh, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise DatasetError(path, "not valid input: JSON nested too deeply") from None
    except MemoryError:
        raise DatasetError(path, "too large to load into memory") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except FileNotFoundError:
        raise DatasetError(path, "no such file") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:  # NaN/Infinity, integers beyond Python's digit limit
        raise DatasetError(path, f"not valid JSON ({exc})") from None


def parse_json_line(text: str):
    """Parse one line of a JSON-lines file (``metrics.jsonl``, GeoJSON lines).

    Raises
    ------
    ValueError
        For anything that is not one valid JSON value: bad syntax, ``NaN``, nesting deep
        enough to exhaust the parser's stack, integers beyond Python's digit limit.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
