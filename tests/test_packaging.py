"""The package as users get it.

- The declared Python range is the one the dependencies install on: pyproject's
  ``requires-python`` against each dependency's own ``Requires-Python`` (read from the
  installed metadata).
- scripts/check_wheel.sh: sdist and wheel built; the wheel installed (not editable) into
  fresh virtual environments on both paths of the README, the bare wheel as napari's
  plugin manager installs it (then torch, then install-engine) and ``[all]``; the demo,
  predict with measurements and GeoJSON and predict-slide run from there; ``pip check``;
  npe2; and a dry-run install with every other Python on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import REPO

# Python 3 minor versions looked at: far beyond any release, so an upper bound shows. A
# minor version counts as admitted when one of its patch releases is (ome-zarr says
# ">3.11", which turns away 3.11.0 only).
MINORS = range(0, 30)
PATCHES = range(0, 50)


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _user_requirements(project: dict) -> list[Requirement]:
    """The base dependencies and those of the extras `all` brings (not the test tools)."""
    extras = project["optional-dependencies"]
    lines = list(project["dependencies"])
    for extra in ("gui", "qt", "train", "slides", "openslide"):
        lines += extras[extra]
    found = {}
    for line in lines:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != "napari-nuclei":  # an extra's alias
            found.setdefault(canonicalize_name(requirement.name), requirement)
    return list(found.values())


def _admitted(spec: SpecifierSet) -> list[int]:
    """The Python 3 minor versions ``spec`` lets install."""
    return [minor for minor in MINORS
            if any(spec.contains(Version(f"3.{minor}.{patch}")) for patch in PATCHES)]


def test_requires_python_is_what_the_dependencies_install_on():
    project = _project()
    ours = SpecifierSet(project["requires-python"])
    floors, refused, absent = {}, [], []
    for requirement in _user_requirements(project):
        try:
            declared = metadata.metadata(requirement.name).get("Requires-Python") or ""
        except metadata.PackageNotFoundError:
            absent.append(requirement.name)
            continue
        theirs = SpecifierSet(declared)
        version = metadata.version(requirement.name)
        admitted = _admitted(theirs)
        floors[requirement.name] = (admitted[0] if admitted else None, version, declared)
        outside = [m for m in _admitted(ours) if m not in admitted]
        if outside:
            refused.append(f"{requirement.name} {version} (Requires-Python {declared!r}) "
                           f"does not install on Python 3.{outside[0]}")
    assert not absent, f"not installed here, so not checked: {absent} (run make setup)"
    assert not refused, (f"requires-python {ours} admits Pythons a dependency does not: "
                         + "; ".join(refused))
    # The floor is the highest of the dependencies' floors: no lower (it would not
    # install) and no higher (it would turn away Pythons that work).
    name, (floor, version, declared) = max(floors.items(), key=lambda item: item[1][0] or 0)
    assert _admitted(ours)[0] == floor, (
        f"requires-python {ours} starts at 3.{_admitted(ours)[0]}, but the dependencies "
        f"start at 3.{floor} ({name} {version}: {declared!r})")


def test_the_slides_extra_is_kept_and_everything_else_is_a_base_dependency():
    project = _project()
    base = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    for library in ("tiffslide", "imagecodecs", "zarr", "ome-zarr", "dask", "distributed",
                    "pyarrow", "shapely", "scikit-image"):
        assert library in base, f"{library} must be a base dependency (the plugin manager " \
            "installs no extras)"
    extras = project["optional-dependencies"]
    assert {"all", "slides", "openslide", "gui", "train"} <= set(extras)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_wheel_works_installed_as_the_plugin_manager_and_with_all():
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "scripts" / "check_wheel.sh")], env=env,
                            capture_output=True, text=True, timeout=3500)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    for step in ("bare: napari-nuclei install-engine", "all: the demo",
                 "bare: predict with --measurements and --geojson", "bare: predict-slide",
                 "all: predict-slide", "pip check", "npe2: manifest", "other Pythons",
                 "passed:"):
        assert step in result.stdout, report[-4000:]
