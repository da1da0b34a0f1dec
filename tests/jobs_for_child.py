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
