"""Write test slides: a pyramidal, tiled, JPEG-compressed TIFF built from one H&E tile.

The slide is a mosaic of blocks, each a flipped or rotated copy of the source tile or
blank background, written level by level as successive TIFF pages (level 0 with
``subfiletype=0``, the reduced levels with ``subfiletype=1``) with the resolution tags
set, so that tiffslide and OpenSlide both read every level and the pixel size. Tiles are
generated one at a time: a 16,000-pixel slide is written with a few megabytes of memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLOCK = 1024  # default mosaic block side at level 0 (a power of two: every level divides it)
TIFF_TILE = 256


class Mosaic:
    """The pixels of the test slide at any level, computed on demand.

    Parameters
    ----------
    source : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB tile (the bundled H&E tile).
    width, height : int
        Level-0 size.
    blank_fraction : float
        Share of blocks left as white background.
    seed : int
        Seed of the layout.
    block : int
        Block side at level 0, a power of two.
    background : int
        Grey value of blank blocks: 255 for a brightfield slide (glass), 0 for a
        fluorescence one (no signal).
    """

    def __init__(self, source: np.ndarray, width: int, height: int,
                 blank_fraction: float = 0.3, seed: int = 0, block: int = BLOCK,
                 background: int = 255):
        import cv2

        self.width, self.height, self.block = width, height, block
        self.background = background
        self._source = cv2.resize(source, (block, block), interpolation=cv2.INTER_AREA)
        rows, cols = -(-height // block), -(-width // block)
        rng = np.random.default_rng(seed)
        # Variant 0..7: 4 rotations x optional flip; -1: blank background.
        self._layout = rng.integers(0, 8, (rows, cols))
        blank = rng.random((rows, cols)) < blank_fraction
        self._layout[blank] = -1
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    @property
    def blank_share(self) -> float:
        return float((self._layout < 0).mean())

    def _block(self, variant: int, level: int) -> np.ndarray:
        import cv2

        key = (variant, level)
        if key not in self._cache:
            pixels = np.rot90(self._source, variant % 4)
            if variant >= 4:
                pixels = pixels[:, ::-1]
            side = self.block >> level
            self._cache[key] = cv2.resize(np.ascontiguousarray(pixels), (side, side),
                                          interpolation=cv2.INTER_AREA)
        return self._cache[key]

    def region(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """RGB pixels of a region at a level (background beyond the slide)."""
        side = self.block >> level
        out = np.full((height, width, 3), self.background, np.uint8)
        level_w, level_h = -(-self.width // (1 << level)), -(-self.height // (1 << level))
        for row in range(y // side, min(-(-(y + height) // side), self._layout.shape[0])):
            for col in range(x // side, min(-(-(x + width) // side), self._layout.shape[1])):
                variant = self._layout[row, col]
                if variant < 0:
                    continue
                block = self._block(int(variant), level)
                by0, bx0 = row * side, col * side
                y0, y1 = max(y, by0), min(y + height, by0 + side, level_h)
                x0, x1 = max(x, bx0), min(x + width, bx0 + side, level_w)
                if y1 > y0 and x1 > x0:
                    out[y0 - y : y1 - y, x0 - x : x1 - x] = block[y0 - by0 : y1 - by0,
                                                                  x0 - bx0 : x1 - bx0]
        return out


def write_test_slide(
    path: str | Path,
    source: np.ndarray,
    width: int,
    height: int | None = None,
    mpp: float = 0.25,
    blank_fraction: float = 0.3,
    min_level_side: int = 512,
    seed: int = 0,
    quality: int = 90,
    block: int = BLOCK,
    background: int = 255,
) -> Path:
    """Write a pyramidal tiled JPEG TIFF test slide.

    Parameters
    ----------
    path : str or Path
        Output ``.tif`` file.
    source : numpy.ndarray
        RGB uint8 tile the mosaic is made of.
    width, height : int
        Level-0 size (square when ``height`` is omitted).
    mpp : float
        Microns per pixel of level 0 (written as the resolution tags).
    blank_fraction : float
        Share of white background blocks.
    min_level_side : int
        Levels are halved until the next one would be smaller than this.
    seed : int
        Seed of the mosaic layout.
    quality : int
        JPEG quality.
    block : int
        Side of the mosaic's blocks at level 0 (a power of two).
    background : int
        Grey value of blank blocks (255 brightfield, 0 fluorescence).

    Returns
    -------
    Path
    """
    import tifffile

    height = height or width
    mosaic = Mosaic(source, width, height, blank_fraction, seed, block, background)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    level = 0
    with tifffile.TiffWriter(path, bigtiff=True) as tiff:
        while True:
            level_w, level_h = -(-width // (1 << level)), -(-height // (1 << level))
            pixels_per_cm = 1e4 / (mpp * (1 << level))

            def tiles(level=level, level_w=level_w, level_h=level_h):
                for y in range(0, level_h, TIFF_TILE):
                    for x in range(0, level_w, TIFF_TILE):
                        yield mosaic.region(level, x, y, TIFF_TILE, TIFF_TILE)

            tiff.write(tiles(), shape=(level_h, level_w, 3), dtype=np.uint8,
                       tile=(TIFF_TILE, TIFF_TILE), photometric="rgb",
                       compression="jpeg", compressionargs={"level": quality},
                       subfiletype=0 if level == 0 else 1,
                       resolution=(pixels_per_cm, pixels_per_cm), resolutionunit="CENTIMETER",
                       metadata=None)
            if min(level_w, level_h) // 2 < min_level_side:
                break
            level += 1
    return path
