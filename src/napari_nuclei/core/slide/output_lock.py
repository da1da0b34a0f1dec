"""One writer at a time for a predicted slide's outputs.

A write-back rewrites the labels, the table and the GeoJSON of an output folder; two
processes doing so at once would interleave their rewrites. The writer holds an OS file
lock on ``.edits.lock`` in the folder (released by the kernel when the process dies, so
a killed writer never leaves a stale lock, as training runs lock their folder); a second
writer is refused with one line naming the holder.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from ..folder_lock import lock_file, lock_owner, record_owner

LOCK_NAME = ".edits.lock"
# Folders this thread holds: a writer that opens the output again must not lock itself out.
_held = threading.local()


class OutputBusy(InputError):
    """Another process (or thread) is writing to the slide output."""


@contextlib.contextmanager
def hold_output(out_dir: str | Path) -> Iterator[Path]:
    """Be the only writer of a slide output folder for the duration of the block.

    Raises
    ------
    OutputBusy
        When another process or thread holds the folder (its process and host named).
    """
    out_dir = Path(out_dir).expanduser().resolve()
    held = _held.__dict__.setdefault("folders", set())
    if out_dir in held:
        yield out_dir
        return
    lock_path = out_dir / LOCK_NAME
    with open(lock_path, "a+", encoding="utf-8") as fh:
        if not lock_file(fh):
            raise OutputBusy(out_dir, f"is being written by {lock_owner(lock_path)}: wait for "
                             "its write-back to finish, then pull the window again")
        record_owner(fh)
        held.add(out_dir)
        try:
            yield out_dir
        finally:
            held.discard(out_dir)
