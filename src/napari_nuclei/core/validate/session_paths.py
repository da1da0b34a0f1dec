"""The names and paths a saved session gives: plain file names (written as
``<name>.npz`` and ``<name>.tif``), files inside the session folder reached through no
link (read and written again), and paths anywhere that are only read."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from . import fields
from .fields import InvalidValue
from .paths import relative_name

# Longest path the kernel accepts (PATH_MAX); longer ones can only be hostile.
MAX_PATH_CHARS = 4096
# The longest file or folder name common file systems allow (NAME_MAX), in bytes.
MAX_COMPONENT_BYTES = 255
# ``<name>.npz`` and ``<name>.tif`` must fit a file name of 255 bytes (NAME_MAX).
MAX_NAME_BYTES = 255 - len(".npz")


def plain_name(value, name: str = "name") -> str:
    """A plain file name: no folder separator, not ``.`` or ``..``, no control character.

    Raises
    ------
    InvalidValue
        Saying what is wrong with ``value``.
    """
    value = fields.text(value, name)
    shown = value if len(value) <= 60 else value[:57] + "..."
    if any(_breaks_lines(c) for c in value):
        raise InvalidValue(f"{name} {shown!r} holds control characters")
    # Both separators: a session written on one system is restored on another.
    if "/" in value or "\\" in value or PureWindowsPath(value).drive:
        raise InvalidValue(f"{name} {shown!r} is a path; it must be a plain file name")
    if value in (".", ".."):
        raise InvalidValue(f"{name} {shown!r} is not a file name")
    try:
        size = len(os.fsencode(value))
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} {shown!r} is not a valid file name here") from None
    if size > MAX_NAME_BYTES:
        raise InvalidValue(f"{name} is {size} bytes long, longer than the {MAX_NAME_BYTES} "
                           "a file name allows")
    return value


def _breaks_lines(char: str) -> bool:
    # Names are shown in one-line messages: C0 and C1 controls, DEL, line separators.
    return ord(char) < 32 or 127 <= ord(char) < 160 or char in "\u2028\u2029"


def file_inside(folder: Path, value, name: str) -> Path:
    """``folder / value`` for a relative name that stays inside ``folder`` and passes
    through no symbolic link (a link could lead anywhere, now or once the folder is
    copied).

    Raises
    ------
    InvalidValue
        For a wrong type, an absolute or escaping name, or a link on the way.
    """
    # The length first: the messages below quote the value.
    if isinstance(value, str) and len(value) > MAX_PATH_CHARS:
        raise InvalidValue(f"{name} is {len(value):,} characters long, longer than any path")
    value = relative_name(value, name)
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not parts:
        raise InvalidValue(f"{name} {value!r} names no file")
    if "\\" in value or ".." in parts or PureWindowsPath(value).drive:
        raise InvalidValue(f"{name} {value!r} must name a file below the session folder "
                           "with '/' separators and no '..'")
    if any(len(os.fsencode(part)) > MAX_COMPONENT_BYTES for part in parts):
        raise InvalidValue(f"{name} {value[:60]!r}… has a part longer than "
                           f"{MAX_COMPONENT_BYTES} bytes: no file system holds such a file")
    # Relative, without '..' and through no link: the name cannot lead out of the folder,
    # so no path needs resolving (os.path on strings: sessions list thousands of names).
    current = os.fspath(folder)
    for part in parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise InvalidValue(f"{name} {value!r} passes through the symbolic link "
                               f"{part!r}; session files must be real files")
    return Path(folder, *parts)


def optional_path(value, name: str) -> Path | None:
    """A path string (any folder: it is only read) or null; empty means null."""
    if value is None or value == "":
        return None
    value = fields.text(value, name)
    if len(value) > MAX_PATH_CHARS:
        raise InvalidValue(f"{name} is {len(value):,} characters long, longer than any path")
    if any(_breaks_lines(c) for c in value):
        raise InvalidValue(f"{name} {value[:60]!r} holds control characters")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} {value[:60]!r} is not a valid path here") from None
    return Path(value)
