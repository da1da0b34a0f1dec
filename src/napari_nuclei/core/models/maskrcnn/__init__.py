"""detectron2's Mask R-CNN as a nuclei model: the default kind.

Registering imports nothing heavy: detectron2 is imported when a model is loaded.
"""

from __future__ import annotations

from ..base import DEFAULT_KIND, NucleiModelProtocol, register_model_kind


@register_model_kind(DEFAULT_KIND)
def load_maskrcnn(model, *args, **kwargs) -> NucleiModelProtocol:
    """Load a Mask R-CNN run folder or weights file; arguments as
    :func:`napari_nuclei.core.models.maskrcnn.network.load_model`."""
    from .network import load_model

    return load_model(model, *args, **kwargs)
