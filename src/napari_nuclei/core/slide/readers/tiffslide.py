"""Slides read by tiffslide (pure Python over tifffile): pyramidal TIFF, OME-TIFF, Aperio
SVS, Hamamatsu NDPI, Leica SCN. A file whose tiles do not hold the size it declares is
refused when it is opened, and a tile that cannot be decoded is named by its corner."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .base import Level, Slide, SlideError, positive_number


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
