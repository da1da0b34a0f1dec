"""File names read from JSON documents, kept inside the folder they are relative to.

A ``file_name`` such as ``../../etc/passwd`` or ``/etc/passwd`` (or a symbolic link that
leads out of the folder) would make the tool read, and copy into its outputs, files the
dataset has no business naming.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath

from .fields import InvalidValue, text


def relative_name(value, name: str = "file_name") -> str:
    """A relative file name that does not climb out of its folder.

    Raises
    ------
    InvalidValue
        For a non-string, empty, absolute or ``..``-escaping name, or one holding
        control characters.
    """
    value = text(value, name)
    if any(ord(c) < 32 for c in value):
        raise InvalidValue(f"{name} {value!r} holds control characters")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} {value!r} is not a valid file name here") from None
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute():
        raise InvalidValue(f"{name} {value!r} is an absolute path; names must be relative "
                           "to the dataset folder")
    if same_file_key(value).split("/")[0] == "..":
        raise InvalidValue(f"{name} {value!r} points outside the dataset folder")
    return value


def same_file_key(value: str) -> str:
    """A name normalised so that ``x.png``, ``./x.png`` and ``a/../x.png`` compare equal."""
    return posixpath.normpath(value.replace("\\", "/"))


def inside(root: Path, value, name: str = "file_name") -> Path:
    """``root / value``, refused when it resolves (links followed) outside ``root``.

    Parameters
    ----------
    root : Path
        The folder names are relative to.
    value : str
        The name read from the document.
    name : str
        The field's name, for messages.

    Returns
    -------
    Path
        The file's path (not resolved, so names in outputs stay as given).
    """
    value = relative_name(value, name)
    path = root / value
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise InvalidValue(f"{name} {value!r} resolves outside {real_root}")
    return path
