"""The input gate is enforced by the code: no module outside it reads files on its own.

Every ``json.load``, YAML load, ``np.load``, ``torch.load``, pickle load, ``open`` for
reading, ``read_text``/``read_bytes``, ``PIL.Image.open``, ``cv2.imread`` or tifffile
reader in ``src/`` must sit in the gate (``core/validate/``, and ``core/safe_load.py`` for
weights) or in the allow-list below, each entry with the reason it is not a user's file or
is checked before it is read. A new surface that reads a file another way fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_nuclei"

GATE = ("core/validate/", "core/safe_load.py")

# (module, kind of read) -> why it is not a bypass of the gate.
ALLOWED = {
    ("core/child_job.py", "read_text"):
        "the tail of a child job's own log, shown as text, never parsed",
    ("core/folder_lock.py", "read_text"):
        "a lock file's owner, shown as text",
    ("core/engine/check.py", "json.loads"):
        "the reports the engine check's own child prints on its standard output, not a "
        "file",
    ("core/engine/check_cache.py", "json.loads"):
        "the engine check's own verdict cache in the user's cache folder; a damaged or "
        "foreign verdict only makes the check run again",
    ("core/engine/check_cache.py", "read_text"):
        "the engine check's own verdict cache (see above)",
    ("core/engine/code_metadata.py", "read_text"):
        "package metadata pip installed into this environment",
    ("core/engine/placement.py", "read_text"):
        "the path file the engine installer wrote into this environment",
    ("core/image_io.py", "tifffile.imread"):
        "the image decoder: validate.image_header has checked the declared size from the "
        "file header before any pixel is decoded",
    ("core/runs.py", "read_text"):
        "last_checkpoint: one file name, refused unless it is a plain name of a file in "
        "the run folder",
    ("core/slide/readers/tiffslide.py", "open-read"):
        "the slide file handed to tiffslide; its declared size is checked from the header "
        "before any level is read",
    ("core/slide/array_slides.py", "tifffile.TiffFile"):
        "plain TIFF slides: the declared size is checked from the header first",
    ("core/slide/array_slides.py", "tifffile.imread"):
        "plain TIFF slides: the declared size is checked from the header first",
    ("core/slide/engine.py", "open-read"):
        "a checkpoint's bytes, hashed to tell one model from another, never parsed",
    ("core/slide/outputs.py", "open-read"):
        "the job's own table and GeoJSON parts, copied line by line into the output, "
        "never parsed",
    ("core/slide/job.py", "open-read"):
        "the first line of an existing summary, compared as text with the header",
    ("core/training/reports.py", "open-read"):
        "metrics.jsonl, read line by line, each line parsed by validate.parse_json_line",
    ("_qt/screenshot.py", "tifffile.imread"):
        "the demo's own label image, just written by the demo",
}

_CALLS = {
    "json.load", "json.loads", "numpy.load", "torch.load", "pickle.load", "pickle.loads",
    "pickle.Unpickler", "PIL.Image.open", "cv2.imread", "tifffile.imread",
    "tifffile.TiffFile", "tifffile.memmap", "tifffile.imagej_metadata",
}
_YAML_LOADS = ("load", "safe_load", "unsafe_load", "full_load", "load_all")


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local names -> the dotted names they stand for (``np`` -> ``numpy``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node, aliases) -> str:
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else node.attr
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    return ""


def _open_mode(node: ast.Call) -> str | None:
    mode = node.args[1] if len(node.args) > 1 else None
    for keyword in node.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
    if mode is None:
        return "r"
    return mode.value if isinstance(mode, ast.Constant) else None


def reads_in(source: str) -> list[tuple[int, str]]:
    """``(line, kind)`` for every file read in a module's source."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        last = name.rsplit(".", 1)[-1]
        kind = None
        if name in _CALLS:
            kind = name
        elif name.startswith("yaml.") and last in _YAML_LOADS:
            kind = name
        elif isinstance(node.func, ast.Attribute) and last in ("read_text", "read_bytes"):
            kind = last
        elif name in ("open", "io.open", "builtins.open", "gzip.open", "os.fdopen"):
            mode = _open_mode(node)
            if mode is None or not any(c in mode for c in "wax"):
                kind = "open-read"
        if name == "numpy.load":
            kind = "np.load"
        if kind:
            found.append((node.lineno, kind))
    return found


def _modules():
    return sorted(p for p in SRC.rglob("*.py"))


def test_no_module_outside_the_gate_reads_a_file_on_its_own():
    bypasses = []
    for path in _modules():
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(GATE):
            continue
        for line, kind in reads_in(path.read_text(encoding="utf-8")):
            if (rel, kind) not in ALLOWED:
                bypasses.append(f"{rel}:{line}: {kind}")
    assert not bypasses, ("files read outside core/validate/ (use its loaders, or add the "
                          "read to ALLOWED with the reason): " + "; ".join(bypasses))


def test_every_allowed_read_still_exists():
    # An entry whose read is gone would let a new read of that kind in unnoticed.
    present = set()
    for path in _modules():
        rel = path.relative_to(SRC).as_posix()
        present.update((rel, kind) for _, kind in reads_in(path.read_text(encoding="utf-8")))
    stale = sorted(set(ALLOWED) - present)
    assert not stale, f"allow-list entries with no such read left: {stale}"


@pytest.mark.parametrize("source, kind", [
    ("import json\njson.loads(p.read_text())", "json.loads"),
    ("from json import load as parse\nparse(fh)", "json.load"),
    ("import numpy as np\nnp.load(p)", "np.load"),
    ("import yaml\nyaml.unsafe_load(s)", "yaml.unsafe_load"),
    ("import torch\ntorch.load(p, weights_only=False)", "torch.load"),
    ("import pickle\npickle.loads(b)", "pickle.loads"),
    ("from PIL import Image\nImage.open(p)", "PIL.Image.open"),
    ("import cv2\ncv2.imread(p)", "cv2.imread"),
    ("import tifffile\ntifffile.TiffFile(p)", "tifffile.TiffFile"),
    ("open(p)", "open-read"),
    ("open(p, 'rb')", "open-read"),
    ("open(p, mode=m)", "open-read"),
    ("p.read_bytes()", "read_bytes"),
])
def test_the_check_sees_each_kind_of_read(source, kind):
    assert kind in [k for _, k in reads_in(source)]


@pytest.mark.parametrize("source", [
    "open(p, 'w')", "open(p, 'ab')", "open(p, mode='x')",
    "import tifffile\ntifffile.imwrite(p, a)", "import json\njson.dumps(d)", "p.write_text(t)",
])
def test_writes_are_not_reads(source):
    assert reads_in(source) == []
