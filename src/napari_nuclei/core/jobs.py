"""Long jobs are generators that yield small progress reports.

The command line and the tests drain them synchronously with :func:`drain`; the GUI runs
the same generators in a napari ``thread_worker``. Closing the generator (which napari's
worker does when asked to quit, and which happens on Ctrl-C) stops the job at its next
yield; jobs clean up in ``finally`` blocks so nothing half-written is left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Notice:
    """Something the user should read (a fallback taken, a setting adjusted).

    Attributes
    ----------
    level : str
        ``info`` or ``warning``.
    message : str
        One line.
    """

    level: str
    message: str


@dataclass(frozen=True)
class StepProgress:
    """Progress of a job that works through a known number of items.

    Attributes
    ----------
    done : int
        Items finished so far.
    total : int
        Items in all.
    item : str
        Name of the item just finished (an image name, say).
    """

    done: int
    total: int
    item: str = ""


def drain(
    job: Generator[Any, None, R], on_report: Callable[[Any], None] | None = None
) -> R:
    """Run a job generator to the end and return its result.

    Parameters
    ----------
    job : Generator
        A job that yields reports and returns its result.
    on_report : callable, optional
        Called with each report as it arrives.

    Returns
    -------
    Any
        The job's return value.
    """
    try:
        while True:
            report = next(job)
            if on_report is not None:
                on_report(report)
    except StopIteration as finished:
        return finished.value
    finally:
        job.close()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it),
    the bound of every worker and thread count."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)
