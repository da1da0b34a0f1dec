"""The benchmarks and scripts import only what the package has (they are not run here)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])


def _package_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("napari_nuclei"):
            yield node.lineno, node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("napari_nuclei"):
                    yield node.lineno, alias.name, []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_package_import_resolves(path):
    for line, module, names in _package_imports(path):
        imported = importlib.import_module(module)
        for name in names:
            assert hasattr(imported, name) or importlib.util.find_spec(
                f"{module}.{name}") is not None, f"{path.name}:{line}: {module}.{name}"
