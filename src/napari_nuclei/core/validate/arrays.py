"""The loader for NumPy files (``.npy``, ``.npz``) found in folders users hand on.

Slide job folders, pending slide edits and autosaves hold NumPy files, and such folders
are copied between people. ``np.load`` with pickles refused runs no code, but a file of a
few bytes may declare an array of terabytes, and a compressed member may inflate without
end. :func:`load_arrays` reads each member's header first and refuses object arrays and
declared sizes beyond the limit before any data is decompressed.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .limits import max_pixels

# Bytes per pixel of the widest array the tool writes (int64 ids, float64 measures).
_BYTES_PER_PIXEL = 8


def max_array_bytes() -> int:
    """The most bytes one NumPy file may declare: eight per pixel of the largest image."""
    return max_pixels() * _BYTES_PER_PIXEL


def _declared_bytes(fh, where: str) -> int:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{where}: unknown .npy version {version}")
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects, not numbers")
    return math.prod(shape) * dtype.itemsize


def _check_total(path: Path, total: int, limit: int) -> None:
    if total > limit:
        raise DatasetError(path, f"declares {total:,} bytes of arrays, more than the limit "
                           f"of {limit:,} (raise it with --max-pixels)")


def load_arrays(path: str | Path, limit: int | None = None) -> dict[str, np.ndarray]:
    """Read a ``.npz`` (every member) or ``.npy`` file (key ``""``), sizes checked first.

    Parameters
    ----------
    path : str or Path
        The file.
    limit : int, optional
        The most bytes all its arrays together may declare (default
        :func:`max_array_bytes`).

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    DatasetError
        Naming the file: not a NumPy file, damaged, holding objects, or too large.
    """
    path = Path(path)
    limit = max_array_bytes() if limit is None else limit
    try:
        if not path.is_file():
            raise DatasetError(path, "no such file")
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                total = 0
                for info in archive.infolist():
                    with archive.open(info) as member:
                        total += _declared_bytes(member, info.filename)
                _check_total(path, total, limit)
            with np.load(path, allow_pickle=False) as loaded:
                return {name: loaded[name] for name in loaded.files}
        with open(path, "rb") as fh:
            _check_total(path, _declared_bytes(fh, path.name), limit)
        return {"": np.load(path, allow_pickle=False)}
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(path, "is too large to load into memory") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DatasetError(path, f"is not a readable NumPy file ({exc})") from None
