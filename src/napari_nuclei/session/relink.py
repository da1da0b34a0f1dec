"""A data folder moved: the session's images found again at its new place (no Qt).

A session names each image by its file. When the test or training folder was moved or
copied elsewhere (another computer, a renamed drive) and the user chooses its new
place, each image that is gone from the old folder is looked for at the same place
under the new one, and taken from there when it is the same image: a file of the size
its prediction was made at.
"""

from __future__ import annotations

from pathlib import Path


def moved_image(path: Path | None, old: Path | None, new: Path | None,
                size: tuple[int, int]) -> Path | None:
    """Where an image that lay in folder ``old`` lies under folder ``new``.

    Parameters
    ----------
    path : Path or None
        The image's file as the session names it.
    old, new : Path or None
        The folder before and after the user chose another one.
    size : tuple of int
        ``(height, width)`` of the image's prediction.

    Returns
    -------
    Path or None
        The file at the same place under ``new``; None when the image is still where it
        was, did not lie in ``old``, or has no file of its size under ``new``.
    """
    from ..core.errors import InputError
    from ..core.image_io import image_size

    if path is None or old is None or new is None or Path(path).exists():
        return None
    try:
        relative = Path(path).relative_to(old)
    except ValueError:
        return None
    candidate = Path(new) / relative
    if candidate.is_symlink() or not candidate.is_file():
        return None
    try:
        found = tuple(image_size(candidate))
    except (InputError, OSError):
        return None
    return candidate if found[:2] == tuple(size) else None
