"""Checked values of command-line options, refused by argparse with one line.

Each function builds an argparse ``type=`` that parses the text and checks its range, so
that ``--mpp nan``, ``--tile-size 0`` or ``--region 0,0,inf,10`` never reach the core:
the parser answers ``napari-nuclei predict-slide: error: argument --mpp: ...`` and exit
status 2 before anything is loaded or written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..core.jobs import usable_cores


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number within ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            within = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {within}, got {value}")
        return value

    return parse


def process_count(low: int) -> Callable[[str], int]:
    """A number of processes or threads this machine can run side by side: at most one
    per usable core (a process per image of a 100,000-image folder would exhaust it)."""
    return whole(low, usable_cores())


def number(low: float, high: float, low_included: bool = True,
           unit: str = "") -> Callable[[str], float]:
    """A finite number within ``[low, high]`` (``(low, high]`` unless ``low_included``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        inside = (low <= value if low_included else low < value) and value <= high
        if not math.isfinite(value) or not inside:
            opening = "[" if low_included else "("
            raise argparse.ArgumentTypeError(f"must be a number in {opening}{low:g}, "
                                             f"{high:g}]{unit}, got {text!r}")
        return value

    return parse


# Microscopy pixel sizes: electron microscopy to whole-organ scans, in µm per pixel.
pixel_size = number(0.0, 1000.0, low_included=False, unit=" µm/px")
score = number(0.0, 1.0)


def stain_vectors(text: str) -> tuple[float, ...]:
    """Six comma-separated optical densities: hematoxylin R,G,B then eosin R,G,B."""
    from ..core.slide.measure import check_stain_vectors

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants six numbers HR,HG,HB,ER,EG,EB, got "
                                         f"{text!r}") from None
    try:
        return check_stain_vectors(values)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None


def region(text: str) -> tuple[int, int, int, int]:
    """``x,y,w,h`` in level-0 pixels: four finite whole numbers, a positive size."""
    parts = text.split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) and v == int(v) for v in values):
        raise argparse.ArgumentTypeError(f"wants x,y,w,h: four whole numbers of level-0 "
                                         f"pixels, got {text!r}")
    x, y, w, h = (int(v) for v in values)
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"width and height must be positive, got {text!r}")
    return x, y, w, h


# Dask schedulers listen on TCP or TLS; other schemes (inproc, ucx) are not a cluster a
# command line can reach.
SCHEDULER_SCHEMES = ("tcp", "tls")


def scheduler_address(text: str) -> str:
    """A Dask scheduler address ``[tcp|tls://]HOST:PORT``, returned with its scheme."""
    scheme, sep, location = text.partition("://")
    if not sep:
        scheme, location = "tcp", text
    host, colon, port = location.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if (scheme not in SCHEDULER_SCHEMES or not colon or not host or "/" in location
            or not port.isdigit() or not 0 < int(port) < 65536):
        raise argparse.ArgumentTypeError(f"wants a scheduler address tcp://HOST:PORT (or "
                                         f"tls://HOST:PORT), got {text!r}")
    return f"{scheme}://{location}"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (the usage is in ``--help``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
