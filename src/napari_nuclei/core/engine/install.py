"""Install the engine into the running environment, as a job shared by the CLI and the dock.

detectron2 itself is installed as pure code into a folder of the environment and put on
the path with a ``.pth`` file (read at every start) and on this process's ``sys.path``
(so it can be used without restarting). Its runtime requirements are installed with pip.
torch is never installed here: the CPU or CUDA build is the user's choice, and the job
ends with the command that installs it when it is missing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .status import (
    ENGINE_DISTRIBUTION,
    ENGINE_VERSION,
    ENGINE_WHEEL_PYTHON,
    EngineLocation,
    EngineStatus,
    default_location,
    engine_status,
    requirement_spec,
    runtime_requirements,
    unmet,
)

# Runs ``pip <args>`` in the running environment and yields its output lines.
PipRunner = Callable[[Sequence[str]], Iterator[str]]
_IMPORT_CHECK = "import detectron2, detectron2.model_zoo, detectron2.modeling"


class EngineInstallError(Exception):
    """The installation failed; the message says which step and why, in one line.

    Not a RuntimeError: napari's workers take those for a deleted worker and drop them.
    """


@dataclass(frozen=True)
class EngineStep:
    """A progress line of the installation.

    Attributes
    ----------
    step : int
        The step this line belongs to (1-based).
    total : int
        Steps in all.
    message : str
        What is happening (a step's title or a line of pip's output).
    detail : bool
        True for a line of pip's output, False for a step's title.
    """

    step: int
    total: int
    message: str
    detail: bool = False


@dataclass(frozen=True)
class EngineInstallResult:
    """How the installation ended.

    Attributes
    ----------
    status : EngineStatus
        The engine as this process sees it now.
    changed : bool
        Whether anything was installed or registered.
    restart_needed : bool
        The engine is installed, but this process cannot import it (a package it had
        already imported was replaced): restart the program to use it.
    """

    status: EngineStatus
    changed: bool
    restart_needed: bool

    @property
    def ready(self) -> bool:
        return self.status.ready and not self.restart_needed

    def summary(self) -> str:
        """One line: ready, restart needed, or what is still missing."""
        if self.restart_needed:
            return "The engine is installed; restart napari (or the command) to use it."
        if self.ready:
            return f"The engine is ready: detectron2 from {self.status.origin()}."
        return " · ".join(self.status.problems())


def run_pip(args: Sequence[str]) -> Iterator[str]:
    """Run ``python -m pip <args>`` for this interpreter, yielding its output lines.

    Closing the iterator stops pip. Raises :class:`EngineInstallError` (with pip's last
    lines) when pip fails.
    """
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    tail: list[str] = []
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail = (tail + [line])[-3:]
                yield line
        process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
        process.stdout.close()
    if process.returncode != 0:
        raise EngineInstallError(f"pip {args[0]} failed (exit {process.returncode}): "
                                 + " | ".join(tail))


def activate(location: EngineLocation) -> bool:
    """Put the engine folder on this process's path; True when it was not there yet."""
    folder = str(location.folder)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)
    importlib.invalidate_caches()
    return added


def _register(location: EngineLocation) -> bool:
    """Write the ``.pth`` file that puts the folder on the path at every start."""
    wanted = f"{location.folder}\n"
    pth = location.pth_file
    if pth.is_file():
        named = pth.read_text(encoding="utf-8").strip()
        if named and Path(named).resolve() == location.folder.resolve():
            return False
    location.site_dir.mkdir(parents=True, exist_ok=True)
    partial = pth.with_name(pth.name + ".partial")
    partial.write_text(wanted, encoding="utf-8")
    os.replace(partial, pth)
    return True


def _install_code(location: EngineLocation, pip: PipRunner, step: int,
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
        if location.folder.exists():
            shutil.rmtree(location.folder)
        os.replace(partial, location.folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _loaded_distributions_replaced(requirements) -> bool:
    """Whether pip is about to replace a package this process has imported already (then
    the new version only takes effect after a restart)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    wanted = {canonicalize_name(r.name) for r in requirements}
    return any(canonicalize_name(dist) in wanted
               for module, dists in metadata.packages_distributions().items()
               if module in sys.modules for dist in dists)


def _imports_here() -> bool:
    import warnings

    try:
        importlib.invalidate_caches()
        with warnings.catch_warnings():
            # torch's and detectron2's deprecation notes at import: nothing a user can act on.
            warnings.simplefilter("ignore")
            for module in ("detectron2", "detectron2.model_zoo", "detectron2.modeling"):
                importlib.import_module(module)
    except Exception:  # any failure: a fresh interpreter decides between restart and error
        return False
    return True


def _imports_in_fresh_process() -> str | None:
    """None when a new interpreter imports the engine, else the error's last line."""
    result = subprocess.run([sys.executable, "-c", _IMPORT_CHECK], capture_output=True,
                            text=True)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def install_engine(location: EngineLocation | None = None, pip: PipRunner | None = None,
                   ) -> Generator[EngineStep, None, EngineInstallResult]:
    """Make detectron2 usable in this environment; does nothing that is already done.

    Uses an importable detectron2 when there is one (a source build, say); otherwise
    installs the pure code of ``sal-detectron2`` into ``location.folder`` and registers
    it. Then installs the runtime requirements that are missing, puts the engine on this
    process's path and checks that it imports.

    Parameters
    ----------
    location : EngineLocation, optional
        Where detectron2's code goes (default: :func:`default_location`).
    pip : callable, optional
        Runs pip with the given arguments, yielding output lines (default
        :func:`run_pip`, this interpreter's pip).

    Yields
    ------
    EngineStep
        Step titles and pip's output.

    Returns
    -------
    EngineInstallResult

    Raises
    ------
    EngineInstallError
        When pip fails or the installed engine does not import.
    """
    location = location or default_location()
    pip = pip or run_pip
    total = 4
    changed = False
    yield EngineStep(1, total, "Looking for detectron2")
    before = engine_status(location)
    if before.source == "own":
        yield EngineStep(1, total, f"Using detectron2 from {before.origin()}")
    elif location.holds_engine():
        yield EngineStep(1, total, f"detectron2 {ENGINE_VERSION} is already in "
                         f"{location.folder}")
    else:
        yield EngineStep(1, total, f"Installing detectron2 {ENGINE_VERSION} "
                         f"({ENGINE_DISTRIBUTION}) into {location.folder}")
        yield from _install_code(location, pip, 1, total)
        changed = True

    yield EngineStep(2, total, "Registering detectron2 on the environment's path")
    if before.source != "own":
        changed |= _register(location)
        changed |= activate(location)

    yield EngineStep(3, total, "Checking detectron2's requirements")
    missing = unmet(runtime_requirements())
    restart_needed = False
    if missing:
        specs = [requirement_spec(r) for r in missing]
        yield EngineStep(3, total, f"Installing {', '.join(specs)}")
        restart_needed = _loaded_distributions_replaced(missing)
        for line in pip(["install", *specs]):
            yield EngineStep(3, total, line, detail=True)
        importlib.invalidate_caches()
        changed = True

    yield EngineStep(4, total, "Checking that detectron2 imports")
    status = engine_status(location)
    if status.torch_problem is None and status.detectron2_dir is not None:
        if restart_needed or not _imports_here():
            error = _imports_in_fresh_process()
            if error is not None:
                raise EngineInstallError(f"detectron2 does not import: {error}")
            restart_needed = True
    return EngineInstallResult(status, changed, restart_needed)
