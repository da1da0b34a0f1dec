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
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .check import verify_engine
from .status import (
    ENGINE_CODE_NEEDS,
    ENGINE_DISTRIBUTION,
    ENGINE_VERSION,
    ENGINE_WHEEL_PYTHON,
    FEATURES,
    INSTALLED_WITH_ENGINE,
    EngineLocation,
    EngineStatus,
    default_location,
    engine_status,
    feature_requirements,
    python_command,
    requirement_spec,
    runtime_requirements,
    unmet,
)

# Runs ``pip <args>`` in the running environment and yields its output lines.
PipRunner = Callable[[Sequence[str]], Iterator[str]]
# pip's closing note on conflicts among installed packages, and its lines naming them.
_RESOLVER_NOTE = "ERROR: pip's dependency resolver does not currently take into account"
_CONFLICT = re.compile(r"^\S+ \S+ (requires|has requirement) ")
_WHEEL_TAG_HERE = "py3-none-any"


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


def _without_resolver_notes(lines: Iterator[str], conflicts: list[str]) -> Iterator[str]:
    """pip's output without its note on conflicts among installed packages; the
    conflicting lines go to ``conflicts`` (shown once, as one line, by the caller)."""
    in_note = False
    try:
        for line in lines:
            if line.startswith(_RESOLVER_NOTE):
                in_note = True
            elif in_note and _CONFLICT.match(line):
                conflicts.append(line)
            else:
                in_note = False
                yield line
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()  # stopping the job stops pip


def _conflicts_line(conflicts: list[str]) -> str:
    shown = "; ".join(line.rstrip(".") for line in conflicts[:3])
    more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
    return (f"note: pip reports requirements of installed packages it left unmet: {shown}"
            f"{more} (all of them: {python_command()} -m pip check)")


def code_requirements() -> list[str]:
    """What detectron2's code needs at run time, as requirement lines.

    The distribution's own list is not that: it asks for black and tensorboard, which the
    code does not import to build, train or run a Mask R-CNN, and for numpy<2, with which
    it works. These are the specifications napari-nuclei itself declares (its core
    dependencies and ``train`` extra) for the packages that code imports.
    """
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        declared = metadata.requires("napari-nuclei") or []
    except metadata.PackageNotFoundError:
        declared = []
    wanted = list(runtime_requirements())
    for line in declared:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None:
            wanted.append(requirement)
    merged: dict[str, Requirement] = {}
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name not in ENGINE_CODE_NEEDS:
            continue
        if name in merged:
            merged[name].specifier &= requirement.specifier
        else:
            merged[name] = Requirement(requirement_spec(requirement))
    return [str(merged[name]) for name in sorted(merged)]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _replace_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _metadata_with(text: str, requirements: list[str]) -> str:
    """METADATA with its unconditional ``Requires-Dist`` lines replaced by
    ``requirements`` (those of extras are left: pip check does not read them)."""
    from packaging.requirements import InvalidRequirement, Requirement

    head, blank, body = text.partition("\n\n")
    lines, at = [], None
    for line in head.split("\n"):
        if line.startswith("Requires-Dist:"):
            try:
                marker = Requirement(line.partition(":")[2].strip()).marker
            except InvalidRequirement:
                marker = None
            if marker is None or "extra" not in str(marker):
                at = len(lines) if at is None else at
                continue
        lines.append(line)
    if at is None:
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith(
            ("Requires-Python:", "Version:"))), len(lines))
    lines[at:at] = [f"Requires-Dist: {r}" for r in requirements]
    return "\n".join(lines) + blank + body


def _wheel_for_here(text: str) -> str | None:
    """WHEEL retagged as pure Python when none of its tags suits this interpreter (the
    compiled extension it was tagged for cannot load here, and the code runs without
    it), else None."""
    from packaging.tags import parse_tag, sys_tags

    tags = [line.partition(":")[2].strip() for line in text.splitlines()
            if line.startswith("Tag:")]
    here = set(sys_tags())
    if not tags or any(t in here for tag in tags for t in parse_tag(tag)):
        return None
    lines = [line for line in text.splitlines() if not line.startswith("Tag:")]
    lines = ["Root-Is-Purelib: true" if line.startswith("Root-Is-Purelib:") else line
             for line in lines]
    return "\n".join(lines).rstrip("\n") + f"\nTag: {_WHEEL_TAG_HERE}\n"


