"""Make the installed metadata of detectron2's code true to that code: the requirements
it really imports, a wheel tag that suits this interpreter, and a RECORD that follows, so
that ``pip check`` stays clean."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import sys
from pathlib import Path

from .status import requirement_spec, runtime_requirements

# The distributions detectron2's code imports to build, train and run a Mask R-CNN
# (canonical names); its installed metadata is made to list these and nothing else.
ENGINE_CODE_NEEDS = frozenset({"numpy", "pillow", "matplotlib", "pycocotools", "termcolor",
                               "yacs", "tabulate", "cloudpickle", "tqdm", "omegaconf",
                               "hydra-core", "packaging", "fvcore", "iopath", "pyyaml",
                               "setuptools"})
_WHEEL_TAG_HERE = "py3-none-any"


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


def replace_text(path: Path, text: str) -> None:
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
            replace_text(metadata_file, wanted)
            changed[f"{info.name}/METADATA"] = wanted.encode()
    removed: set[str] = set()
    wheel_file = info / "WHEEL"
    if wheel_file.is_file():
        wanted = _wheel_for_here(wheel_file.read_text(encoding="utf-8"))
        if wanted is not None:
            replace_text(wheel_file, wanted)
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
        replace_text(record, out.getvalue())
    return bool(changed or removed)
