"""Write output files atomically so that a failed or stopped job never leaves half a file."""

from __future__ import annotations

import contextlib
import errno
import glob
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
# Temporary files are ".<output name>.<writer's pid>.<random>.part" beside the output.
_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".part"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Delete temporary files of ``path`` left by writers that no longer run.

    A writer killed mid-write (SIGKILL, power loss) cannot clean up after itself; its
    temporary file names its process, so the next writer of the same output removes it.

    Parameters
    ----------
    path : str or Path
        The final output file.

    Returns
    -------
    list of Path
        The files removed.
    """
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f"{glob.escape(_TEMP_PREFIX + path.name)}.*{_TEMP_SUFFIX}"):
        owner = stale.name[len(_TEMP_PREFIX + path.name) + 1:].split(".", 1)[0]
        if owner.isdigit() and _process_alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


def remove_stale_temp_files_in(folder: str | Path) -> list[Path]:
    """Delete every temporary file in ``folder`` left by writers that no longer run.

    For folders of many outputs written with ``atomic_path(..., clean_stale=False)``:
    one scan of the folder when a job starts instead of one per file written.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    for stale in Path(folder).glob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
        fields = stale.name[: -len(_TEMP_SUFFIX)].rsplit(".", 2)
        if len(fields) < 3 or not fields[1].isdigit() or _process_alive(int(fields[1])):
            continue
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path, clean_stale: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Parameters
    ----------
    path : str or Path
        The final output file. Its folder is created if needed.
    clean_stale : bool
        First remove temporary files of ``path`` left by dead writers. That scans the
        folder: writers of thousands of files in one folder pass False and call
        :func:`remove_stale_temp_files_in` once instead.

    Yields
    ------
    Path
        A temporary file in the same folder (so the rename is atomic) to write to.
        If the block raises, or is interrupted, the temporary file is removed and
        ``path`` is left as it was. A full disk is reported against ``path`` itself.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean_stale:
        remove_stale_temp_files(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{_TEMP_PREFIX}{path.name}.{os.getpid()}.",
                                    suffix=_TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the usual mode for new files.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # Name the output the user asked for, not the hidden temporary file.
            raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(fh) -> None:
    """Flush a file object's buffers to the disk before it is renamed into place."""
    fh.flush()
    os.fsync(fh.fileno())


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
            fsync_file(fh)
    return Path(path)


def staging_folder(parent: str | Path, prefix: str) -> Path:
    """A new hidden folder in ``parent`` to build something in before it is renamed into
    place, with the mode a folder made there normally gets (the umask's).

    ``tempfile.mkdtemp`` makes folders only their owner may enter; renamed into a
    shared training set, such a sample would be unreadable to everyone else.
    """
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    staging.chmod(0o777 & ~_UMASK)
    return staging
