"""What the training and prediction engine (torch + detectron2) needs, and what is there.

Everything here reads installed-package metadata and import specs: nothing imports torch
or detectron2, so it takes milliseconds. That only says the pieces are present; whether
they work together is settled by using them, in :mod:`.check`. Where the installer puts
detectron2 is :mod:`.location`'s; the state found and its words, :mod:`.state`'s; the
libraries of the other features, :mod:`.libraries`'.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from .location import (  # noqa: F401  (re-exported: the engine's names, read from here)
    ENGINE_DISTRIBUTION,
    ENGINE_FOLDER_NAME,
    ENGINE_PTH_NAME,
    ENGINE_VERSION,
    ENGINE_WHEEL_PYTHON,
    EngineLocation,
    default_location,
)
from .state import CLI_INSTALL, EngineCheck, EngineStatus  # noqa: F401

# The extra whose requirements are detectron2's (and training's) runtime needs.
RUNTIME_EXTRA = "train"
MIN_TORCH = Version("2.1")
MIN_TORCHVISION = Version("0.16")
TORCH_INDEX = "https://download.pytorch.org/whl"
CUDA_TAG = "cu130"
# Modules whose absence means "the engine is missing", not "a bug".
ENGINE_MODULES = frozenset({"torch", "torchvision", "detectron2", "fvcore", "iopath", "yacs",
                            "omegaconf", "hydra", "termcolor", "tabulate", "cloudpickle",
                            "pkg_resources"})


def _version(distribution: str) -> Version | None:
    try:
        return Version(metadata.version(distribution))
    except (metadata.PackageNotFoundError, InvalidVersion):
        return None


def python_command() -> str:
    """The command that runs this interpreter, quoted for a shell when needed."""
    exe = sys.executable
    return f'"{exe}"' if any(c.isspace() for c in exe) else exe


def torch_install_commands(upgrade: bool = False) -> tuple[str, str]:
    """The ``(CPU, NVIDIA GPU)`` commands that install torch into this environment."""
    pip = f"{python_command()} -m pip install {'-U ' if upgrade else ''}torch torchvision"
    return f"{pip} --index-url {TORCH_INDEX}/cpu", f"{pip} --index-url {TORCH_INDEX}/{CUDA_TAG}"


def installed_torch() -> dict[str, Version | None]:
    """Installed versions of torch and torchvision (None: not installed)."""
    found = {}
    for name in ("torch", "torchvision"):
        version = _version(name)
        if version is None and importlib.util.find_spec(name) is not None:
            version = Version("0")  # importable, but without metadata: no version known
        found[name] = version
    return found


def paired_torchvision(torch: Version) -> tuple[int, int] | None:
    """The ``(major, minor)`` of the torchvision release made for ``torch``.

    torchvision is released in lockstep with torch: for torch 2.x it is 0.(x + 15), so
    torch 2.0 goes with torchvision 0.15 and torch 2.14 with 0.29. None where no rule is
    known (torch 1.x is refused as too old anyway; a later major may number differently).
    """
    if torch.major != 2:
        return None
    return 0, torch.minor + 15


def _index_for(torch: Version) -> str:
    """The ``--index-url`` option that reaches builds like ``torch`` ("" for PyPI's)."""
    local = torch.local or ""
    if local == "cpu" or re.fullmatch(r"(cu|rocm)[0-9.]+", local):
        return f" --index-url {TORCH_INDEX}/{local}"
    return ""


def torchvision_fix(torch: Version, force: bool = False) -> str:
    """The command that installs the torchvision matching the installed ``torch``.

    torch is named at its installed version, so pip picks the torchvision built for it
    rather than replacing torch.
    """
    pair = paired_torchvision(torch)
    wanted = f'"torchvision=={pair[0]}.{pair[1]}.*"' if pair else "torchvision"
    again = "--force-reinstall " if force else ""
    return (f"{python_command()} -m pip install {again}torch=={torch.public} {wanted}"
            f"{_index_for(torch)}")


def torch_mismatch(versions: dict[str, Version | None]) -> str | None:
    """One line when torchvision's version or build does not pair with torch's, else None.

    Parameters
    ----------
    versions : dict
        ``{"torch": version, "torchvision": version}``; unknown versions are not judged.
    """
    torch, vision = versions.get("torch"), versions.get("torchvision")
    if not torch or not vision or Version("0") in (torch, vision):
        return None
    pair = paired_torchvision(torch)
    if pair is not None and vision.release[:2] != pair:
        why = f"torch {torch.major}.{torch.minor} needs torchvision {pair[0]}.{pair[1]}"
    elif torch.local and vision.local and torch.local != vision.local:
        why = f"one is built for {torch.local}, the other for {vision.local}"
    else:
        return None
    return (f"torchvision {vision} does not match torch {torch} ({why}); install the "
            f"matching torchvision with: {torchvision_fix(torch)}")


def torch_problem(versions: dict[str, Version | None] | None = None) -> str | None:
    """One line saying what is wrong with torch and the commands that fix it, or None.

    Parameters
    ----------
    versions : dict, optional
        ``{"torch": version, "torchvision": version}`` (default: what is installed).
    """
    versions = installed_torch() if versions is None else versions
    for name, least in (("torch", MIN_TORCH), ("torchvision", MIN_TORCHVISION)):
        found = versions.get(name)
        if found is None:
            what, upgrade = f"{name} is not installed", False
            break
        if found != Version("0") and found.release < least.release:
            what, upgrade = f"{name} {found} is older than the {least} detectron2 needs", True
            break
    else:
        return torch_mismatch(versions)
    cpu, cuda = torch_install_commands(upgrade)
    return f"{what}; install it with: {cpu}  (NVIDIA GPU: {cuda})"


def runtime_requirements(extra: str = RUNTIME_EXTRA) -> list[Requirement]:
    """The requirements of the package's ``extra`` that apply here, torch excluded (the
    user chooses the torch build; see :func:`torch_problem`)."""
    try:
        declared = metadata.requires("napari-nuclei") or []
    except metadata.PackageNotFoundError:
        return []
    environment = {**default_environment(), "extra": extra}
    wanted = []
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or "extra" not in str(requirement.marker):
            continue
        if not requirement.marker.evaluate(environment):
            continue
        if requirement.name.lower() in ("torch", "torchvision"):
            continue
        wanted.append(requirement)
    return wanted


def requirement_spec(requirement: Requirement) -> str:
    """The requirement as pip takes it on its command line, without the extra marker."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}{requirement.specifier}"


def unmet(requirements: list[Requirement]) -> list[Requirement]:
    """Those of ``requirements`` that are not installed in a version they accept."""
    missing = []
    for requirement in requirements:
        installed = _version(requirement.name)
        if installed is None or not requirement.specifier.contains(installed,
                                                                   prereleases=True):
            missing.append(requirement)
    return missing


def _detectron2_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("detectron2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def engine_status(location: EngineLocation | None = None) -> EngineStatus:
    """Check torch, detectron2 and detectron2's runtime needs without importing them.

    Parameters
    ----------
    location : EngineLocation, optional
        Where the installer puts detectron2 (default: :func:`default_location`).

    Returns
    -------
    EngineStatus
    """
    location = location or default_location()
    found = _detectron2_dir()
    if found is None:
        source = "missing"
    elif found.parent == location.folder.resolve():
        source = "napari-nuclei"
    else:
        source = "own"
    missing = tuple(requirement_spec(r) for r in unmet(runtime_requirements()))
    return EngineStatus(torch_problem(), found, source,
                        found is None and location.holds_engine(), missing, location)


def engine_error_line(exc: BaseException) -> str | None:
    """For an import error caused by a missing engine piece, the line that says how to fix
    it; None for any other error."""
    if not isinstance(exc, ImportError):
        return None
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name not in ENGINE_MODULES:
        return None
    problems = engine_status().problems()
    return problems[0] if problems else (
        f"{exc}; reinstall the engine with: napari-nuclei install-engine")
