"""Write output files atomically so that a failed or stopped job never leaves half a file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Parameters
    ----------
    path : str or Path
        The final output file. Its folder is created if needed.

    Yields
    ------
    Path
        A temporary file in the same folder (so the rename is atomic) to write to.
        If the block raises, or is interrupted, the temporary file is removed and
        ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the usual mode for new files.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: str | Path, data: Any, indent: int | None = None) -> Path:
    """Serialise ``data`` as JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Output file.
    data : Any
        A JSON-serialisable object.
    indent : int, optional
        Pretty-print indentation; compact when ``None``.

    Returns
    -------
    Path
        The written file.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
