"""The Mask R-CNN model, now in :mod:`napari_nuclei.core.models.maskrcnn.network`; load
models through :func:`napari_nuclei.core.models.load_model` (re-exported here for the
code that still imports it from here)."""

from ..models.base import RawDetections  # noqa: F401
from ..models.maskrcnn.network import NucleiModel, load_model  # noqa: F401
