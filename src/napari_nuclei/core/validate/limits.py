"""How large an input may be before it is refused: a clear limit instead of an exhausted
memory or a crash inside a C library.

The limits live in environment variables so that worker processes see the value the
command line set. Images whose size is declared without pixels to check it against
(a ground-truth JSON whose images are absent, an RLE) and images whose header
announces more pixels than this are refused before anything is allocated. Whole slides
are read in tiles and have their own, much larger limit on the size their header
declares.
"""

from __future__ import annotations

import argparse
import os

from .fields import InvalidValue

MAX_PIXELS_ENV = "NAPARI_NUCLEI_MAX_PIXELS"
MAX_JSON_MB_ENV = "NAPARI_NUCLEI_MAX_JSON_MB"
MAX_SLIDE_PIXELS_ENV = "NAPARI_NUCLEI_MAX_SLIDE_PIXELS"
# 100 megapixels (10,000 x 10,000): far above single microscopy images, and evaluation's
# label images of that size still fit a laptop's memory. Whole slides are read in tiles.
DEFAULT_MAX_PIXELS = 100_000_000
# 200,000 x 200,000 at level 0: above the largest slides scanners make (about 150,000 px
# a side). A slide is read tile by tile, but the time to read it, its overview and its
# labels grow with this size; a header declaring more is a damaged or crafted file.
DEFAULT_MAX_SLIDE_PIXELS = 200_000 * 200_000
# Python needs about ten times a JSON file's size in memory once it is parsed.
DEFAULT_MAX_JSON_MB = 1024


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def max_pixels() -> int:
    """The largest image (height x width) accepted."""
    return _env_int(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def max_json_bytes() -> int:
    """The largest JSON file accepted, in bytes."""
    return _env_int(MAX_JSON_MB_ENV, DEFAULT_MAX_JSON_MB) * 1024 * 1024


def max_slide_pixels() -> int:
    """The largest whole slide (level-0 width x height) accepted."""
    return _env_int(MAX_SLIDE_PIXELS_ENV, DEFAULT_MAX_SLIDE_PIXELS)


def check_slide_pixels(width: int, height: int) -> None:
    """Refuse a slide whose level 0 is larger than :func:`max_slide_pixels`.

    Parameters
    ----------
    width, height : int
        Level-0 size as the file's header declares it.

    Raises
    ------
    InvalidValue
        Naming the declared size, the limit and how to raise it.
    """
    limit = max_slide_pixels()
    if width * height > limit:
        raise InvalidValue(
            f"declares {width}x{height} pixels (width x height) at level 0, more than the "
            f"slide limit of {limit:,} pixels (raise it with --max-slide-pixels or "
            f"{MAX_SLIDE_PIXELS_ENV})"
        )


def check_pixels(height: int, width: int, what: str = "image") -> None:
    """Refuse an image size above :func:`max_pixels`.

    Raises
    ------
    InvalidValue
        Naming the size, the limit and the option that raises it.
    """
    limit = max_pixels()
    if height * width > limit:
        raise InvalidValue(
            f"{what} of {height}x{width} pixels is larger than the limit of {limit:,} "
            "pixels (raise it with --max-pixels)"
        )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def add_limit_options(parser: argparse.ArgumentParser, slides: bool = False) -> None:
    """Add ``--max-pixels`` and ``--max-json-mb`` to a sub-command, and
    ``--max-slide-pixels`` to one that reads whole slides."""
    parser.add_argument(
        "--max-pixels", type=_positive_int, default=None,
        help=f"largest image (height x width) to accept (default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument(
        "--max-json-mb", type=_positive_int, default=None,
        help=f"largest JSON file to load, in MB (default {DEFAULT_MAX_JSON_MB})")
    if slides:
        parser.add_argument(
            "--max-slide-pixels", type=_positive_int, default=None,
            help="largest slide (level-0 width x height) to accept (default "
            f"{DEFAULT_MAX_SLIDE_PIXELS:,}: 200,000 x 200,000)")


def apply_limit_options(args: argparse.Namespace) -> None:
    """Make the limits given on the command line hold for this process and its workers."""
    if getattr(args, "max_pixels", None):
        os.environ[MAX_PIXELS_ENV] = str(args.max_pixels)
    if getattr(args, "max_json_mb", None):
        os.environ[MAX_JSON_MB_ENV] = str(args.max_json_mb)
    if getattr(args, "max_slide_pixels", None):
        os.environ[MAX_SLIDE_PIXELS_ENV] = str(args.max_slide_pixels)
