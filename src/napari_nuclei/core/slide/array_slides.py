"""Slides read through array libraries: OME-Zarr folders and plain TIFF or image files.

Each level is an array-like indexed ``[y, x(, c)]`` (zarr arrays, tifffile's zarr store,
or one decoded image), seen as one 2-D plane whatever the file's other axes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .pixels import spatial_index
from .readers import Level, Slide, SlideError, positive_number


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
        try:
            super().__init__(path, levels, mpp)
        except BaseException:  # refused by its declared size: the store is not kept
            self.close()
            raise

    def block_sizes(self):
        sizes = []
        for array in self._arrays:
            chunks = getattr(array, "chunks", None)  # None for a decoded image
            if chunks is None:
                sizes.append(None)
                continue
            height, width = chunks[1:3] if self._channel_first else chunks[:2]
            sizes.append((int(width), int(height)))
        return sizes

    def stored(self):
        array = self._arrays[0]
        shape = array.shape
        channels = shape[0] if self._channel_first else (shape[2] if len(shape) > 2 else 1)
        return np.dtype(array.dtype), channels

    def _read(self, level, x, y, width, height):
        array = self._arrays[level]
        if self._channel_first:
            return np.moveaxis(np.asarray(array[:, y : y + height, x : x + width]), 0, -1)
        return np.asarray(array[y : y + height, x : x + width])

    def close(self):
        if self._store is not None:
            self._store.close()


def open_ome_zarr(path: Path) -> ArraySlide:
    """An OME-Zarr image folder (NGFF multiscales; its pixel size when in micrometres)."""
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
        index, kept = spatial_index("".join(axes), array.shape)
        arrays.append(_Indexed(array, index, list(kept)))
    for transform in first["datasets"][0].get("coordinateTransformations", []):
        if transform.get("type") == "scale" and "x" in axes:
            unit = next((a.get("unit") for a in first.get("axes", [])
                         if isinstance(a, dict) and a.get("name") == "x"), None)
            if unit in ("micrometer", "micron", None):
                mpp = positive_number(transform["scale"][axes.index("x")]) if unit else None
    channel_first = arrays[0].axes.index("c") == 0 if "c" in arrays[0].axes else False
    return ArraySlide(path, arrays, mpp, "ome-zarr", channel_axis_first=channel_first)


class _Indexed:
    """An array seen through a fixed index on its non-spatial axes (t, z)."""

    def __init__(self, array, index, axes):
        self._array, self._index, self.axes = array, index, axes
        self.dtype = array.dtype
        self.shape = tuple(n for n, i in zip(array.shape, index, strict=True)
                           if isinstance(i, slice))
        if "c" not in axes:
            self.shape = (*self.shape, 1)

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """The stored chunk shape on the axes kept, as :attr:`shape` orders them."""
        try:
            chunks = self._array.chunks
        except (AttributeError, NotImplementedError):  # irregular chunk grids
            return None
        kept = tuple(n for n, i in zip(chunks, self._index, strict=True)
                     if isinstance(i, slice))
        return kept if "c" in self.axes else (*kept, 1)

    def __getitem__(self, key):
        full, parts = [], iter(key)
        for i in self._index:
            full.append(next(parts, slice(None)) if isinstance(i, slice) else i)
        return self._array[tuple(full)]


def open_plain_tiff(path: Path) -> ArraySlide:
    """A TIFF that tiffslide and OpenSlide do not read, through tifffile's zarr store."""
    import tifffile
    import zarr

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        index, kept = spatial_index(series.axes, series.shape)
    store = tifffile.imread(path, aszarr=True)
    group_or_array = zarr.open(store, mode="r")
    arrays = ([group_or_array[k] for k in sorted(group_or_array.array_keys(), key=int)]
              if isinstance(group_or_array, zarr.Group) else [group_or_array])
    arrays = [_Indexed(array, index, list(kept)) for array in arrays]
    return ArraySlide(path, arrays, None, "tifffile", channel_axis_first=kept.startswith("c"),
                      store=store)


def open_plain_image(path: Path) -> ArraySlide:
    """A PNG/JPEG/BMP file, decoded once (such files cannot be read in parts)."""
    from ..image_io import read_image

    image = read_image(path)
    return ArraySlide(path, [image if image.ndim == 3 else image[:, :, None]], None, "image")
