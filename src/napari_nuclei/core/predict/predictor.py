"""Predict nuclei in an image, in tiles when it is large (a generator of tiles done)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..errors import OptionError
from ..normalize import to_model_input
from .instances import Prediction
from .model import NucleiModel, RawDetections
from .overlap import tile_overlap
from .paste import paste_in_box, tight
from .tiles import Candidate, Neighbourhood, centred, cut_off, resolve_candidate, tile_grid

# Below this resize factor the network would shrink the image enough to lose small nuclei:
# such images are predicted in tiles at their own scale instead.
TILE_BELOW_SCALE = 0.8
_DUPLICATE_IOU = 0.5


def _paste_all(raw: RawDetections, height: int, width: int):
    scores, crops = [], []
    for i in range(len(raw.scores)):
        region = tight(*paste_in_box(raw.mask_probs[i], raw.boxes[i], height, width))
        if region is None:
            continue
        crops.append(region)
        scores.append(float(raw.scores[i]))
    return scores, crops


def _drop_duplicates(scores: list[float], crops: list) -> tuple[list[float], list]:
    """Box NMS across tiles, a safety net for a nucleus seen whole by two tiles."""
    import torch
    from torchvision.ops import nms

    if len(crops) < 2:
        return scores, crops
    boxes = torch.tensor([(x, y, x + m.shape[1], y + m.shape[0]) for y, x, m in crops],
                         dtype=torch.float32)
    keep = nms(boxes, torch.tensor(scores), _DUPLICATE_IOU).tolist()
    return [scores[i] for i in keep], [crops[i] for i in keep]


@dataclass(frozen=True)
class TileDone:
    """Tile ``done`` of ``total`` of one image was predicted."""

    done: int
    total: int


def predict_image(
    model: NucleiModel, image: np.ndarray, tile_size: int | None = None,
    overlap: int | None = None,
) -> Prediction:
    """Predict the nuclei of one image (:func:`iter_predict_image`, run to the end)."""
    from ..jobs import drain

    return drain(iter_predict_image(model, image, tile_size, overlap))


def iter_predict_image(
    model: NucleiModel, image: np.ndarray, tile_size: int | None = None,
    overlap: int | None = None,
) -> Generator[TileDone, None, Prediction]:
    """Predict the nuclei of one image, yielding a :class:`TileDone` after each tile.

    Closing the generator stops the prediction at the next tile (a large image does not
    have to be predicted to the end first).

    Images the network would shrink (by more than ``TILE_BELOW_SCALE``) are predicted in
    overlapping tiles at their own scale and stitched (see
    :mod:`napari_nuclei.core.predict.tiles`); others are resized to the run's test size
    as in training.

    Parameters
    ----------
    model : NucleiModel
        From :func:`napari_nuclei.core.predict.model.load_model`.
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
        raw = model.infer(bgr, resize=True)
        scores, crops = _paste_all(raw, height, width)
        return Prediction.from_unsorted(height, width, scores, crops, raw.hit_cap)
    overlap = overlap or tile_overlap(model, tile)
    scores, crops, hit_cap = [], [], False
    owned_nuclei, candidates = [], []
    tiles = tile_grid(height, width, tile, overlap)
    for index, window in enumerate(tiles):
        pixels = bgr[window.top : window.bottom, window.left : window.right]
        raw = model.infer(pixels, resize=False)
        hit_cap |= raw.hit_cap
        cut = cut_off(window, raw.boxes)
        mine = centred(window, raw.boxes) & ~cut
        bounds = (window.top, window.left, window.bottom, window.right)
        for rank in range(len(raw.scores)):
            region = tight(*paste_in_box(raw.mask_probs[rank], raw.boxes[rank],
                                         *pixels.shape[:2]))
            if region is None:
                continue
            top, left, mask = region[0] + window.top, region[1] + window.left, region[2]
            if mine[rank]:
                owned_nuclei.append((top, left, mask, bounds))
                scores.append(float(raw.scores[rank]))
                crops.append((top, left, mask))
            else:
                candidates.append(Candidate(top, left, mask, float(raw.scores[rank]),
                                            not cut[rank], bounds, (index, rank)))
        yield TileDone(index + 1, len(tiles))
    around = Neighbourhood(owned_nuclei, candidates)
    kept = [k for k in (resolve_candidate(c, around) for c in candidates) if k is not None]
    scores += [k.score for k in kept]
    crops += [(k.top, k.left, k.mask) for k in kept]
    scores, crops = _drop_duplicates(scores, crops)
    prediction = Prediction.from_unsorted(height, width, scores, crops, hit_cap)
    prediction.wider_than_overlap = len(kept)
    return prediction
