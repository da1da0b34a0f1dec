"""The training and prediction engine: torch (the user's choice of build) and detectron2
(installed by napari-nuclei itself, since it is not on PyPI). It counts as ready once a
fresh interpreter has used it (:func:`verify_engine`). :func:`missing_libraries` names
the libraries of the other features (whole slides, measurements, OpenSlide's formats) that
the environment lacks."""

from .check import verify_engine
from .install import install_engine
from .install_report import EngineInstallError, EngineInstallResult, EngineStep
from .libraries import MissingLibraries, library_error_line, missing_libraries
from .location import EngineLocation, default_location
from .state import EngineCheck, EngineStatus
from .status import engine_error_line, engine_status

__all__ = [
    "EngineCheck",
    "EngineInstallError",
    "EngineInstallResult",
    "EngineLocation",
    "EngineStatus",
    "EngineStep",
    "MissingLibraries",
    "default_location",
    "engine_error_line",
    "engine_status",
    "install_engine",
    "library_error_line",
    "missing_libraries",
    "verify_engine",
]
