"""Starting weights, now in :mod:`napari_nuclei.core.models.maskrcnn.weights`, and a run
folder's checkpoints in :mod:`napari_nuclei.core.runs` (re-exported for the dock)."""

from ..models.maskrcnn.weights import resolve_weights  # noqa: F401
from ..runs import is_run_dir, last_checkpoint  # noqa: F401
