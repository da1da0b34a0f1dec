"""Read ahead in a background thread, a bounded number of items at a time.

Reading and decoding slide tiles (JPEG, resampling) releases the GIL in the codecs, so a
thread can prepare the next tiles while the network works on the current ones. The queue
is bounded: memory holds at most ``depth`` tiles read ahead whatever the slide size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Value = TypeVar("Value")

# How often a blocked reader looks whether the consumer has stopped (seconds).
_POLL = 0.1


def prefetch(read: Callable[[Item], Value], items: Sequence[Item],
             depth: int = 2) -> Generator[tuple[Item, Value], None, None]:
    """Yield ``(item, read(item))`` in order, reading up to ``depth`` items ahead.

    An exception raised by ``read`` is raised here, at its item. Closing the generator
    stops the thread before it reads another item.

    Parameters
    ----------
    read : callable
        Called in the background thread, one item at a time.
    items : sequence
    depth : int
        Items read ahead at most (at least 1).
    """
    results: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work() -> None:
        for item in items:
            if stop.is_set():
                return
            try:
                entry = (item, read(item), None)
            except BaseException as exc:  # handed to the consumer, raised there
                entry = (item, None, exc)
            while not stop.is_set():
                try:
                    results.put(entry, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            if entry[2] is not None:
                return

    thread = threading.Thread(target=work, name="slide-prefetch", daemon=True)
    thread.start()
    try:
        for _ in range(len(items)):
            item, value, error = results.get()
            if error is not None:
                raise error
            yield item, value
    finally:
        stop.set()
        thread.join()

