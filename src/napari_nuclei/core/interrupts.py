"""Writes that a second Ctrl-C must not cut in half.

The first Ctrl-C asks a long job to stop at its next step and write a checkpoint; a
second one means "abort now". Landing inside the checkpoint write, it would surface as an
error from deep inside torch's serializer instead of a stop. Code that writes such a file
holds interrupts with :func:`interrupts_held`; a signal handler that would raise
``KeyboardInterrupt`` asks :func:`hold_interrupt` first, and the interrupt is raised as
soon as the write is on disk, saying so (``KeyboardInterrupt("the checkpoint was written
first")``).

Signal handlers run in the main thread, between Python bytecodes, so the state needs no
lock: it is only ever touched from that thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class _HeldInterrupts:
    def __init__(self):
        self.depth = 0
        self.pending = False
        self.what = ""


_HELD = _HeldInterrupts()


@contextlib.contextmanager
def interrupts_held(what: str) -> Iterator[None]:
    """Keep a ``KeyboardInterrupt`` asked for by a signal handler until the block ends.

    Parameters
    ----------
    what : str
        What is being written, for the line the handler prints (``"the checkpoint"``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals never interrupt other threads
        return
    _HELD.depth += 1
    outer, _HELD.what = _HELD.what, what
    try:
        yield
    except BaseException:
        _HELD.depth -= 1
        _HELD.what = outer
        if _HELD.depth == 0:
            _HELD.pending = False
        raise
    _HELD.depth -= 1
    _HELD.what = outer
    if _HELD.depth == 0 and _HELD.pending:
        _HELD.pending = False
        raise KeyboardInterrupt(f"{what} was written first")


def hold_interrupt() -> str | None:
    """Called by a signal handler about to raise ``KeyboardInterrupt``.

    Returns
    -------
    str or None
        What is being written when the interrupt is held for the end of that write
        (the handler then returns instead of raising); None when nothing is.
    """
    if _HELD.depth == 0:
        return None
    _HELD.pending = True
    return _HELD.what
