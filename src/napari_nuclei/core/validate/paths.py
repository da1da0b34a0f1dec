"""File names read from JSON documents, kept inside the folder they are relative to.

A ``file_name`` such as ``../../etc/passwd`` or ``/etc/passwd`` (or a symbolic link that
leads out of the folder) would make the tool read, and copy into its outputs, files the
dataset has no business naming. Symbolic links met on the way to a file, named by a
document or found by listing a folder, may lead to another place inside the dataset;
one that leads out of it, leads nowhere or loops is refused as such.
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import DatasetError
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
    problem = link_problem(root, path)
    if problem is not None:
        raise InvalidValue(f"{name} {value!r}: {problem[0]} {problem[1]}")
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise InvalidValue(f"{name} {value!r} resolves outside {real_root}")
    return path


def link_problem(root: Path, path: Path) -> tuple[Path, str] | None:
    """The first symbolic link on the way from ``root`` down to ``path`` that leads
    nowhere, loops or leads outside ``root``, with what is wrong with it.

    Parameters
    ----------
    root : Path
        The dataset folder; links may lead anywhere inside it.
    path : Path
        A file or folder inside ``root`` (``root`` joined with a relative name).

    Returns
    -------
    tuple of (Path, str) or None
        The link and the problem, in words that follow the link's path; None when every
        link on the way leads to something that exists inside ``root``.
    """
    real_root = Path(os.path.realpath(root))
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if part in (".", "..") or not os.path.islink(current):
            continue
        target = os.readlink(current)
        try:
            os.stat(current)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                hop = os.path.normpath(os.path.join(current.parent, target))
                if hop == os.path.normpath(current):
                    return current, "is a symbolic link to itself (a loop, never a file)"
                return current, (f"is a symbolic link loop: it leads to {hop}, which leads "
                                 "back round and never to a file")
            if exc.errno == errno.ENOENT:
                return current, (f"is a symbolic link to {os.path.realpath(current)}, "
                                 "which does not exist (a dangling link)")
            return current, f"is a symbolic link that cannot be followed ({exc.strerror})"
        real = Path(os.path.realpath(current))
        if not real.is_relative_to(real_root):
            return current, (f"is a symbolic link to {real}, outside the dataset folder "
                             f"{real_root}: link only to files inside it, or copy them in")
    return None


def check_links(root: Path, path: Path) -> Path:
    """``path``, found by listing a folder inside ``root``, once the symbolic links on the
    way to it are known to lead to something inside ``root``.

    Raises
    ------
    DatasetError
        Naming the link that leads outside ``root``, nowhere, or round in a loop.
    """
    problem = link_problem(root, path)
    if problem is not None:
        raise DatasetError(*problem)
    return path
