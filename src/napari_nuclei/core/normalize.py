"""Bring any supported image to the 8-bit, 3-channel BGR array the network expects."""

from __future__ import annotations

import numpy as np

# Percentiles used to stretch images that are not 8-bit: robust to a few hot pixels.
_LOW_PERCENTILE = 0.1
_HIGH_PERCENTILE = 99.9


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an image to uint8: 8-bit images are kept, others are stretched per image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` of any integer or float dtype.

    Returns
    -------
    numpy.ndarray
        Same shape, uint8.
    """
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float32)
    low, high = np.percentile(values, (_LOW_PERCENTILE, _HIGH_PERCENTILE))
    if high <= low:
        high = low + 1.0
    scaled = (values - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def to_model_input(image: np.ndarray) -> np.ndarray:
    """An image as detectron2's default ``INPUT.FORMAT`` wants it: uint8 BGR ``(H, W, 3)``.

    Parameters
    ----------
    image : numpy.ndarray
        Grayscale ``(H, W)`` or RGB ``(H, W, 3)`` as returned by
        :func:`napari_nuclei.core.image_io.read_image`.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, channels in BGR order, C-contiguous.
    """
    image = to_uint8(image)
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return np.ascontiguousarray(image[:, :, ::-1])
