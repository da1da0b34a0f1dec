"""The engine check's verdicts kept on disk, under a fingerprint of the engine's files.

A check costs seconds (:mod:`.check`); the fingerprint costs milliseconds, so a verdict is
reused until something it depends on changes: the interpreter, torch's, torchvision's or
detectron2's files, the install folders, the path settings or the check's own code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

from .state import EngineCheck
from .status import installed_torch

# Raise when the check's meaning changes, so verdicts of the old check are not reused.
CHECK_FORMAT = 1
CACHE_ENV = "NAPARI_NUCLEI_CACHE_DIR"
# Verdicts kept per interpreter: a few engines (tests, a switched torch) each keep theirs.
CACHE_ENTRIES = 8


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), st.st_mtime_ns, st.st_size]


def _tree_digest(folder: Path) -> str:
    """A digest of the names, times and sizes of the files under ``folder``.

    ``__pycache__`` is left out: importing writes there, which changes nothing that runs.
    """
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            digest.update(json.dumps(_stat(Path(root) / name)).encode())
    return digest.hexdigest()


def _package_stamp(name: str) -> list:
    """Where a top-level package is, with the times of the files a reinstall rewrites."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return [name, None]
    if spec is None or not spec.origin:
        return [name, None]
    folder = Path(spec.origin).parent
    files = [Path(spec.origin), folder / "version.py", *sorted(folder.glob("_C*"))]
    return [name, *(_stat(f) for f in files)]


def _site_dirs() -> list[Path]:
    """The folders packages are installed into: any install or removal changes their time."""
    paths = sysconfig.get_paths()
    found = [paths["purelib"], paths["platlib"], *site.getsitepackages()]
    with contextlib.suppress(Exception):
        found.append(site.getusersitepackages())
    return sorted({Path(p) for p in found})


def _own_files() -> list[Path]:
    """This project's files the check runs: a change to them is a change to the check."""
    here = Path(__file__).resolve().parent
    maskrcnn = here.parent / "models" / "maskrcnn"
    return [here / "probe.py", here / "check.py", here / "check_cache.py",
            maskrcnn / "config.py", maskrcnn / "presets.py"]


def engine_fingerprint(detectron2_dir: Path | None) -> str:
    """A digest of everything the check's verdict depends on.

    The interpreter, torch's and torchvision's versions and files, detectron2's folder and
    the times and sizes of its files, the install folders' times, the path settings and
    the check's own code. Costs a few milliseconds.

    Parameters
    ----------
    detectron2_dir : Path or None
        The ``detectron2`` package folder the check uses.

    Returns
    -------
    str
    """
    from ... import __version__

    versions = installed_torch()
    parts = [
        CHECK_FORMAT, __version__, sys.executable, sys.version,
        os.environ.get("PYTHONPATH", ""),
        {name: str(v) for name, v in versions.items()},
        _package_stamp("torch"), _package_stamp("torchvision"),
        str(detectron2_dir), _tree_digest(detectron2_dir) if detectron2_dir else None,
        [_stat(d) for d in _site_dirs()], [_stat(f) for f in _own_files()],
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def cache_dir() -> Path:
    """Where verdicts are kept: ``$NAPARI_NUCLEI_CACHE_DIR``, else the user's cache folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return base / "napari-nuclei"


def cache_file() -> Path:
    """This interpreter's verdict file (one per environment, shared by its programs)."""
    key = hashlib.sha256(sys.executable.encode()).hexdigest()[:16]
    return cache_dir() / f"engine-check-{key}.json"


def _read_entries() -> dict:
    try:
        entries = json.loads(cache_file().read_text(encoding="utf-8"))["entries"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return entries if isinstance(entries, dict) else {}


def cached_check(fingerprint: str) -> EngineCheck | None:
    """The verdict kept for ``fingerprint``, or None."""
    entry = _read_entries().get(fingerprint)
    if not isinstance(entry, dict):
        return None
    try:
        return dataclasses.replace(EngineCheck(**entry), cached=True)
    except TypeError:  # written by another version of the check
        return None


def write_cache(fingerprint: str, check: EngineCheck) -> None:
    """Keep a verdict; a cache that cannot be written only costs a new check next time."""
    entries = _read_entries()
    entries.pop(fingerprint, None)
    entries[fingerprint] = {**dataclasses.asdict(check), "cached": False}
    entries = dict(list(entries.items())[-CACHE_ENTRIES:])
    path = cache_file()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump({"entries": entries}, stream)
            os.replace(partial, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(partial)
