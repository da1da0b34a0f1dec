"""Check the engine by using it: a fresh interpreter imports torch, torchvision and
detectron2 and runs a tiny Mask R-CNN once (see :mod:`.probe`); what it reports is worded
as a cause and a fix.

Package metadata (:mod:`.status`) cannot tell a working detectron2 from one that raises
on import, has a syntax error or is an empty folder, nor a torchvision whose compiled
operators do not load with the installed torch. Running it can, but costs seconds, so the
verdict is kept on disk under a fingerprint of the engine's files (:mod:`.check_cache`):
later calls cost milliseconds until something in the engine changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from .check_cache import (  # noqa: F401  (the cache's names, re-exported)
    CACHE_ENTRIES,
    CACHE_ENV,
    CHECK_FORMAT,
    cache_dir,
    cache_file,
    cached_check,
    engine_fingerprint,
    write_cache,
)
from .state import EngineCheck, EngineStatus
from .status import (
    engine_status,
    installed_torch,
    python_command,
    torch_install_commands,
    torchvision_fix,
)

# A cold start of torch from a slow disk can take a minute; a check still running after
# this long is stopped and reported as hanging.
CHECK_TIMEOUT_S = 240
# The symptom of a torchvision built for another torch: its compiled operators do not
# register, and the first use (torchvision's own import) names a missing operator.
_MISMATCH = re.compile(r"operator torchvision::\S+ does not exist|"
                       r"Couldn't load custom C\+\+ ops", re.IGNORECASE)
_MISSING_OPERATOR = re.compile(r"operator \S+ does not exist")
_SYNTAX_ERRORS = frozenset({"SyntaxError", "IndentationError", "TabError"})
# Modules detectron2 imports whose distribution has another name.
_MODULE_DISTRIBUTIONS = {"yaml": "pyyaml", "PIL": "Pillow", "hydra": "hydra-core",
                         "pkg_resources": "setuptools<81", "cv2": "opencv-python-headless"}
# The child runs with the current directory off its path (a folder holding a torch.py or
# a detectron2 checkout must not stand in for the installed ones), then finds this
# project's code where this process found it.
_CHILD = """\
import sys
if sys.path and sys.path[0] in ("", "."):
    del sys.path[0]
try:
    from napari_nuclei.core.engine import probe
except ImportError:
    sys.path.append({root!r})
    from napari_nuclei.core.engine import probe
