"""Open whole-slide images and read regions of them lazily, whatever the format.

Pyramidal TIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI and the other formats tiffslide
reads go through tiffslide; OpenSlide (an optional extra) takes what tiffslide cannot
read; OME-Zarr image folders and plain TIFF/PNG/JPEG files are read too. Every reader
returns RGB uint8 regions and reads only the tiles a region touches (plain PNG/JPEG files
cannot be read in parts and are decoded once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

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
        try:
            pixels = self._read(level, x0, y0, x1 - x0, y1 - y0)
        except InputError:
            raise
        except Exception as exc:  # decoders raise many types for damaged tiles
            raise SlideError(self.path, f"the tile at x={x0}, y={y0} (level {level}) cannot "
                             f"be decoded ({type(exc).__name__}: {exc})") from None
        pixels = _as_rgb8(pixels)
        if (x0, y0, x1, y1) == (x, y, x + width, y + height):
            return pixels
        region = np.full((height, width, 3), PAD_VALUE, np.uint8)
        region[y0 - y : y1 - y, x0 - x : x1 - x] = pixels
        return region

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


def _as_rgb8(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.dtype != np.uint8:
        from ..normalize import to_uint8

        pixels = to_uint8(pixels)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _positive(value) -> float | None:
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

        self._slide = tiffslide.TiffSlide(str(path))
        levels = [Level(int(w), int(h), float(d)) for (w, h), d in
                  zip(self._slide.level_dimensions, self._slide.level_downsamples, strict=True)]
        super().__init__(path, levels, _positive(self._slide.properties.get("tiffslide.mpp-x")))

    def _read(self, level, x, y, width, height):
        scale = self.levels[level].downsample
        location = (int(round(x * scale)), int(round(y * scale)))
        return self._slide.read_region(location, level, (width, height), as_array=True,
                                       padding=False)

    def close(self):
        self._slide.close()


class OpenSlideReader(Slide):
    """Slides read by OpenSlide (``pip install openslide-python openslide-bin``)."""

    backend = "openslide"

    def __init__(self, path: Path):
        import openslide

        self._slide = openslide.OpenSlide(str(path))
        levels = [Level(int(w), int(h), float(d)) for (w, h), d in
                  zip(self._slide.level_dimensions, self._slide.level_downsamples, strict=True)]
        mpp = _positive(self._slide.properties.get(openslide.PROPERTY_NAME_MPP_X))
        super().__init__(path, levels, mpp)

    def _read(self, level, x, y, width, height):
        scale = self.levels[level].downsample
        location = (int(round(x * scale)), int(round(y * scale)))
        rgba = np.asarray(self._slide.read_region(location, level, (width, height)))
        # OpenSlide returns premultiplied RGBA: transparent (empty) areas become white.
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255
        return (rgba[:, :, :3] + (1 - alpha) * PAD_VALUE).clip(0, 255).astype(np.uint8)

    def close(self):
        self._slide.close()


class ArraySlide(Slide):
    """A pyramid of array-likes indexed ``[y, x(, c)]`` (zarr arrays, tifffile stores,
    or one in-memory image)."""

    def __init__(self, path: Path, arrays: list, mpp: float | None, backend: str,
                 channel_axis_first: bool = False, store=None):
        self.backend = backend
        self._arrays = arrays
        self._store = store
        self._channel_first = channel_axis_first
        shapes = [a.shape[1:3] if channel_axis_first else a.shape[:2] for a in arrays]
        levels = [Level(int(w), int(h), shapes[0][1] / w) for h, w in shapes]
        super().__init__(path, levels, mpp)

    def _read(self, level, x, y, width, height):
        array = self._arrays[level]
        if self._channel_first:
            return np.moveaxis(np.asarray(array[:, y : y + height, x : x + width]), 0, -1)
        return np.asarray(array[y : y + height, x : x + width])

    def close(self):
        if self._store is not None:
            self._store.close()


def _open_ome_zarr(path: Path) -> ArraySlide:
    import zarr

    group = zarr.open_group(str(path), mode="r")
    attrs = dict(group.attrs)
    multiscales = attrs.get("ome", attrs).get("multiscales")
    if not multiscales:
        raise SlideError(path, "is a Zarr folder without OME-Zarr multiscales metadata")
    first = multiscales[0]
    axes = [a["name"] if isinstance(a, dict) else a for a in first.get("axes", "tczyx"[-5:])]
    arrays, mpp = [], None
    for dataset in first["datasets"]:
        array = group[dataset["path"]]
        index = tuple(slice(None) if name in "yxc" else 0 for name in axes)
        arrays.append(_Indexed(array, index, [n for n in axes if n in "yxc"]))
    for transform in first["datasets"][0].get("coordinateTransformations", []):
        if transform.get("type") == "scale" and "x" in axes:
            unit = next((a.get("unit") for a in first.get("axes", [])
                         if isinstance(a, dict) and a.get("name") == "x"), None)
            if unit in ("micrometer", "micron", None):
                mpp = _positive(transform["scale"][axes.index("x")]) if unit else None
    channel_first = arrays[0].axes.index("c") == 0 if "c" in arrays[0].axes else False
    return ArraySlide(path, arrays, mpp, "ome-zarr", channel_axis_first=channel_first)


class _Indexed:
    """An array seen through a fixed index on its non-spatial axes (t, z)."""

    def __init__(self, array, index, axes):
        self._array, self._index, self.axes = array, index, axes
        self.shape = tuple(n for n, i in zip(array.shape, index, strict=True)
                           if isinstance(i, slice))
        if "c" not in axes:
            self.shape = (*self.shape, 1)

    def __getitem__(self, key):
        full, parts = [], iter(key)
        for i in self._index:
            full.append(next(parts, slice(None)) if isinstance(i, slice) else i)
        return self._array[tuple(full)]


def _open_plain_tiff(path: Path) -> ArraySlide:
    import tifffile
    import zarr

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes = series.axes
    store = tifffile.imread(path, aszarr=True)
    group_or_array = zarr.open(store, mode="r")
    arrays = ([group_or_array[k] for k in sorted(group_or_array.array_keys(), key=int)]
              if isinstance(group_or_array, zarr.Group) else [group_or_array])
    channel_first = axes.startswith(("C", "S")) and axes not in ("YXS", "YX")
    return ArraySlide(path, arrays, None, "tifffile", channel_axis_first=channel_first,
                      store=store)


def _open_plain_image(path: Path) -> ArraySlide:
    from ..image_io import read_image

    image = read_image(path)
    return ArraySlide(path, [image if image.ndim == 3 else image[:, :, None]], None, "image")


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
    path = Path(path).expanduser()
    if not path.exists():
        raise SlideError(path, "no such slide file or folder")
    if path.is_dir() or backend == "ome-zarr":
        if not ((path / "zarr.json").exists() or (path / ".zattrs").exists()):
            raise SlideError(path, f"is a folder but not an OME-Zarr image; supported: "
                             f"{SUPPORTED}")
        return _open_ome_zarr(path)
    suffix = path.suffix.lower()
    openers = []
    if backend in ("auto", "image") and suffix in _PLAIN_SUFFIXES:
        openers = [_open_plain_image]
    elif backend == "auto":
        openers = [TiffSlideReader, OpenSlideReader, _open_plain_tiff]
    else:
        openers = {"tiffslide": [TiffSlideReader], "openslide": [OpenSlideReader],
                   "image": [_open_plain_tiff]}[backend]
    problems = []
    for opener in openers:
        try:
            slide = opener(path)
        except ImportError:
            continue  # an optional reader that is not installed
        except InputError:
            raise
        except Exception as exc:  # each library raises its own types for foreign files
            problems.append(f"{type(exc).__name__}")
            continue
        if slide.width > 0 and slide.height > 0:
            return slide
    raise SlideError(path, f"is not a slide or image that can be read; supported: {SUPPORTED}")
