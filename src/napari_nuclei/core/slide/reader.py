"""Open whole-slide images and read regions of them lazily, whatever the format.

Pyramidal TIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI and the other formats tiffslide
reads go through tiffslide; OpenSlide (an optional extra) takes what tiffslide cannot
read; OME-Zarr image folders and plain TIFF/PNG/JPEG files are read too. Every reader
returns RGB uint8 regions and reads only the tiles a region touches (plain PNG/JPEG files
cannot be read in parts and are decoded once).

Every slide is checked against its header before any pixel is read: the declared level-0
size against the slide limit, the size of the blocks each level is stored in (decoded
whole whatever part of them is read) against the image limit, and, for TIFF files, the
declared tiles against the bytes the file holds.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..validate.fields import InvalidValue
from ..validate.limits import check_slide_pixels, max_pixels
from .pixels import SAMPLE_SIDE, PixelConversion, PixelProblem, conversion_of

SUPPORTED = ("pyramidal TIFF/OME-TIFF, Aperio SVS, Hamamatsu NDPI, Leica SCN and other "
             "formats tiffslide reads; other OpenSlide formats (MIRAX, Ventana, ...) when "
             "openslide-python is installed; OME-Zarr image folders; plain TIFF, PNG or JPEG")
_PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
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


class TiffSlideReader(Slide):
    """Slides read by tiffslide (pure Python over tifffile)."""

    backend = "tiffslide"

    def __init__(self, path: Path):
        import tiffslide

        # Opened here, so that it is closed when tiffslide refuses the file (it leaves the
        # files it opened itself open then).
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._slide = tiffslide.TiffSlide(self._file)
            levels = [Level(int(w), int(h), float(d)) for (w, h), d in
                      zip(self._slide.level_dimensions, self._slide.level_downsamples,
                          strict=True)]
            super().__init__(path, levels,
                             positive_number(self._slide.properties.get("tiffslide.mpp-x")))
            self._check_tiles()
        except BaseException:
            self.close()
            raise

    def _pages(self):
        return [level.keyframe for level in self._slide.ts_tifffile.series[0].levels]

    def _check_tiles(self) -> None:
        """Refuse a file whose tiles do not hold the size it declares (truncated or
        damaged): missing tiles would be read as blank, and a huge declared size as hours
        of blank reading."""
        file_size = os.fstat(self._file.fileno()).st_size
        for level, page in enumerate(self._pages()):
            size = self.levels[level] if level < len(self.levels) else None
            declared = f"{size.width}x{size.height} pixels " if size else ""
            unit = "tiles" if page.is_tiled else "strips"
            expected = math.prod(page.chunked)
            if len(page.dataoffsets) < expected:
                raise SlideError(self.path, f"level {level} declares {declared}in {expected} "
                                 f"{unit} but the file holds {len(page.dataoffsets)}: it is "
                                 "truncated or damaged")
            counts = np.asarray(page.databytecounts, np.int64)
            ends = np.asarray(page.dataoffsets, np.int64) + counts
            # Empty tiles (no bytes) are allowed, and read as blank, where some hold data.
            if expected and not counts.any():
                raise SlideError(self.path, f"level {level} declares {declared}in {expected} "
                                 f"{unit} but none of them holds data")
            beyond = np.flatnonzero((counts > 0) & (ends > file_size))
            if beyond.size:
                x, y = self._chunk_corner(page, int(beyond[0]))
                raise SlideError(self.path, f"the data of the {unit[:-1]} at x={x}, y={y} (level "
                                 f"{level}) runs to byte {int(ends[beyond[0]]):,} but the "
                                 f"file ends at byte {file_size:,}: it is truncated")

    @staticmethod
    def _chunk_corner(page, index: int) -> tuple[int, int]:
        """The corner, in the level's pixels, of the tile or strip stored at ``index``."""
        if not page.is_tiled:
            strips = -(-page.imagelength // page.rowsperstrip)
            return 0, (index % strips) * page.rowsperstrip
        columns = -(-page.imagewidth // page.tilewidth)
        rows = -(-page.imagelength // page.tilelength)
        index %= rows * columns  # planes stored one after the other
        return (index % columns) * page.tilewidth, (index // columns) * page.tilelength

    def block_sizes(self):
        return [(page.tilewidth, page.tilelength) if page.is_tiled
                else (page.imagewidth, page.rowsperstrip) for page in self._pages()]

    def _tile_of(self, level, x, y, width, height, exc):
        import zarr

        try:
            group = self._slide.ts_zarr_grp
            array = group if isinstance(group, zarr.Array) else group[str(level)]
            tile_h, tile_w = array.chunks[:2]
        except Exception:  # not a tiled layout tiffslide exposes: name the region
            return x, y
        # Decode the stored tiles under the region one by one; the first that fails.
        left, top = x // tile_w, y // tile_h
        right = min(-(-(x + width) // tile_w), -(-array.shape[1] // tile_w))
        bottom = min(-(-(y + height) // tile_h), -(-array.shape[0] // tile_h))
        for row in range(top, bottom):
            for col in range(left, right):
                try:
                    array[row * tile_h : (row + 1) * tile_h, col * tile_w : (col + 1) * tile_w]
                except Exception:
                    return col * tile_w, row * tile_h
        return x, y

    def palette(self):
        page = self._pages()[0]
        return page.colormap if page.photometric == 3 else None  # 3: PALETTE

    def stored(self):
        series = self._slide.ts_tifffile.series[0]
        channels = series.shape[series.axes.index("S")] if "S" in series.axes else 1
        return series.dtype, channels

    def _read(self, level, x, y, width, height):
        scale = self.levels[level].downsample
        location = (int(round(x * scale)), int(round(y * scale)))
        return self._slide.read_region(location, level, (width, height), as_array=True,
                                       padding=False)

    def close(self):
        if getattr(self, "_slide", None) is not None:
            self._slide.close()
        self._file.close()


class OpenSlideReader(Slide):
    """Slides read by OpenSlide (``pip install openslide-python openslide-bin``)."""

    backend = "openslide"

    def __init__(self, path: Path):
        import openslide

        self._slide = openslide.OpenSlide(str(path))
        levels = [Level(int(w), int(h), float(d)) for (w, h), d in
                  zip(self._slide.level_dimensions, self._slide.level_downsamples, strict=True)]
        mpp = positive_number(self._slide.properties.get(openslide.PROPERTY_NAME_MPP_X))
        try:
            super().__init__(path, levels, mpp)
        except BaseException:  # refused by its declared size: the file is not kept open
            self.close()
            raise

    def _read(self, level, x, y, width, height):
        scale = self.levels[level].downsample
        location = (int(round(x * scale)), int(round(y * scale)))
        rgba = np.asarray(self._slide.read_region(location, level, (width, height)))
        # OpenSlide returns premultiplied RGBA: transparent (empty) areas become white.
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255
        return (rgba[:, :, :3] + (1 - alpha) * PAD_VALUE).clip(0, 255).astype(np.uint8)

    def close(self):
        self._slide.close()

    def stored(self):
        return np.dtype(np.uint8), 3  # _read composes RGB from OpenSlide's RGBA


def open_slide(path: str | Path, backend: str = "auto") -> Slide:
    """Open a slide for lazy reading.

    Parameters
    ----------
    path : str or Path
        A slide file, an OME-Zarr folder, or a plain TIFF/PNG/JPEG image.
    backend : str
        ``auto`` (tiffslide, then OpenSlide, then the plain readers), ``tiffslide``,
        ``openslide``, ``ome-zarr`` or ``image``.

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        When the path does not exist or is not a slide any reader understands.
    """
    from .array_slides import open_ome_zarr, open_plain_image, open_plain_tiff

    path = Path(path).expanduser()
    if not path.exists():
        raise SlideError(path, "no such slide file or folder")
    suffix = path.suffix.lower()
    openers = []
    if path.is_dir() or backend == "ome-zarr":
        if not ((path / "zarr.json").exists() or (path / ".zattrs").exists()):
            raise SlideError(path, f"is a folder but not an OME-Zarr image; supported: "
                             f"{SUPPORTED}")
        openers = [open_ome_zarr]
    elif backend in ("auto", "image") and suffix in _PLAIN_SUFFIXES:
        openers = [open_plain_image]
    elif backend == "auto":
        openers = [TiffSlideReader, OpenSlideReader, open_plain_tiff]
    else:
        openers = {"tiffslide": [TiffSlideReader], "openslide": [OpenSlideReader],
                   "image": [open_plain_tiff]}[backend]
    for opener in openers:
        try:
            slide = opener(path)
        except ImportError:
            continue  # an optional reader that is not installed
        except InputError:
            raise
        except PixelProblem as exc:
            raise SlideError(path, str(exc)) from None
        except Exception:  # each library raises its own types for foreign files
            continue
        if slide.width > 0 and slide.height > 0:
            _check_blocks(slide)
            return _with_conversion(slide)
        slide.close()
    raise SlideError(path, f"is not a slide or image that can be read; supported: {SUPPORTED}")


def _check_blocks(slide: Slide) -> None:
    """Refuse a slide with a level stored in blocks larger than the image limit: reading
    any part of such a level decodes a whole block (a one-strip TIFF: the whole level).

    The smallest level is checked first: the overview is read from it or a larger one.
    """
    limit = max_pixels()
    blocks = slide.block_sizes()
    smallest = len(slide.levels) - 1
    for level in (smallest, *range(smallest)):
        if level >= len(blocks) or blocks[level] is None:
            continue
        size = slide.levels[level]
        width, height = min(blocks[level][0], size.width), min(blocks[level][1], size.height)
        if width * height <= limit:
            continue
        blocks_of = ("in one block" if (width, height) == (size.width, size.height)
                     else f"in blocks of {width}x{height} pixels")
        slide.close()
        if level == smallest:
            problem = (f"its smallest level, {level} ({size.width}x{size.height} pixels), is "
                       f"stored {blocks_of} decoded whole: too large to hold as an overview "
                       f"(the image limit is {limit:,} pixels; raise it with --max-pixels)")
        else:
            problem = (f"level {level} ({size.width}x{size.height} pixels) is stored "
                       f"{blocks_of} decoded whole: reading any part of it holds more than "
                       f"the image limit of {limit:,} pixels (raise it with --max-pixels)")
        raise SlideError(slide.path, problem)


def _with_conversion(slide: Slide) -> Slide:
    """Decide, from a sample of its pixels, how every region of the slide becomes RGB."""
    try:
        slide.conversion = conversion_of(*slide.stored(), slide.palette(), slide.sample)
    except PixelProblem as exc:
        slide.close()
        raise SlideError(slide.path, str(exc)) from None
    except BaseException:
        slide.close()
        raise
    return slide
