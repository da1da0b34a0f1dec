"""Predict a list of images and turn each prediction into what is handed in or corrected.

One generator, :func:`iter_predict_sources`, serves every caller that predicts images
(the command line's ``predict``, the ``demo`` and the dock): it reads each image (or
takes its pixels), predicts it, reporting tiles done on a large image, and yields an
:class:`ImagePredicted` or, for an image that cannot be predicted, an
:class:`ImageSkipped`, so one bad file never ends the batch. The submission entries,
the label image and the score table of a prediction at a score threshold come from the
same few functions everywhere, so the same model and threshold give the same files.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .instances import Prediction

if TYPE_CHECKING:
    from ..models.base import NucleiModelProtocol

# Predictions are kept down to this score so that a score threshold can show more or
# fewer nuclei without running the network again.
LOWEST_SCORE = 0.05


@dataclass(frozen=True)
class ImageSource:
    """An image to predict: a file, or pixels with no file behind them."""

    name: str
    path: Path | None = None
    pixels: np.ndarray | None = None


@dataclass(frozen=True)
class ImagePredicted:
    """Image ``done`` of ``total`` was predicted (nuclei down to :data:`LOWEST_SCORE`)."""

    done: int
    total: int
    name: str
    path: Path | None
    prediction: Prediction
    pixels: np.ndarray | None = None  # read from the file, when the caller asked


@dataclass(frozen=True)
class ImageSkipped:
    """Image ``done`` of ``total`` could not be predicted; ``problem`` is one line."""

    done: int
    total: int
    name: str
    problem: str


def single_plane(pixels: np.ndarray, name: str) -> np.ndarray:
    """The pixels as one 2D plane (grayscale or RGB/RGBA), or a one-line error.

    Raises
    ------
    InputError
        For stacks (z, time, many channels): the caller picks a plane first.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] in (3, 4)):
        return pixels
    raise InputError(name, f"has shape {pixels.shape}, not one 2D plane: choose one plane "
                           "(z, time or channel) and predict that")


@dataclass(frozen=True)
class PredictSettings:
    """How the dock predicts; each field's metadata gives its label, limits, what 0
    means, and a tooltip (what it does and when to change it), from which the form is
    built.

    A value of 0 means "the run's own" (or, for the tile size, "only where needed").
    """

    tile_size: int = field(default=0, metadata={
        "label": "Tile (px)", "min": 0, "max": 8192, "step": 64, "zero": "as needed",
        "tooltip": "0: images the network would shrink are predicted in tiles of the "
                   "run's input size. Set a size (at least 64) to tile every image, e.g. "
                   "to bound memory on very large images."})
    test_size: int = field(default=0, metadata={
        "label": "Input (px)", "min": 0, "max": 4096, "step": 32, "zero": "the run's",
        "tooltip": "0: the run's own test size. Change it only when your nuclei are "
                   "larger or smaller (in pixels) than those the model was trained on."})
    max_dets: int = field(default=0, metadata={
        "label": "Most nuclei", "min": 0, "max": 100_000, "step": 100,
        "zero": "the run's",
        "tooltip": "0: the run's own detection cap. Raise it when a warning says the "
                   "cap was reached (dense images with more nuclei than the cap)."})
    device: str = field(default="auto", metadata={
        "label": "Device", "choices": ("auto", "cpu", "cuda"),
        "tooltip": "auto uses a CUDA GPU when there is one; cpu works everywhere, "
                   "slowly. Choose cpu when the GPU is busy training."})

    def options(self) -> dict:
        """Keyword arguments for :func:`iter_predict_sources` (0 left out)."""
        values = {"tile_size": self.tile_size, "test_size": self.test_size,
                  "max_dets": self.max_dets}
        return {"device": self.device, **{k: v for k, v in values.items() if v}}


@dataclass(frozen=True)
class TileProgress:
    """Tile ``tile`` of ``tiles`` of image ``done`` of ``total`` (``name``) was predicted."""

    done: int
    total: int
    name: str
    tile: int
    tiles: int


def load_outputs_model(
    model_path: str | Path, preset: str | None = None, checkpoint: str | Path | None = None,
    device: str = "auto", test_size: int | None = None, score_thresh: float | None = None,
    max_dets: int | None = None,
) -> tuple[NucleiModelProtocol, float]:
    """Load a model that detects down to :data:`LOWEST_SCORE`, and the threshold to show.

    Every caller stitches tiles from the same detections and filters them afterwards, so
    the same model and threshold give the same nuclei in the command line, the demo and
    the dock. Arguments as for :func:`napari_nuclei.core.models.load_model`.

    Returns
    -------
    model : NucleiModelProtocol
    score_thresh : float
        ``score_thresh`` when given, else the run's own test threshold.
    """
    from ..models import load_model

    model = load_model(model_path, preset, checkpoint, device, test_size, score_thresh,
                       max_dets)
    threshold = model.score_thresh
    model.detect_down_to(min(LOWEST_SCORE, threshold))
    return model, threshold


def iter_predict_sources(
    model: str | Path | NucleiModelProtocol,
    sources: list[ImageSource],
    checkpoint: str | Path | None = None,
    device: str = "auto",
    keep_pixels: bool = False,
    skip_bad: bool = True,
    test_size: int | None = None,
    max_dets: int | None = None,
    **predict_options,
) -> Generator[ImagePredicted | ImageSkipped | TileProgress, None, int]:
    """Predict each image; yield each result as soon as it is ready.

    Images predicted in tiles also yield a :class:`TileProgress` after each tile;
    closing the generator stops at the next tile.

    Parameters
    ----------
    model : str, Path or NucleiModelProtocol
        A training run folder or a weights file (loaded with :func:`load_outputs_model`),
        or a model loaded that way.
    sources : list of ImageSource
        The images.
    checkpoint : str or Path, optional
        A checkpoint of the run instead of its last.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    keep_pixels : bool
        Send the pixels read from a file along with its prediction.
    skip_bad : bool
        Yield an :class:`ImageSkipped` for an image that cannot be read or is not one
        plane, and go on; when False its :class:`InputError` is raised.
    test_size, max_dets : int, optional
        The run's input size and detection cap, changed (when ``model`` is loaded here).
    **predict_options
        Passed to :func:`napari_nuclei.core.predict.predictor.iter_predict_image`.

    Returns
    -------
    int
        Images predicted.
    """
    from ..image_io import read_image
    from .predictor import iter_predict_image

    if isinstance(model, str | Path):
        model, _ = load_outputs_model(model, checkpoint=checkpoint, device=device,
                                      test_size=test_size, max_dets=max_dets)
    predicted, total = 0, len(sources)
    for done, source in enumerate(sources, start=1):
        try:
            pixels = source.pixels if source.pixels is not None else read_image(source.path)
            pixels = single_plane(pixels, source.path or source.name)
        except InputError as exc:
            if not skip_bad:
                raise
            yield ImageSkipped(done, total, source.name, str(exc))
            continue
        tiles = iter_predict_image(model, pixels, **predict_options)
        while True:
            try:
                tile = next(tiles)
            except StopIteration as finished:
                prediction = finished.value
                break
            yield TileProgress(done, total, source.name, tile.done, tile.total)
        predicted += 1
        kept = pixels if keep_pixels and source.pixels is None else None
        yield ImagePredicted(done, total, source.name, source.path, prediction, kept)
    return predicted


def layer_features(prediction: Prediction, labels: np.ndarray) -> dict:
    """The prediction's table for the nuclei visible in ``labels``, with the ``index``
    column napari uses to match rows to label values."""
    table = prediction.features(labels)
    return {"index": table["label"], **table}
