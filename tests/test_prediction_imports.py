"""Prediction (images and slides) does not depend on training: it reaches the network
only through the model contract in ``core/models``."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_nuclei"
PREDICTION = ("core/predict", "core/slide")
TRAINING = "napari_nuclei.core.training"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(path: Path) -> str:
    own = _module_name(path)
    return own if path.name == "__init__.py" else own.rpartition(".")[0]


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """Every module a source imports, at its top or inside functions, as absolute names.

    ``from package import name`` counts as importing ``package.name`` too, since the
    name may be a module.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def _prediction_files() -> list[Path]:
    return sorted(p for folder in PREDICTION for p in (SRC / folder).rglob("*.py"))


def test_prediction_code_does_not_import_training():
    assert _prediction_files(), "no prediction modules found"
    offending = [
        f"{path.relative_to(SRC).as_posix()}:{line}: {module}"
        for path in _prediction_files()
        for line, module in imported_modules(path.read_text(encoding="utf-8"), _package(path))
        if module == TRAINING or module.startswith(TRAINING + ".")
    ]
    assert not offending, "prediction imports training: " + "; ".join(offending)


def test_the_check_sees_every_way_of_importing_training():
    source = ("from ..training.reports import Notice\n"
              "def f():\n    from ...core import training\n"
              "import napari_nuclei.core.training.run\n")
    modules = [m for _, m in imported_modules(source, "napari_nuclei.core.slide")]
    assert "napari_nuclei.core.training.reports" in modules
    assert "napari_nuclei.core.training" in modules
    assert "napari_nuclei.core.training.run" in modules
