"""The run settings and their presets, now in :mod:`napari_nuclei.core.models.maskrcnn.presets`
and the run folder's facts in :mod:`napari_nuclei.core.runs` (re-exported for the dock)."""

from ..models.maskrcnn.presets import (  # noqa: F401
    PRESETS,
    TrainSettings,
    fit_schedule,
    preset_settings,
)
from ..runs import SETTINGS_NAME, load_run_facts, recorded_number, save_settings  # noqa: F401
