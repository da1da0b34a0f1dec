"""Versions and capabilities of the installation, for bug reports (``napari-nuclei info``)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _qt_binding() -> str:
    # Read installed distributions rather than importing Qt: works without a display.
    for dist in ("PyQt6", "PySide6", "PyQt5", "PySide2"):
        version = _version(dist)
        if version:
            return f"{dist} {version}"
    return "none installed"


def _engine_rows() -> list[tuple[str, str]]:
    """detectron2's version and where it comes from, and whether the engine works (checked
    in a new interpreter, so a broken detectron2 cannot break this report)."""
    from .core.engine import engine_status, verify_engine

    status = verify_engine(engine_status())
    version = (status.check.versions.get("detectron2") if status.check else None)
    where = status.origin()
    rows = [("detectron2", f"{version} from {where}" if version else where),
            ("engine", "ready" if status.ready else "not ready")]
    # Complete but failing when used: the pieces are there, they do not work.
    label = "not working" if status.complete else "missing"
    rows += [(label, line) for line in status.problems()]
    return rows


def _library_rows() -> list[tuple[str, str]]:
    """The libraries of whole slides, measurements and OpenSlide's formats that are
    missing, in one line with the command that installs them."""
    from .core.engine import missing_libraries

    missing = missing_libraries()
    return [("libraries", missing.line() if missing else "all installed (whole slides, "
             "measurements, OpenSlide's formats)")]


def _sample_data_row() -> tuple[str, str]:
    from .core.sample import sample_data_dir

    try:
        return "sample data", str(sample_data_dir())
    except FileNotFoundError as exc:
        return "sample data", str(exc)


def environment_report() -> list[tuple[str, str]]:
    """Collect ``(name, value)`` pairs describing Python, torch, detectron2, napari and Qt.

    Returns
    -------
    list of tuple of str
        In the order they are printed by ``napari-nuclei info``.
    """
    from . import __version__

    rows = [
        ("napari-nuclei", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
    ]
    try:
        import torch

        rows.append(("torch", torch.__version__))
        cuda = torch.cuda.is_available()
        detail = f"yes ({torch.cuda.get_device_name(0)})" if cuda else "no"
        rows.append(("CUDA available", detail))
    except Exception as exc:  # a broken torch is reported, not raised
        rows += [("torch", f"not importable ({type(exc).__name__}: {exc})"),
                 ("CUDA available", "no (no torch)")]
    rows.append(("torchvision", _version("torchvision") or "not installed"))
    rows += _engine_rows()
    rows += _library_rows()
    for name, dist in (("napari", "napari"), ("npe2", "npe2"), ("pycocotools", "pycocotools"),
                       ("magicgui", "magicgui"), ("opencv", "opencv-python-headless"),
                       ("numpy", "numpy")):
        rows.append((name, _version(dist) or "not installed"))
    rows.append(("Qt binding", _qt_binding()))
    rows.append(_sample_data_row())
    return rows
