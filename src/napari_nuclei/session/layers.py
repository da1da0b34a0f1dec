"""When the dock's reused layers may take another image's data, and their order (no Qt).

The dock shows one predicted image at a time in one Image layer and one Labels layer,
swapping their data. A layer only takes data it can show as it is: napari keeps a
layer's kind, its RGB flag and its number of dimensions, so grayscale pixels given to a
layer made for RGB (or the reverse) show as a stack on a black canvas and break every
redraw. Such a layer is replaced instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerFit:
    """What a layer is, as far as the data it may take goes.

    Attributes
    ----------
    kind : str
        ``"image"`` or ``"labels"``.
    rgb : bool
        The last axis holds colour channels.
    ndim : int
        Dimensions shown (colour channels not counted).
    scale : tuple of float
        World size of a pixel along each of them.
    """

    kind: str
    rgb: bool
    ndim: int
    scale: tuple

    def takes(self, wanted: LayerFit) -> bool:
        """Whether this layer can show data that wants ``wanted`` without being
        replaced."""
        return ((self.kind, self.rgb, self.ndim) == (wanted.kind, wanted.rgb, wanted.ndim)
                and len(self.scale) == len(wanted.scale)
                and all(math.isclose(a, b) for a, b in zip(self.scale, wanted.scale,
                                                            strict=True)))


def image_fit(shape: tuple, scale: tuple | None = None) -> LayerFit:
    """The layer an image of array shape ``shape`` needs: RGB when its last axis holds 3
    or 4 channels (as the dock reads images: grayscale or RGB planes)."""
    rgb = len(shape) == 3 and shape[-1] in (3, 4)
    ndim = len(shape) - rgb
    return LayerFit("image", rgb, ndim, _scale(scale, ndim))


def labels_fit(shape: tuple, scale: tuple | None = None) -> LayerFit:
    """The layer a label image of shape ``shape`` needs, at the scale of its image."""
    return LayerFit("labels", False, len(shape), _scale(scale, len(shape)))


def _scale(scale, ndim: int) -> tuple:
    return tuple(float(s) for s in scale) if scale is not None else (1.0,) * ndim


def labels_move(image_index: int, labels_index: int) -> tuple[int, int] | None:
    """The move that puts a Labels layer right above its Image layer (napari draws the
    higher index on top), or None when it is above already.

    Returns
    -------
    tuple of int or None
        ``(source, destination)`` for napari's ``LayerList.move``, which inserts the
        layer before ``destination``.
    """
    if labels_index > image_index:
        return None
    return labels_index, image_index + 1
