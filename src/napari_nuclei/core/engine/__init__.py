"""The training and prediction engine: torch (the user's choice of build) and detectron2
(installed by napari-nuclei itself, since it is not on PyPI)."""

from .install import (
    EngineInstallError,
    EngineInstallResult,
    EngineStep,
    install_engine,
)
from .status import (
    EngineLocation,
    EngineStatus,
    default_location,
    engine_error_line,
    engine_status,
)

__all__ = [
    "EngineInstallError",
    "EngineInstallResult",
    "EngineLocation",
    "EngineStatus",
    "EngineStep",
    "default_location",
    "engine_error_line",
    "engine_status",
    "install_engine",
]
