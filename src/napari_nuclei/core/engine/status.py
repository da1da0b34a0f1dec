"""What the training and prediction engine (torch + detectron2) needs, and what is there;
and which libraries of the other features (whole slides, measurements, OpenSlide's
formats) are missing.

Everything here reads installed-package metadata and import specs: nothing imports torch
or detectron2, so it takes milliseconds. That only says the pieces are present; whether
they work together is settled by using them, in :mod:`.check`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import site
import sys
import sysconfig
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# detectron2 is not on PyPI. This distribution carries upstream detectron2's Python code
# and model-zoo configs; its compiled extension targets CPython 3.10 only, and Mask R-CNN
# with an FPN backbone runs without it, so only the pure code is installed.
ENGINE_DISTRIBUTION = "sal-detectron2"
ENGINE_VERSION = "0.7.2"
ENGINE_WHEEL_PYTHON = "3.10"
# Where the code goes inside the environment, and the path file that puts it on sys.path.
ENGINE_FOLDER_NAME = "detectron2-dist"
ENGINE_PTH_NAME = "napari_nuclei_detectron2.pth"
# The distributions detectron2's code imports to build, train and run a Mask R-CNN
# (canonical names); its installed metadata is made to list these and nothing else.
ENGINE_CODE_NEEDS = frozenset({"numpy", "pillow", "matplotlib", "pycocotools", "termcolor",
                               "yacs", "tabulate", "cloudpickle", "tqdm", "omegaconf",
                               "hydra-core", "packaging", "fvcore", "iopath", "pyyaml",
                               "setuptools"})
# The extra whose requirements are detectron2's (and training's) runtime needs.
RUNTIME_EXTRA = "train"
MIN_TORCH = Version("2.1")
MIN_TORCHVISION = Version("0.16")
TORCH_INDEX = "https://download.pytorch.org/whl"
CUDA_TAG = "cu130"
CLI_INSTALL = "napari-nuclei install-engine (or Install in napari-nuclei's dock)"
# Modules whose absence means "the engine is missing", not "a bug".
ENGINE_MODULES = frozenset({"torch", "torchvision", "detectron2", "fvcore", "iopath", "yacs",
                            "omegaconf", "hydra", "termcolor", "tabulate", "cloudpickle",
                            "pkg_resources"})


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


@dataclass(frozen=True)
class EngineCheck:
    """The verdict of using the engine in a fresh interpreter (see :mod:`.check`).

    Attributes
    ----------
    ok : bool
        torch, torchvision and detectron2 imported and a tiny Mask R-CNN ran.
    cause : str
        What went wrong, in one line ("" when ok).
    fix : str or None
        What to do about it; None: run the installer (it reinstalls detectron2's code).
    culprit : str
        The piece at fault: ``"torch"``, ``"torchvision"``, ``"detectron2"``,
        ``"requirement"`` (a package detectron2 imports), ``"check"`` (the check itself
        did not finish) or ``""`` when ok.
    versions : dict
        What the check imported: torch, torchvision and detectron2 versions.
    seconds : float
        How long the check took when it ran.
    cached : bool
        The verdict was read from the cache: nothing ran this time.
    """

    ok: bool
    cause: str = ""
    fix: str | None = None
    culprit: str = ""
    versions: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def line(self, how: str = CLI_INSTALL) -> str:
        """The cause and its fix, as one line ("" when ok)."""
        if self.ok:
            return ""
        return f"{self.cause}; {self.fix or f'reinstall it with: {how}'}"


@dataclass(frozen=True)
class EngineStatus:
    """The engine as this process sees it.

    Attributes
    ----------
    torch_problem : str or None
        One line with the fix when torch is missing or too old.
    detectron2_dir : Path or None
        The ``detectron2`` package folder this process would import, if any.
    source : str
        ``"napari-nuclei"`` (installed by ``napari-nuclei install-engine``), ``"own"``
        (another installation, such as a source build) or ``"missing"``.
    installed_not_on_path : bool
        The installer's folder holds detectron2 but this process started before it was
        registered (the next start picks it up).
    missing_requirements : tuple of str
        Runtime requirements not installed in an accepted version.
    location : EngineLocation
        Where the installer puts detectron2.
    check : EngineCheck or None
        The verdict of using the engine; None until it has been checked (see
        :func:`napari_nuclei.core.engine.verify_engine`).
    """

    torch_problem: str | None
    detectron2_dir: Path | None
    source: str
    installed_not_on_path: bool
    missing_requirements: tuple[str, ...]
    location: EngineLocation
    check: EngineCheck | None = None

    @property
    def complete(self) -> bool:
        """Every piece is installed, as far as package metadata tells."""
        return (self.torch_problem is None and self.detectron2_dir is not None
                and not self.missing_requirements)

    @property
    def ready(self) -> bool:
        """Complete, and checked by using it: a tiny Mask R-CNN ran in a new interpreter."""
        return self.complete and self.check is not None and self.check.ok

    def installer_can_fix(self) -> bool:
        """Whether the installer has something to do: detectron2 or its requirements are
        missing, or the detectron2 it installed is broken."""
        if self.detectron2_dir is None or self.missing_requirements:
            return True
        return (self.check is not None and not self.check.ok
                and self.check.culprit == "detectron2" and self.source == "napari-nuclei")

    def problems(self, how: str = CLI_INSTALL) -> list[str]:
        """One line per missing piece, each saying how to fix it (empty when ready).

        Parameters
        ----------
        how : str
            How to run the installer, where it is shown (the command line, the dock).
        """
        lines = [self.torch_problem] if self.torch_problem else []
        if self.detectron2_dir is None:
            lines.append(f"detectron2 is not installed; install it with: {how}")
        if self.missing_requirements:
            lines.append(f"detectron2 needs {', '.join(self.missing_requirements)}; install "
                         f"them with: {how}")
        if self.complete and self.check is not None and not self.check.ok:
            lines.append(self.check.line(how))
        return lines

    def origin(self) -> str:
        """Where detectron2 comes from, in words."""
        if self.source == "napari-nuclei":
            return f"{self.detectron2_dir} (installed by napari-nuclei install-engine)"
        if self.source == "own":
            return f"{self.detectron2_dir} (an installation of your own)"
        if self.installed_not_on_path:
            return (f"installed in {self.location.folder}, importable after restarting this "
                    "program")
        return "not installed"


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


# --- the libraries of the features beyond the engine -----------------------------------


@dataclass(frozen=True)
class Feature:
    """A feature and the distributions it imports (besides numpy, OpenCV, tifffile...).

    Attributes
    ----------
    what : str
        The feature in words, as the subject of "... need(s) <libraries>".
    libraries : tuple of str
        Distribution names, as napari-nuclei's metadata spells them.
    """

    what: str
    libraries: tuple[str, ...]


# Every one of these but OpenSlide's is a base dependency: napari's plugin manager
# installs no extras. OpenSlide's library comes as binary wheels for a few platforms only
# (no build from source is attempted), so it stays an extra that install-engine adds.
FEATURES = {
    "slides": Feature("whole slides", ("tiffslide", "imagecodecs", "zarr", "ome-zarr",
                                       "dask", "pyarrow", "shapely", "scikit-image")),
    "measurements": Feature("measurements and GeoJSON", ("pyarrow", "shapely",
                                                         "scikit-image")),
    "dask": Feature("Dask clusters", ("dask", "distributed")),
    "openslide": Feature("formats only OpenSlide reads (MIRAX, Hamamatsu VMS, ...)",
                         ("openslide-python", "openslide-bin")),
}
# Features whose libraries are no base dependency: install-engine adds them, from wheels
# only (it also puts back base libraries removed since, with detectron2's requirements).
INSTALLED_WITH_ENGINE = ("openslide",)
# Import names of the features' libraries, for telling an import error apart from a bug.
LIBRARY_MODULES = {"tiffslide": "tiffslide", "imagecodecs": "imagecodecs", "zarr": "zarr",
                   "ome_zarr": "ome-zarr", "dask": "dask", "distributed": "distributed",
                   "pyarrow": "pyarrow", "shapely": "shapely", "skimage": "scikit-image",
                   "openslide": "openslide-python"}


def declared_requirements() -> dict[str, Requirement]:
    """napari-nuclei's own requirements, base and extras alike, by canonical name and
    without their extra markers (empty when the package's metadata cannot be read, as in
    a source tree never installed)."""
    from packaging.utils import canonicalize_name

    try:
        declared = metadata.requires("napari-nuclei") or []
    except metadata.PackageNotFoundError:
        return {}
    environment = default_environment()
    found: dict[str, Requirement] = {}
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        if marker is not None:
            # The extra's name is irrelevant here; other markers (platform) still count.
            named = requirement_extras(line)
            if not marker.evaluate({**environment, "extra": named[0] if named else ""}):
                continue
        name = canonicalize_name(requirement.name)
        found.setdefault(name, Requirement(requirement_spec(requirement)))
    return found


def requirement_extras(line: str) -> list[str]:
    """The extras a requirement line's marker names (``extra == "slides"``)."""
    return re.findall(r"""extra\s*==\s*["']([^"']+)["']""", line)


def feature_requirements(feature: str) -> list[Requirement]:
    """The requirements of one of :data:`FEATURES`, with the versions napari-nuclei
    declares for them (a bare name where it declares none)."""
    from packaging.utils import canonicalize_name

    declared = declared_requirements()
    return [declared.get(canonicalize_name(name)) or Requirement(name)
            for name in FEATURES[feature].libraries]


@dataclass(frozen=True)
class MissingLibraries:
    """The libraries some features need that are not installed in an accepted version.

    Attributes
    ----------
    features : tuple of str
        Keys of :data:`FEATURES` that lack something.
    specs : tuple of str
        The missing requirements as pip takes them (``zarr>=3``), each once.
    """

    features: tuple[str, ...]
    specs: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.specs)

    def pip_command(self) -> str:
        """The command that installs every missing library into this environment."""
        quoted = " ".join(f"'{spec}'" if any(c in spec for c in "<>=!~[;") else spec
                          for spec in self.specs)
        return f"{python_command()} -m pip install {quoted}"

    def line(self, how: str | None = None) -> str:
        """What needs what, and how to install it, as one line ("" when nothing is
        missing).

        Parameters
        ----------
        how : str, optional
            How to install them where the line is shown (default: the pip command).
        """
        if not self.specs:
            return ""
        whats = [FEATURES[feature].what for feature in self.features]
        subject = whats[0] if len(whats) == 1 else (
            ", ".join(whats[:-1]) + " and " + whats[-1])
        names = ", ".join(self.specs)
        them = "them" if len(self.specs) > 1 else "it"
        return (f"{subject} need {names}, not installed here; install {them} with: "
                f"{how or self.pip_command()}")


