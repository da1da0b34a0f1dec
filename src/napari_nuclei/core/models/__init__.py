"""Nuclei models: the contract prediction relies on, and its implementations.

:mod:`.base` holds the contract (:class:`NucleiModelProtocol`, :class:`RawDetections`)
and the registry of model kinds; :mod:`.maskrcnn` is the default kind, detectron2's
Mask R-CNN. Importing this package imports neither torch nor detectron2.
"""

from __future__ import annotations

from . import maskrcnn  # noqa: F401  (registers the default kind)
from .base import (
    DEFAULT_KIND,
    NucleiModelProtocol,
    RawDetections,
    model_kinds,
    model_loader,
    register_model_kind,
)

__all__ = ["DEFAULT_KIND", "NucleiModelProtocol", "RawDetections", "load_model",
           "model_kinds", "model_loader", "register_model_kind"]


def load_model(model, *args, kind: str = DEFAULT_KIND, **kwargs) -> NucleiModelProtocol:
    """Load a model of a registered kind for prediction.

    Parameters
    ----------
    model : str or Path
        A training run folder or a weights file.
    *args, **kwargs
        As the kind's loader takes them; for Mask R-CNN, those of
        :func:`napari_nuclei.core.models.maskrcnn.network.load_model`.
    kind : str
        The registered kind (default: Mask R-CNN).

    Returns
    -------
    NucleiModelProtocol

    Raises
    ------
    OptionError
        For a kind that is not registered.
    """
    return model_loader(kind)(model, *args, **kwargs)
