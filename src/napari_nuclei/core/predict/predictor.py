"""Predict nuclei in an image, in tiles when it is large (a generator of tiles done)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..errors import OptionError
from ..models.base import NucleiModelProtocol, RawDetections
from ..normalize import to_model_input
from .instances import Prediction
from .overlap import tile_overlap
from .paste import paste_in_box, tight
from .stitch import grid_shape, split_detections, stitch_findings
from .tiles import regular_grid

# Below this resize factor the network would shrink the image enough to lose small nuclei:
# such images are predicted in tiles at their own scale instead.
TILE_BELOW_SCALE = 0.8


def _paste_all(raw: RawDetections, height: int, width: int) -> Prediction:
    scores, crops, kept = [], [], []
    for i in range(len(raw.scores)):
        region = tight(*paste_in_box(raw.mask_probs[i], raw.boxes[i], height, width))
        if region is None:
            continue
        crops.append(region)
        scores.append(float(raw.scores[i]))
        kept.append(i)
    kept = np.asarray(kept, np.int64)
    return Prediction.from_unsorted(
        height, width, scores, crops, raw.hit_cap, raw.classes[kept],
        [raw.class_probability(i) for i in kept])


@dataclass(frozen=True)
class TileDone:
    """Tile ``done`` of ``total`` of one image was predicted."""

    done: int
    total: int


def predict_image(
    model: NucleiModelProtocol, image: np.ndarray, tile_size: int | None = None,
    overlap: int | None = None,
) -> Prediction:
    """Predict the nuclei of one image (:func:`iter_predict_image`, run to the end)."""
    from ..jobs import drain

    return drain(iter_predict_image(model, image, tile_size, overlap))


def iter_predict_image(
    model: NucleiModelProtocol, image: np.ndarray, tile_size: int | None = None,
    overlap: int | None = None,
) -> Generator[TileDone, None, Prediction]:
    """Predict the nuclei of one image, yielding a :class:`TileDone` after each tile.

    Closing the generator stops the prediction at the next tile (a large image does not
    have to be predicted to the end first).

    Images the network would shrink (by more than ``TILE_BELOW_SCALE``) are predicted in
    overlapping tiles at their own scale and stitched as slides are (see
    :mod:`napari_nuclei.core.predict.stitch`); others are resized to the run's test size
    as in training.

    Parameters
    ----------
    model : NucleiModelProtocol
        From :func:`napari_nuclei.core.models.load_model`.
    image : numpy.ndarray
        Grayscale or RGB, any bit depth (as :func:`~napari_nuclei.core.image_io.read_image`
        returns).
    tile_size : int, optional
        Tile side (default: the run's ``MIN_SIZE_TEST``).
    overlap : int, optional
        Tile overlap (default: from the largest nucleus the run was trained on, see
        :func:`~napari_nuclei.core.predict.overlap.tile_overlap`).

    Yields
    ------
    TileDone
        Only for an image predicted in tiles.

    Returns
    -------
    Prediction
    """
    bgr = to_model_input(image)
    height, width = bgr.shape[:2]
    if tile_size is not None and (isinstance(tile_size, bool) or not isinstance(tile_size, int)
                                  or tile_size < 64):
        raise OptionError("tile_size", f"must be a whole number of at least 64 (got "
                          f"{tile_size!r})")
    tile = tile_size or model.min_size_test
    if tile_size is None and model.resize_scale(height, width) >= TILE_BELOW_SCALE:
        return _paste_all(model.infer(bgr, resize=True), height, width)
    overlap = overlap or tile_overlap(model, tile)
    if overlap >= tile:
        raise OptionError("overlap", f"must be smaller than the tile size ({tile}), "
                          f"got {overlap}")
    overlap -= overlap % 2
    tiles = regular_grid(height, width, tile, overlap)
    findings, hit_cap = [], False
    for index, window in enumerate(tiles):
        pixels = bgr[window.top : window.bottom, window.left : window.right]
        raw = model.infer(pixels, resize=False)
        hit_cap |= raw.hit_cap
        findings.append(split_detections(window, index, raw, *pixels.shape[:2]))
        yield TileDone(index + 1, len(tiles))
    nuclei, wider = stitch_findings(tiles, findings, *grid_shape(height, width, tile, overlap))
    prediction = Prediction.from_unsorted(height, width, [n[0] for n in nuclei],
                                          [n[1:4] for n in nuclei], hit_cap,
                                          [n[4] for n in nuclei], [n[5] for n in nuclei])
    prediction.wider_than_overlap = wider
    return prediction
