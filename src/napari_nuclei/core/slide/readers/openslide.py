"""Slides read by OpenSlide (an optional extra): the formats tiffslide cannot read, such
as MIRAX, Hamamatsu VMS or Ventana."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import PAD_VALUE, Level, Slide, positive_number


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
