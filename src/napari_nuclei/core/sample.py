"""Where the bundled sample data lives, in an installed wheel or a source checkout."""

from __future__ import annotations

from pathlib import Path


def sample_data_dir() -> Path:
    """The ``sample_data`` folder: inside the package when installed from a wheel, else
    at the repository root of an editable (source) install.

    Raises
    ------
    FileNotFoundError
        If neither exists (a broken installation).
    """
    package_dir = Path(__file__).resolve().parents[1]
    for candidate in (package_dir / "sample_data", package_dir.parents[1] / "sample_data"):
        if (candidate / "train").is_dir():
            return candidate
    raise FileNotFoundError("napari-nuclei sample_data folder not found: reinstall the package")
