"""The training and prediction engine: torch (the user's choice of build) and detectron2
(installed by napari-nuclei itself, since it is not on PyPI). It counts as ready once a
fresh interpreter has used it (:func:`verify_engine`)."""

from .check import verify_engine
from .install import (
    EngineInstallError,
    EngineInstallResult,
    EngineStep,
    install_engine,
)
from .status import (
    EngineCheck,
    EngineLocation,
    EngineStatus,
    default_location,
    engine_error_line,
    engine_status,
)

__all__ = [
    "EngineCheck",
    "EngineInstallError",
    "EngineInstallResult",
    "EngineLocation",
    "EngineStatus",
    "EngineStep",
    "default_location",
    "engine_error_line",
    "engine_status",
    "install_engine",
    "verify_engine",
]
