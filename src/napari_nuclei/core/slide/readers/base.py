"""What every slide reader is: a :class:`Slide` with its levels and pixel size, read in
RGB uint8 regions padded with white past its edges; each library's reader fills in how
its stored pixels are decoded.

The declared level-0 size is checked against the slide limit when a reader is made,
before any reader allocates a buffer sized by it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...validate.fields import InvalidValue
from ...validate.limits import check_slide_pixels
from ..pixels import SAMPLE_SIDE, PixelConversion

# Outside the slide, regions are padded with white (background for brightfield stains).
PAD_VALUE = 255


class SlideError(InputError):
    """A slide that cannot be opened or read."""


@dataclass(frozen=True)
class Level:
    """One resolution level: its size and its downsample factor from level 0."""

    width: int
    height: int
    downsample: float


class Slide:
    """A whole-slide image opened for lazy reading; subclasses wrap one library.

    Attributes
    ----------
    path : Path
        The file or folder.
    levels : list of Level
        Level 0 (full resolution) first.
    mpp : float or None
        Microns per pixel at level 0, when the file says.
    backend : str
        The library reading it.
    """

    backend = ""

    def __init__(self, path: Path, levels: list[Level], mpp: float | None):
        self.path = path
        self.levels = levels
        self.mpp = mpp
        if levels:
            # From the header, before any reader allocates a buffer sized by it.
            try:
                check_slide_pixels(levels[0].width, levels[0].height)
            except InvalidValue as exc:
                raise SlideError(path, str(exc)) from None
        # Set by open_slide from a sample of the pixels: the same for every region read.
        self.conversion = PixelConversion(3)
        # A prefetching thread and the measuring of finished tiles read at once; the
        # libraries' file handles are not safe to share between threads.
        self._read_lock = threading.Lock()

    @property
    def width(self) -> int:
        return self.levels[0].width

    @property
    def height(self) -> int:
        return self.levels[0].height

    def read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """An RGB uint8 region, padded with white where it extends past the slide.

        Parameters
        ----------
        level : int
            Resolution level.
        x, y : int
            Top-left corner in that level's pixels (may be negative).
        width, height : int
            Region size in that level's pixels.

        Returns
        -------
        numpy.ndarray
            ``(height, width, 3)`` uint8.

        Raises
        ------
        SlideError
            When the level does not exist, the region lies wholly outside the slide, or
            the tiles under it cannot be decoded.
        """
        if not 0 <= level < len(self.levels):
            raise SlideError(self.path, f"level {level} does not exist (the slide has "
                             f"{len(self.levels)} level(s), 0 to {len(self.levels) - 1})")
        size = self.levels[level]
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, size.width), min(y + height, size.height)
        if x1 <= x0 or y1 <= y0:
            raise SlideError(self.path, f"region x={x}, y={y}, {width}x{height} lies outside "
                             f"level {level} ({size.width}x{size.height})")
        with self._read_lock:
            decoded = self._decoded(level, x0, y0, x1 - x0, y1 - y0)
        pixels = self.conversion(decoded)
        if (x0, y0, x1, y1) == (x, y, x + width, y + height):
            return pixels
        region = np.full((height, width, 3), PAD_VALUE, np.uint8)
        region[y0 - y : y1 - y, x0 - x : x1 - x] = pixels
        return region

    def _decoded(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """The stored pixels of a region inside the level; a damaged tile is named."""
        try:
            return self._read(level, x, y, width, height)
        except InputError:
            raise
        except Exception as exc:  # decoders raise many types for damaged tiles
            tile = self._tile_of(level, x, y, width, height, exc)
            raise SlideError(self.path, f"the tile at x={tile[0]}, y={tile[1]} (level "
                             f"{level}) cannot be decoded ({type(exc).__name__}: "
                             f"{exc})") from None

    def _tile_of(self, level: int, x: int, y: int, width: int, height: int,
                 exc: Exception) -> tuple[int, int]:
        """The corner of the stored tile that fails within a region (the region's own
        corner when the format does not say where its tiles are)."""
        return x, y

    def sample(self) -> np.ndarray:
        """Stored pixels of the centre of the smallest level, as the reader returns them."""
        level = len(self.levels) - 1
        size = self.levels[level]
        width, height = min(size.width, SAMPLE_SIDE), min(size.height, SAMPLE_SIDE)
        return np.asarray(self._decoded(level, (size.width - width) // 2,
                                        (size.height - height) // 2, width, height))

    def palette(self) -> np.ndarray | None:
        """The colour map of a palette image, None for others."""
        return None

    def block_sizes(self) -> list[tuple[int, int] | None]:
        """Per level, the ``(width, height)`` of the blocks (tiles, strips, chunks) its
        pixels are stored in, each decoded whole when any part of it is read; None where
        the format does not say (subclasses read them from the file's metadata)."""
        return [None] * len(self.levels)

    def stored(self) -> tuple[np.dtype, int]:
        """The stored values' type and channels per pixel (subclasses read them from the
        file's metadata; this default reads a sample)."""
        sample = self.sample()
        return sample.dtype, 1 if sample.ndim == 2 else sample.shape[2]

    def best_level(self, downsample: float) -> int:
        """The smallest level whose downsample does not exceed ``downsample``."""
        candidates = [i for i, lv in enumerate(self.levels) if lv.downsample <= downsample + 1e-6]
        return max(candidates, key=lambda i: self.levels[i].downsample) if candidates else 0

    def close(self) -> None:
        """Release the file handles."""

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        raise NotImplementedError

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def positive_number(value) -> float | None:
    """``value`` as a finite positive number (a pixel size), or None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None
