"""OS file locks on a folder's lock file, released by the kernel when the holder dies.

Training runs lock their run folder and slide outputs their output folder with these, so
a killed writer never leaves a stale lock; the lock file records its holder for the
message a second writer gets.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def lock_file(fh) -> bool:
    """Take an exclusive, non-blocking lock on an open file; False when someone holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def record_owner(fh) -> None:
    """Write who holds a lock into its (locked) file, for the message a second writer gets."""
    fh.seek(0)
    fh.truncate()
    fh.write(f"process {os.getpid()} on {socket.gethostname()}\n")
    fh.flush()


def lock_owner(lock_path: Path) -> str:
    """Who holds a lock, as its file records it (for a message; never parsed)."""
    try:
        return lock_path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"
