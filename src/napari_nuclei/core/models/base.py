"""What a nuclei model is to the rest of the code: its detections, a Protocol, and the
registry of model kinds.

Prediction (images and slides alike) uses a model only through
:class:`NucleiModelProtocol`, so another network can sit behind the same tiling,
stitching, measurements and outputs by registering a loader of its own with
:func:`register_model_kind`. Nothing here imports torch or detectron2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import OptionError
from ..nucleus_classes import ClassSet


@dataclass
class RawDetections:
    """Network output for one image, in that image's pixel coordinates.

    Attributes
    ----------
    boxes : numpy.ndarray
        ``(N, 4)`` float32 XYXY, clipped to the image, none empty.
    scores : numpy.ndarray
        ``(N,)`` float32, in decreasing order.
    mask_probs : torch.Tensor
        ``(N, M, M)`` float32 mask probabilities inside each box.
    hit_cap : bool
        True when the network returned as many detections as its cap allows.
    classes : numpy.ndarray
        ``(N,)`` int64 class index of each detection (in the order of the run's
        :class:`~napari_nuclei.core.nucleus_classes.ClassSet`); class 0 for a one-class
        model (the default).
    class_probs : numpy.ndarray
        ``(N, C)`` float32 probability of each of the model's ``C`` classes, given that
        the detection is a nucleus (each row sums to 1); for a one-class model (the
        default) one column of ones.
    """

    boxes: np.ndarray
    scores: np.ndarray
    mask_probs: object
    hit_cap: bool
    classes: np.ndarray | None = None
    class_probs: np.ndarray | None = None

    def __post_init__(self):
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        if self.classes is None:
            self.classes = np.zeros(len(scores), np.int64)
        self.classes = np.asarray(self.classes, np.int64).reshape(len(scores))
        if self.class_probs is None:
            # A model that gives no probabilities is sure of each class it gives.
            width = int(self.classes.max()) + 1 if len(scores) else 1
            self.class_probs = np.zeros((len(scores), width), np.float32)
            self.class_probs[np.arange(len(scores)), self.classes] = 1.0
        probs = np.asarray(self.class_probs, np.float32)
        self.class_probs = probs.reshape(len(scores), probs.shape[-1] if probs.ndim else 1)

    def class_probability(self, index: int) -> float:
        """The probability of detection ``index``'s own class."""
        return float(self.class_probs[index, int(self.classes[index])])


@runtime_checkable
class NucleiModelProtocol(Protocol):
    """A loaded nuclei model, as prediction uses it.

    Attributes
    ----------
    min_size_test : int
        The input size: images are resized so that their short side is this long, and
        large images are cut into tiles of this side.
    detections_per_image : int
        The most detections one forward pass returns (:attr:`RawDetections.hit_cap`).
    score_thresh : float or None
        The score below which detections are dropped by default; None when the model
        does not say.
    weights : Path or None
        The checkpoint the model was loaded from (its folder is the run folder whose
        facts prediction reads); None for a model without a file.
    device : str
        Where the model runs (``cpu`` or ``cuda``).
    classes : ClassSet
        The nucleus classes its detections' class indices refer to.
    """

    min_size_test: int
    detections_per_image: int
    score_thresh: float | None
    weights: Path | None
    device: str
    classes: ClassSet

    def resize_scale(self, height: int, width: int) -> float:
        """The factor an image of this size is scaled by before the network sees it."""
        ...

    def infer(self, bgr: np.ndarray, resize: bool = True) -> RawDetections:
        """Detect the nuclei of one ``(H, W, 3)`` uint8 BGR image.

        ``resize`` False feeds the pixels at their own scale (tiles of a large image).
        """
        ...

    def infer_batch(self, images: Sequence[np.ndarray],
                    resize: bool = True) -> list[RawDetections]:
        """:meth:`infer` for several images, in one forward pass where the model can."""
        ...

    def detect_down_to(self, score: float) -> None:
        """Let the model return detections down to ``score`` (below its threshold)."""
        ...


ModelLoader = Callable[..., NucleiModelProtocol]

# The kind a run folder or weights file is read as when nothing else is said.
DEFAULT_KIND = "maskrcnn"
_KINDS: dict[str, ModelLoader] = {}


def register_model_kind(name: str) -> Callable[[ModelLoader], ModelLoader]:
    """Register a loader of a kind of model under ``name`` (a decorator).

    A loader takes the model path (a run folder or a weights file) and the keyword
    arguments of :func:`napari_nuclei.core.models.load_model`, and returns a
    :class:`NucleiModelProtocol`. It should import its heavy libraries inside itself, so
    that registering costs nothing.

    Parameters
    ----------
    name : str
        The kind's name.

    Returns
    -------
    callable
        The decorator, which returns the loader unchanged.

    Raises
    ------
    ValueError
        When another loader has that name already.
    """

    def register(loader: ModelLoader) -> ModelLoader:
        if _KINDS.get(name, loader) is not loader:
            raise ValueError(f"a model kind named {name!r} is registered already")
        _KINDS[name] = loader
        return loader

    return register


def model_kinds() -> tuple[str, ...]:
    """The names of the registered model kinds, in the order they were registered."""
    return tuple(_KINDS)


def model_loader(kind: str = DEFAULT_KIND) -> ModelLoader:
    """The loader registered as ``kind``.

    Raises
    ------
    OptionError
        When no kind of that name is registered.
    """
    try:
        return _KINDS[kind]
    except (KeyError, TypeError):
        raise OptionError("model_kind", f"must be one of {', '.join(_KINDS)} "
                          f"(got {kind!r})") from None