def missing_libraries(features=None) -> MissingLibraries:
    """Which of the features' libraries are not installed in a version they accept.

    Parameters
    ----------
    features : iterable of str, optional
        Keys of :data:`FEATURES` (default: all of them).

    Returns
    -------
    MissingLibraries
        False when nothing is missing; its :meth:`~MissingLibraries.line` names every
        missing library and the pip command that installs them.
    """
    features = tuple(FEATURES) if features is None else tuple(dict.fromkeys(features))
    lacking, specs = [], []
    for feature in features:
        absent = [requirement_spec(r) for r in unmet(feature_requirements(feature))]
        if absent:
            lacking.append(feature)
            specs += [spec for spec in absent if spec not in specs]
    return MissingLibraries(tuple(lacking), tuple(specs))


def library_error_line(exc: BaseException) -> str | None:
    """For an import error naming one of the features' libraries, the line that says how
    to install what is missing; None for any other error."""
    if not isinstance(exc, ImportError):
        return None
    module = (getattr(exc, "name", None) or "").split(".")[0]
    if module not in LIBRARY_MODULES:
        return None
    found = missing_libraries()
    if found:
        return found.line()
    # Installed as far as metadata tells, yet not importable: a damaged installation.
    name = LIBRARY_MODULES[module]
    return (f"{name} does not import ({exc}); reinstall it with: {python_command()} -m pip "
            f"install --force-reinstall {name}")
