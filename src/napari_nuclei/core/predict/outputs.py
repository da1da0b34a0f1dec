"""Predict a list of images and turn each prediction into what is handed in or corrected.

One generator, :func:`iter_predict_sources`, serves every caller that predicts images
by name: it loads the model once, reads each image (or takes its pixels), predicts it and
yields a :class:`ImagePredicted` or, for an image that cannot be predicted, a
:class:`ImageSkipped`, so one bad file never ends the batch. The submission entries,
the label image and the score table of a prediction at a score threshold come from the
same few functions everywhere, so the same model and threshold give the same files.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .instances import Prediction

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


def iter_predict_sources(
    model_path: str | Path,
    sources: list[ImageSource],
    checkpoint: str | Path | None = None,
    device: str = "auto",
    keep_pixels: bool = False,
    **predict_options,
) -> Generator[ImagePredicted | ImageSkipped, None, int]:
    """Load a model and predict each image; yield each result as soon as it is ready.

    Parameters
    ----------
    model_path : str or Path
        A training run folder or a weights file (see
        :func:`napari_nuclei.core.predict.model.load_model`).
    sources : list of ImageSource
        The images.
    checkpoint : str or Path, optional
        A checkpoint of the run instead of its last.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    keep_pixels : bool
        Send the pixels read from a file along with its prediction.
    **predict_options
        Passed to :func:`napari_nuclei.core.predict.predictor.predict_image`.

    Returns
    -------
    int
        Images predicted.
    """
    from ..image_io import read_image
    from .model import load_model
    from .predictor import predict_image

    model = load_model(model_path, checkpoint=checkpoint, device=device,
                       score_thresh=LOWEST_SCORE)
    predicted = 0
    for done, source in enumerate(sources, start=1):
        try:
            pixels = source.pixels if source.pixels is not None else read_image(source.path)
            pixels = single_plane(pixels, source.path or source.name)
        except InputError as exc:
            yield ImageSkipped(done, len(sources), source.name, str(exc))
            continue
        prediction = predict_image(model, pixels, **predict_options)
        predicted += 1
        kept = pixels if keep_pixels and source.pixels is None else None
        yield ImagePredicted(done, len(sources), source.name, source.path, prediction, kept)
    return predicted


def submission_at(image_id: int, prediction: Prediction, score_thresh: float) -> list[dict]:
    """Submission entries of an uncorrected prediction at a score threshold."""
    from ..submission import submission_entries

    shown = prediction.above(score_thresh)
    return submission_entries(image_id, shown.rles(), shown.scores)


def layer_features(prediction: Prediction, labels: np.ndarray) -> dict:
    """The prediction's table for the nuclei visible in ``labels``, with the ``index``
    column napari uses to match rows to label values."""
    table = prediction.features(labels)
    return {"index": table["label"], **table}