def _foreign_extension(name: str) -> bool:
    """A compiled module built for another Python (it can never be imported here)."""
    built_for = re.search(r"\.(?:cpython-|cp)(\d+)", name)
    here = f"{sys.version_info.major}{sys.version_info.minor}"
    return (name.endswith((".so", ".pyd")) and built_for is not None
            and built_for.group(1) != here)


def record_code_needs(folder: Path) -> bool:
    """Make the metadata of the distribution installed in ``folder`` true to its code.

    Its ``Requires-Dist`` lines become :func:`code_requirements`; where its wheel tag
    does not suit this interpreter, the extension built for another Python is removed and
    the wheel is tagged pure Python. RECORD follows, so the distribution stays consistent.
    Does nothing when all of this is done already.

    Parameters
    ----------
    folder : Path
        The folder ``pip install --target`` filled.

    Returns
    -------
    bool
        Whether anything changed.
    """
    infos = sorted(folder.glob("*.dist-info"))
    if not infos:
        return False
    info = infos[0]
    changed: dict[str, bytes] = {}
    metadata_file = info / "METADATA"
    if metadata_file.is_file():
        text = metadata_file.read_text(encoding="utf-8")
        wanted = _metadata_with(text, code_requirements())
        if wanted != text:
            _replace_text(metadata_file, wanted)
            changed[f"{info.name}/METADATA"] = wanted.encode()
    removed: set[str] = set()
    wheel_file = info / "WHEEL"
    if wheel_file.is_file():
        wanted = _wheel_for_here(wheel_file.read_text(encoding="utf-8"))
        if wanted is not None:
            _replace_text(wheel_file, wanted)
            changed[f"{info.name}/WHEEL"] = wanted.encode()
    tagged = wheel_file.is_file() and f"Tag: {_WHEEL_TAG_HERE}" in wheel_file.read_text(
        encoding="utf-8")
    if tagged:
        for path in folder.rglob("*"):
            if path.is_file() and _foreign_extension(path.name):
                path.unlink()
                removed.add(path.relative_to(folder).as_posix())
    record = info / "RECORD"
    if (changed or removed) and record.is_file():
        rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
        kept = []
        for row in rows:
            if not row or row[0] in removed:
                continue
            if row[0] in changed:
                data = changed[row[0]]
                row = [row[0], _record_hash(data), str(len(data))]
            kept.append(row)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(kept)
        _replace_text(record, out.getvalue())
    return bool(changed or removed)


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
        record_code_needs(partial)
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


def library_requirements() -> tuple[list, list]:
    """The features' libraries that are not installed in an accepted version.

    Returns
    -------
    base : list of Requirement
        Base dependencies of napari-nuclei that are missing (removed after it was
        installed): installed with detectron2's requirements.
    optional : list of Requirement
        Libraries of :data:`.status.INSTALLED_WITH_ENGINE` (OpenSlide's): installed from
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
        return _without_resolver_notes(iter(pip(args)), conflicts)

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
        yield from _install_code(location, run, 1, total)
        changed = installed_now = True

    yield EngineStep(2, total, "Registering detectron2 on the environment's path")
    if before.source != "own":
        changed |= _register(location)
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
        yield EngineStep(3, total, _conflicts_line(conflicts))

    yield EngineStep(4, total, "Checking that torch and detectron2 work: a tiny Mask R-CNN "
                     "in a new interpreter")
    status = verify_engine(engine_status(location), use_cache=False)
    if not status.ready and status.installer_can_fix() and status.check is not None \
            and not installed_now:
        yield EngineStep(4, total, f"{status.check.cause}: installing detectron2 "
                         f"{ENGINE_VERSION} again")
        conflicts.clear()
        yield from _install_code(location, run, 4, total)
        changed = True
        activate(location)
        status = verify_engine(engine_status(location), use_cache=False)
    if status.ready and not restart_needed and not _imports_here():
        # It works in a new interpreter but not in this one, which had already imported
        # a package that has now been replaced.
        restart_needed = True
    return EngineInstallResult(status, changed, restart_needed)
