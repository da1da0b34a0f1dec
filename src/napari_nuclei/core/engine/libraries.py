"""Which libraries of the features beyond the engine (whole slides, measurements, Dask
clusters, OpenSlide's formats) the environment lacks, and the one line that says how to
install them.

Like :mod:`.status`, this reads installed-package metadata only: nothing is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

from .status import python_command, requirement_spec, unmet


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