sys.exit(probe.main(sys.argv[1:]))
"""


def _child_command(detectron2_dir: Path) -> list[str]:
    root = str(Path(__file__).resolve().parents[3])
    return [sys.executable, "-c", _CHILD.format(root=root), str(detectron2_dir)]


def _reports(text: str | bytes | None) -> list[dict]:
    """The child's JSON reports, in order (other output is the libraries' own)."""
    from .probe import MARKER

    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    found = []
    for line in (text or "").splitlines():
        if line.startswith(MARKER):
            with contextlib.suppress(ValueError):
                found.append(json.loads(line[len(MARKER):]))
    return found


def _within(file: str, folder: Path | None) -> bool:
    if folder is None or not file:
        return False
    try:
        return Path(file).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def _package_folder(name: str) -> Path | None:
    import importlib.util

    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            return Path(spec.origin).parent
    return None


def _owner(file: str) -> str | None:
    """The installed distribution a file belongs to, if one can be told."""
    from importlib import metadata

    path = Path(file)
    for entry in map(Path, sys.path):
        with contextlib.suppress(ValueError, OSError):
            top = path.resolve().relative_to(entry.resolve()).parts[0]
            top = top.removesuffix(".py")
            names = metadata.packages_distributions().get(top)
            if names:
                return names[0]
    return None


class _Wording:
    """Turns a failed check into its cause and fix, from what the child reported."""

    def __init__(self, status: EngineStatus):
        self.status = status
        self.versions = installed_torch()
        self.folders = {"torch": _package_folder("torch"),
                        "torchvision": _package_folder("torchvision"),
                        "detectron2": status.detectron2_dir}

    def fix(self, culprit: str, file: str = "") -> str | None:
        torch = self.versions.get("torch")
        if culprit == "torch":
            cpu, cuda = torch_install_commands()
            again = "install --force-reinstall "
            return (f"reinstall it with: {cpu.replace('install ', again, 1)}  (NVIDIA GPU: "
                    f"{cuda.replace('install ', again, 1)})")
        if culprit == "torchvision" and torch:
            return f"reinstall it with: {torchvision_fix(torch, force=True)}"
        if culprit == "detectron2":
            if self.status.source == "napari-nuclei":
                return None  # the installer puts its own copy back
            return (f"repair or rebuild your detectron2 in {self.status.detectron2_dir}, or "
                    "take it off the path so that napari-nuclei install-engine installs its "
                    "own")
        if culprit == "requirement":
            if owner := _owner(file):
                return (f"reinstall {owner} with: {python_command()} -m pip install "
                        f"--force-reinstall {owner}")
            return f"repair or reinstall the package {file} belongs to" if file else None
        return ("check again with: napari-nuclei install-engine --check (a check that keeps "
                "failing this way is a bug of napari-nuclei)")

    def culprit_of(self, file: str) -> str:
        for name in ("detectron2", "torchvision", "torch"):
            if _within(file, self.folders[name]):
                return name
        own = _within(file, Path(__file__).resolve().parents[2])
        return "check" if own else "requirement"

    def word(self, report: dict) -> EngineCheck:
        stage = report.get("stage", "")
        kind = report.get("type", "Error")
        message = report.get("message", "")
        frames = report.get("frames") or [["", None]]
        file, line = frames[-1][0], frames[-1][1]
        where = f" ({file}, line {line})" if file else ""
        error = f"{kind}: {message}" if message else kind
        folder = self.status.detectron2_dir
        torch, vision = self.versions.get("torch"), self.versions.get("torchvision")

        def verdict(culprit: str, cause: str) -> EngineCheck:
            return EngineCheck(False, cause, self.fix(culprit, file), culprit,
                               report.get("versions", {}), report.get("seconds", 0.0))

        in_vision = any(_within(f, self.folders["torchvision"]) for f, _ in frames)
        if _MISMATCH.search(message) or (_MISSING_OPERATOR.search(message) and in_vision):
            return verdict("torchvision", f"torchvision {vision} does not work with torch "
                           f"{torch}: they were not built for each other ({error})")
        if stage in ("import torch", "import torchvision"):
            name = stage.split()[1]
            return verdict(name, f"{name} does not import ({error}){where}")
        if stage == "import detectron2":
            name = report.get("name") or ""
            if kind == "EmptyPackage":
                return verdict("detectron2", f"detectron2 in {folder} is an empty package "
                               f"({message or 'no modules'})")
            if kind == "OtherDetectron2":
                return verdict("detectron2", f"a new interpreter does not import detectron2 "
                               f"from {folder}: it {message}")
            if kind in _SYNTAX_ERRORS:
                culprit = self.culprit_of(file)
                what = "detectron2" if culprit == "detectron2" else "a module detectron2 imports"
                return verdict(culprit, f"{what} has a syntax error in {file}, line {line} "
                               f"({message})")
            if kind == "ModuleNotFoundError" and name.split(".")[0] == "detectron2":
                return verdict("detectron2", f"detectron2 in {folder} is incomplete: it has "
                               f"no {name}")
            if kind == "ModuleNotFoundError" and name:
                top = name.split(".")[0]
                check = verdict("requirement", f"detectron2 needs the module {top}, which "
                                "is not installed")
                dist = _MODULE_DISTRIBUTIONS.get(top, top)
                return dataclasses.replace(check, fix=f"install it with: {python_command()} "
                                           f"-m pip install '{dist}'")
            culprit = self.culprit_of(file)
            if culprit == "detectron2":
                return verdict(culprit, f"detectron2 raises on import: {error}{where}")
            return verdict(culprit, f"detectron2 does not import: {error}{where}")
        culprit = self.culprit_of(file)
        doing = "build" if stage == "build the model" else "run"
        return verdict(culprit, f"a tiny Mask R-CNN does not {doing} on CPU: {error}{where}")


def run_check(status: EngineStatus, timeout: float = CHECK_TIMEOUT_S,
              ) -> tuple[EngineCheck, bool]:
    """Use the engine once in a fresh interpreter (``sys.executable``).

    Parameters
    ----------
    status : EngineStatus
        The engine as found from package metadata; its ``detectron2_dir`` is the copy
        the child must import.
    timeout : float
        Seconds after which the child is stopped and the check counts as hanging.

    Returns
    -------
    check : EngineCheck
        The verdict, with its cause and fix when it failed.
    lasting : bool
        Whether the verdict may be kept: a failure that says something about the engine,
        not a timeout or a crash (which can come from a busy machine).
    """
    start = time.perf_counter()
    command = _child_command(status.detectron2_dir)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, code = exc.stdout, exc.stderr, None
    except OSError as exc:
        return EngineCheck(False, f"the engine check could not start {sys.executable} "
                           f"({exc.strerror or exc})", "check that this Python still exists",
                           "check"), False
    seconds = time.perf_counter() - start
    reports = _reports(stdout)
    final = next((r for r in reversed(reports) if "ok" in r), None)
    wording = _Wording(status)
    if final is not None and final["ok"]:
        return EngineCheck(True, versions=final.get("versions", {}), seconds=seconds), True
    if final is not None:
        return dataclasses.replace(wording.word(final), seconds=seconds), True
    stage = next((r["stage"] for r in reversed(reports) if "stage" in r), "")
    culprit = {"import torch": "torch", "import torchvision": "torchvision",
               "import detectron2": "detectron2"}.get(stage, "check")
    during = f" while it ran {stage}" if stage else ""
    if code is None:
        cause = f"the engine check did not finish within {timeout:.0f} s{during}"
        again = wording.fix(culprit) or "reinstall detectron2 with: napari-nuclei install-engine"
        fix = f"try again: napari-nuclei install-engine --check; if it hangs again, {again}"
        return EngineCheck(False, cause, fix, "check", seconds=seconds), False
    if isinstance(stderr, bytes):
        stderr = stderr.decode("utf-8", "replace")
    last = (stderr or "").strip().splitlines()[-1:] or [f"exit status {code}"]
    if code < 0:
        cause = f"the engine check crashed (signal {-code}){during}"
    elif not reports:
        cause = f"the engine check could not start: {last[0]}"
    else:
        cause = f"the engine check stopped (exit status {code}){during}: {last[0]}"
    return EngineCheck(False, cause, wording.fix(culprit), culprit, seconds=seconds), False


def verify_engine(status: EngineStatus | None = None, *, use_cache: bool = True,
                  timeout: float = CHECK_TIMEOUT_S) -> EngineStatus:
    """The engine's status, checked by using it: ready only when a tiny Mask R-CNN ran.

    Nothing runs while a piece is missing (the status already says what to install).
    Otherwise the verdict comes from the cache when the engine is unchanged since it was
    kept, else from :func:`run_check` (a few seconds), and is kept for next time.

    Parameters
    ----------
    status : EngineStatus, optional
        The engine as found from package metadata (default: :func:`engine_status`).
    use_cache : bool
        Reuse a kept verdict; False always runs the check (and keeps its verdict).
    timeout : float
        Seconds the check may take.

    Returns
    -------
    EngineStatus
        ``status`` with its ``check`` filled in when it is complete.
    """
    status = status if status is not None else engine_status()
    if not status.complete:
        return status
    if use_cache:
        kept = cached_check(engine_fingerprint(status.detectron2_dir))
        if kept is not None:
            return dataclasses.replace(status, check=kept)
    check, lasting = run_check(status, timeout)
    if lasting:
        # Taken after the run: the first import may have created a cache folder beside
        # the packages, which the next fingerprint must not count as a change.
        write_cache(engine_fingerprint(status.detectron2_dir), check)
    return dataclasses.replace(status, check=check)

