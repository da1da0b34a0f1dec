"""Which detectron2 the installer puts where: the distribution it installs and the folder
of the environment that holds its code, with the path file naming that folder."""

from __future__ import annotations

import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# detectron2 is not on PyPI. This distribution carries upstream detectron2's Python code
# and model-zoo configs; its compiled extension targets CPython 3.10 only, and Mask R-CNN
# with an FPN backbone runs without it, so only the pure code is installed.
ENGINE_DISTRIBUTION = "sal-detectron2"
ENGINE_VERSION = "0.7.2"
ENGINE_WHEEL_PYTHON = "3.10"
# Where the code goes inside the environment, and the path file that puts it on sys.path.
ENGINE_FOLDER_NAME = "detectron2-dist"
ENGINE_PTH_NAME = "napari_nuclei_detectron2.pth"


@dataclass(frozen=True)
class EngineLocation:
    """Where the installer puts detectron2's code and the path file naming it.

    Attributes
    ----------
    folder : Path
        The folder holding the ``detectron2`` package (inside the environment).
    site_dir : Path
        A site-packages folder the interpreter reads ``.pth`` files from at start-up.
    """

    folder: Path
    site_dir: Path

    @property
    def pth_file(self) -> Path:
        return self.site_dir / ENGINE_PTH_NAME

    def holds_engine(self) -> bool:
        """Whether the folder holds the expected release of detectron2's code."""
        if not (self.folder / "detectron2" / "__init__.py").is_file():
            return False
        found = metadata.distributions(path=[str(self.folder)])
        return any(dist.metadata["Name"] == ENGINE_DISTRIBUTION
                   and dist.version == ENGINE_VERSION for dist in found)


def default_location() -> EngineLocation:
    """The running environment's own folder (a venv's or conda env's prefix), or the
    user's site folder when the environment cannot be written to (a system Python)."""
    # Resolved, so that a venv reached through a symbolic link is named by its real path.
    site_dir = Path(sysconfig.get_paths()["purelib"]).resolve()
    prefix = Path(sys.prefix).resolve()
    if os.access(site_dir, os.W_OK) and os.access(prefix, os.W_OK):
        return EngineLocation(prefix / ENGINE_FOLDER_NAME, site_dir)
    user_site = Path(site.getusersitepackages())
    return EngineLocation(Path(site.getuserbase()) / "napari-nuclei" / ENGINE_FOLDER_NAME,
                          user_site)
