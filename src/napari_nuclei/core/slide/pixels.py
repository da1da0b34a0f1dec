"""How a slide's stored pixels become RGB uint8, decided once per slide.

A slide is predicted tile by tile, so every tile must be converted the same way: a
16-bit or float slide is scaled with one intensity range for the whole slide (taken
from a sample of its smallest level when it is opened), never stretched tile by tile,
which would give each tile its own contrast and the labels seams. Pixels that cannot be
a stained slide (2 or 5+ channels, 1-bit masks, NaN or infinite values) and files whose
planes are not one 2-D image (z-stacks, time series) are refused with one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Percentiles of the sample that set a non-8-bit slide's range: robust to hot pixels.
_LOW_PERCENTILE = 0.1
_HIGH_PERCENTILE = 99.9
# Side of the sample read from the smallest level when the slide is opened.
SAMPLE_SIDE = 512
CHANNELS = {1: "grey", 3: "RGB", 4: "RGBA"}


class PixelProblem(ValueError):
    """Stored pixels that are not a grey, RGB or RGBA image (the message says why)."""


@dataclass(frozen=True)
class PixelConversion:
    """Turns regions of one slide into RGB uint8, the same way for every region.

    Attributes
    ----------
    channels : int
        Channels per stored pixel (1, 3 or 4; the alpha of 4 is dropped).
    low, high : float
        Stored values mapped to 0 and 255 (``0, 255`` for 8-bit slides).
    lut : numpy.ndarray or None
        ``(n, 3)`` uint8 colours of a palette slide, indexed by the stored values.
    """

    channels: int
    low: float = 0.0
    high: float = 255.0
    lut: np.ndarray | None = None

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self.lut is not None:
            return np.ascontiguousarray(self.lut[pixels[:, :, 0]])
        if pixels.dtype != np.uint8:
            values = np.nan_to_num(pixels.astype(np.float32), nan=self.low,
                                   posinf=self.high, neginf=self.low)
            values = (values - self.low) * (255.0 / (self.high - self.low))
            pixels = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        return np.ascontiguousarray(pixels[:, :, :3])


def conversion_of(dtype, channels: int, palette: np.ndarray | None = None,
                  sample: Callable[[], np.ndarray] | None = None) -> PixelConversion:
    """Decide a slide's conversion from what it stores.

    Parameters
    ----------
    dtype : numpy.dtype
        The stored values' type.
    channels : int
        Values per pixel, as the reader returns them.
    palette : numpy.ndarray, optional
        The TIFF colour map ``(3, n)`` (uint16) of a palette slide.
    sample : callable, optional
        Returns stored pixels of the slide; read only for slides that are not 8-bit
        (their range), so that opening an 8-bit slide reads no pixels.

    Raises
    ------
    PixelProblem
        When the pixels are not those of a grey, RGB or RGBA image.
    """
    dtype = np.dtype(dtype)
    if channels not in CHANNELS:
        raise PixelProblem(f"holds {channels} channels per pixel; supported: grey (1), RGB "
                           "(3) or RGBA (4): save the stain's channels as an RGB image")
    if dtype == np.bool_:
        raise PixelProblem("holds 1-bit pixels (a mask?), not a stained image")
    if palette is not None:
        colours = np.asarray(palette)
        if colours.max() > 255:  # TIFF colour maps are 16-bit; some writers store 8
            colours = (colours.astype(np.float64) / 257).round()
        return PixelConversion(1, lut=np.ascontiguousarray(colours.T.astype(np.uint8)))
    if dtype == np.uint8:
        return PixelConversion(channels)
    if dtype.kind not in "uif":
        raise PixelProblem(f"holds pixels of type {dtype}; supported: integers or "
                           "floating point")
    if sample is None:
        raise ValueError("a slide that is not 8-bit needs a sample for its range")
    values = np.asarray(sample(), np.float64)
    if not np.isfinite(values).all():
        raise PixelProblem("holds NaN or infinite pixel values")
    low, high = np.percentile(values, (_LOW_PERCENTILE, _HIGH_PERCENTILE))
    return PixelConversion(channels, float(low), float(high if high > low else low + 1))


def spatial_index(axes: str, shape: tuple[int, ...]) -> tuple[tuple, str]:
    """Index that views an n-D array as one 2-D image (``yx`` or with a channel axis).

    Parameters
    ----------
    axes : str
        One letter per axis, as tifffile or OME-Zarr name them (``YXS``, ``TCZYX``, ...);
        ``S`` and ``C`` are channels, ``Y`` and ``X`` the plane.
    shape : tuple of int

    Returns
    -------
    index : tuple
        ``slice(None)`` on the kept axes, 0 on the others (all of length 1).
    kept : str
        The kept axes in order, lower case (``y``, ``x`` and maybe ``c``).

    Raises
    ------
    PixelProblem
        When an axis other than the plane and one channel axis holds more than one
        plane (a z-stack, a time series, planes of unknown meaning).
    """
    axes = axes.upper()
    if "Y" not in axes or "X" not in axes:
        raise PixelProblem(f"has no image plane (axes {axes}, shape {tuple(shape)})")
    if 0 in shape:
        raise PixelProblem(f"holds no pixels (axes {axes}, shape {tuple(shape)})")
    index, kept = [], ""
    for name, size in zip(axes, shape, strict=True):
        channel = name in "SC" and "c" not in kept
        if name in "YX" or (channel and size > 1):
            index.append(slice(None))
            kept += "c" if channel else name.lower()
        elif size == 1:
            index.append(0)
        else:
            raise PixelProblem(f"holds a stack of {size} planes along axis {name} (axes "
                               f"{axes}, shape {tuple(shape)}): save the plane to predict "
                               "as a 2-D image")
    return tuple(index), kept
