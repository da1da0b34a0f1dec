"""Install the engine into the running environment, as a job shared by the CLI and the dock.

detectron2 itself is installed as pure code into a folder of the environment and put on
the path with a ``.pth`` file (read at every start) and on this process's ``sys.path``
(so it can be used without restarting). Its installed metadata is made to say what that
code needs, so that ``pip check`` stays clean. Its runtime requirements are installed with
pip, and so are the libraries of the other features that the environment lacks: those
napari's plugin manager leaves out (OpenSlide's, which cannot be a base dependency) and
base dependencies removed since. torch is never installed here: the CPU or CUDA build is
the user's choice, and the job ends with the command that installs it when it is missing.
The job ends by using the engine once in a new interpreter (:func:`.check.verify_engine`).

This module runs the job's steps; putting the code in place is :mod:`.placement`'s, its
metadata :mod:`.code_metadata`'s, running pip :mod:`.pip_runner`'s.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Generator, Iterator, Sequence

from .check import verify_engine
from .code_metadata import _record_hash, code_requirements, record_code_needs  # noqa: F401
from .install_report import EngineInstallError, EngineInstallResult, EngineStep
from .libraries import FEATURES, INSTALLED_WITH_ENGINE, feature_requirements
from .location import ENGINE_DISTRIBUTION, ENGINE_VERSION, EngineLocation, default_location
from .pip_runner import PipRunner, conflicts_line, run_pip, without_resolver_notes
from .placement import activate, install_code, register
from .status import engine_status, requirement_spec, runtime_requirements, unmet

# The names these had here before.
_without_resolver_notes = without_resolver_notes
_conflicts_line = conflicts_line


def _loaded_distributions_replaced(requirements) -> bool:
    """Whether pip is about to replace a package this process has imported already (then
    the new version only takes effect after a restart)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    wanted = {canonicalize_name(r.name) for r in requirements}
    return any(canonicalize_name(dist) in wanted
               for module, dists in metadata.packages_distributions().items()
               if module in sys.modules for dist in dists)


def library_requirements() -> tuple[list, list]:
    """The features' libraries that are not installed in an accepted version.

    Returns
    -------
    base : list of Requirement
        Base dependencies of napari-nuclei that are missing (removed after it was
        installed): installed with detectron2's requirements.
    optional : list of Requirement
        Libraries of :data:`.libraries.INSTALLED_WITH_ENGINE` (OpenSlide's): installed from
        binary wheels only, apart, since a platform without them keeps every other
        feature.
    """
    base, optional = [], []
    for feature in FEATURES:
        into = optional if feature in INSTALLED_WITH_ENGINE else base
        for requirement in unmet(feature_requirements(feature)):
            if str(requirement) not in map(str, base + optional):
                into.append(requirement)
    return base, optional


def _install_optional(requirements, run, step: int, total: int,
                      ) -> Generator[EngineStep, None, bool]:
    """pip-install OpenSlide's libraries from binary wheels; a platform without them gets
    a note, not a failure (every other feature works without them). Returns whether pip
    installed them."""
    specs = [requirement_spec(r) for r in requirements]
    names = ",".join(r.name for r in requirements)
    yield EngineStep(step, total, f"Installing {', '.join(specs)} (OpenSlide's formats)")
    try:
        for line in run(["install", "--only-binary", names, *specs]):
            yield EngineStep(step, total, line, detail=True)
    except EngineInstallError as exc:
        yield EngineStep(step, total, f"note: formats only OpenSlide reads stay unreadable "
                         f"here ({exc}); every other format and feature works without them")
        return False
    return True


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


def install_engine(location: EngineLocation | None = None, pip: PipRunner | None = None,
                   ) -> Generator[EngineStep, None, EngineInstallResult]:
    """Make detectron2 usable in this environment; does nothing that is already done.

    Uses an importable detectron2 when there is one (a source build, say); otherwise
    installs the pure code of ``sal-detectron2`` into ``location.folder``, makes its
    metadata say what that code needs and registers it. Then installs the runtime
    requirements that are missing, puts the engine on this process's path and uses it
    once in a new interpreter; a copy of its own that fails there is installed again.

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
        When pip fails. An engine that is installed but does not work ends the job with
        a result that is not ready and says why.
    """
    location = location or default_location()
    pip = pip or run_pip
    total = 4
    changed = False
    conflicts: list[str] = []

    def run(args: Sequence[str]) -> Iterator[str]:
        return without_resolver_notes(iter(pip(args)), conflicts)

    yield EngineStep(1, total, "Looking for detectron2")
    before = engine_status(location)
    installed_now = False
    if before.source == "own":
        yield EngineStep(1, total, f"Using detectron2 from {before.origin()}")
    elif location.holds_engine():
        yield EngineStep(1, total, f"detectron2 {ENGINE_VERSION} is already in "
                         f"{location.folder}")
        if record_code_needs(location.folder):
            yield EngineStep(1, total, "Recorded in detectron2's metadata what its code "
                             "needs (so that pip check passes)")
            changed = True
    else:
        yield EngineStep(1, total, f"Installing detectron2 {ENGINE_VERSION} "
                         f"({ENGINE_DISTRIBUTION}) into {location.folder}")
        yield from install_code(location, run, 1, total)
        changed = installed_now = True

    yield EngineStep(2, total, "Registering detectron2 on the environment's path")
    if before.source != "own":
        changed |= register(location)
        changed |= activate(location)

    yield EngineStep(3, total, "Checking the requirements of detectron2 and of whole slides")
    base_libraries, optional_libraries = library_requirements()
    missing = unmet(runtime_requirements())
    missing += [r for r in base_libraries if str(r) not in map(str, missing)]
    restart_needed = _loaded_distributions_replaced(missing + optional_libraries)
    if missing:
        specs = [requirement_spec(r) for r in missing]
        yield EngineStep(3, total, f"Installing {', '.join(specs)}")
        for line in run(["install", *specs]):
            yield EngineStep(3, total, line, detail=True)
        importlib.invalidate_caches()
        changed = True
    if optional_libraries:
        changed |= yield from _install_optional(optional_libraries, run, 3, total)
        importlib.invalidate_caches()
    if conflicts:
        yield EngineStep(3, total, conflicts_line(conflicts))

    yield EngineStep(4, total, "Checking that torch and detectron2 work: a tiny Mask R-CNN "
                     "in a new interpreter")
    status = verify_engine(engine_status(location), use_cache=False)
    if not status.ready and status.installer_can_fix() and status.check is not None \
            and not installed_now:
        yield EngineStep(4, total, f"{status.check.cause}: installing detectron2 "
                         f"{ENGINE_VERSION} again")
        conflicts.clear()
        yield from install_code(location, run, 4, total)
        changed = True
        activate(location)
        status = verify_engine(engine_status(location), use_cache=False)
    if status.ready and not restart_needed and not _imports_here():
        # It works in a new interpreter but not in this one, which had already imported
        # a package that has now been replaced.
        restart_needed = True
    return EngineInstallResult(status, changed, restart_needed)
