"""Put detectron2's code in place: pip-installed into a sibling folder and swapped in
whole, named by a ``.pth`` file read at every start, and put on this process's path."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Generator
from pathlib import Path

from .code_metadata import record_code_needs, replace_text
from .install_report import EngineInstallError, EngineStep
from .location import (
    ENGINE_DISTRIBUTION,
    ENGINE_VERSION,
    ENGINE_WHEEL_PYTHON,
    EngineLocation,
)
from .pip_runner import PipRunner


def activate(location: EngineLocation) -> bool:
    """Put the engine folder on this process's path; True when it was not there yet."""
    folder = str(location.folder)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return added


def register(location: EngineLocation) -> bool:
    """Write the ``.pth`` file that puts the folder on the path at every start."""
    wanted = f"{location.folder}\n"
    pth = location.pth_file
    if pth.is_file():
        named = pth.read_text(encoding="utf-8").strip()
        if named and Path(named).resolve() == location.folder.resolve():
            return False
    location.site_dir.mkdir(parents=True, exist_ok=True)
    replace_text(pth, wanted)
    return True


def install_code(location: EngineLocation, pip: PipRunner, step: int,
                 total: int) -> Generator[EngineStep, None, None]:
    """pip-install the engine's pure code into a sibling folder, then swap it in, so an
    interrupted or failed installation never leaves a half-filled engine folder."""
    partial = location.folder.with_name(location.folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    location.folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        for line in pip(["install", "--no-deps", "--target", str(partial),
                         "--python-version", ENGINE_WHEEL_PYTHON, "--only-binary=:all:",
                         "--upgrade", f"{ENGINE_DISTRIBUTION}=={ENGINE_VERSION}"]):
            yield EngineStep(step, total, line, detail=True)
        if not (partial / "detectron2" / "__init__.py").is_file():
            raise EngineInstallError(f"{ENGINE_DISTRIBUTION} installed no detectron2 "
                                     f"package into {partial}")
        record_code_needs(partial)
        if location.folder.exists():
            shutil.rmtree(location.folder)
        os.replace(partial, location.folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
