"""Small job generators for the child-process tests (imported by name in the child)."""

import os

from napari_nuclei.core.errors import InputError


def count(n, stop=None):
    """Yield 0..n-1 and return their sum; with ``stop``, end early when it is set."""
    for i in range(n):
        if stop is not None and stop.is_set():
            return -1
        yield i
    return sum(range(n))


def endless():
    """Report forever (until stopped)."""
    i = 0
    while True:
        i += 1
        yield i


def bad_input(path):
    yield "started"
    raise InputError(path, "is not what this job wants")


def crash():
    import sys

    yield "started"
    print("last words before the crash", file=sys.stderr, flush=True)
    os._exit(3)


def _square(x, queue):
    queue.put(x * x)


def with_worker_process():
    """Start a process of its own, as training's data loaders do."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(target=_square, args=(7, queue))
    worker.start()
    yield "started"
    result = queue.get(timeout=60)
    worker.join()
    return result


def niceness():
    """Report this process's scheduling niceness."""
    yield os.nice(0)
