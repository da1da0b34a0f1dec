"""What a newer file or folder replaces is moved aside into a dated folder, never deleted.

Corrections, masks drawn by hand and training samples are the user's work: when the dock
replaces one, the old one stays on disk under ``<root>/<YYYYmmdd-HHMMSS>/``, where the
user can take it back from.
"""

from __future__ import annotations

import time
from pathlib import Path


def stamp() -> str:
    """The name of a dated folder made now (local time, to the second)."""
    return time.strftime("%Y%m%d-%H%M%S")


def move_aside(path: Path, root: Path, when: str | None = None) -> Path:
    """Move a file or folder into ``root/<when>/``, under a free name.

    ``root`` lies on the same file system as ``path`` (beside it), so the move is a
    rename: it cannot leave half a folder behind.

    Parameters
    ----------
    path : Path
        The file or folder replaced.
    root : Path
        Where dated folders of replaced things are kept.
    when : str, optional
        The dated folder's name (default: now); one batch of replacements shares one.

    Returns
    -------
    Path
        Where it is now.
    """
    folder = Path(root) / (when or stamp())
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(path)
    target, number = folder / path.name, 2
    # The same name replaced twice within a second: the earlier one keeps its place.
    while target.exists() or target.is_symlink():
        target = folder / f"{path.stem}-{number}{path.suffix}"
        number += 1
    path.rename(target)
    return target


def replace_keeping_old(built: Path, target: Path, root: Path, when: str | None = None) -> Path:
    """Put ``built`` (a finished file or folder) at ``target``, moving what was there into
    ``root/<when>/`` first (:func:`move_aside`); if the final rename fails, the old one
    goes back where it was.

    Returns
    -------
    Path
        ``target``.
    """
    aside = None
    if target.exists() or target.is_symlink():
        aside = move_aside(target, root, when)
    try:
        built.rename(target)
    except OSError:
        if aside is not None:  # the old one goes back where it was
            aside.rename(target)
        raise
    return target
