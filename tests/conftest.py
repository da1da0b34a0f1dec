"""Shared helpers: build small datasets in every layout on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# This test process hosts napari (with Mesa's OpenGL) and, in other tests, torch. Triton,
# which torch imports when present, crashes a process holding Mesa's LLVM, so the tests
# hide it; the plugin itself never imports torch into napari's process.
sys.modules.setdefault("triton", None)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"


def disk(shape, center, radius) -> np.ndarray:
    """A boolean disk mask."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:  # RGB(A) in, OpenCV wants BGR(A)
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    assert cv2.imwrite(str(path), array)
    return path


def write_dsb_sample(train_dir: Path, sample_id: str, image: np.ndarray, masks) -> Path:
    """Write ``train_dir/<id>/images/<id>.png`` and one 0/255 PNG per mask."""
    write_png(train_dir / sample_id / "images" / f"{sample_id}.png", image)
    for number, mask in enumerate(masks, start=1):
        write_png(
            train_dir / sample_id / "masks" / f"m{number:03d}.png", mask.astype(np.uint8) * 255
        )
    return train_dir / sample_id


def make_masks(shape, n, seed=0, radius=(3, 9)):
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(n):
        center = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        masks.append(disk(shape, center, rng.integers(*radius)))
    return masks


@pytest.fixture
def dsb_root(tmp_path) -> Path:
    """A DSB-layout dataset root with three 64x80 images (one RGBA) and some masks."""
    root = tmp_path / "dsb"
    shape = (64, 80)
    rng = np.random.default_rng(1)
    write_dsb_sample(root / "train", "b_img", rng.integers(0, 255, shape, dtype=np.uint8),
                     make_masks(shape, 6, seed=2))
    rgba = rng.integers(0, 255, (*shape, 4), dtype=np.uint8)
    write_dsb_sample(root / "train", "a_img", rgba, make_masks(shape, 4, seed=3))
    write_dsb_sample(root / "train", "c_img", rng.integers(0, 65535, shape, dtype=np.uint16),
                     make_masks(shape, 5, seed=4))
    return root


@pytest.fixture
def test_folder(tmp_path) -> Path:
    """A test folder with two images and a matching test_img_ids.json."""
    folder = tmp_path / "test"
    write_png(folder / "x.png", np.zeros((30, 40, 3), np.uint8))
    write_png(folder / "y.png", np.zeros((50, 20), np.uint8))
    ids = [
        {"id": 7, "file_name": "y.png", "height": 50, "width": 20},
        {"id": 3, "file_name": "x.png", "height": 30, "width": 40},
    ]
    (folder / "test_img_ids.json").write_text(json.dumps(ids))
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A full tiny-preset run on the sample data, through the CLI, with validation."""
    pytest.importorskip("detectron2")
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = subprocess.run(
        [sys.executable, "-m", "napari_nuclei.cli", "train", "--data", str(SAMPLE_DATA),
         "--out", str(run_dir), "--preset", "tiny", "--iters", "60", "--val-fraction", "0.34",
         "--checkpoint-period", "20", "--eval-period", "30", "-q"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return run_dir, result


@pytest.fixture
def level_reads(monkeypatch):
    """Counts the regions read from each level of tiffslide slides."""
    from napari_nuclei.core.slide.reader import TiffSlideReader

    counts = {}
    original = TiffSlideReader._read

    def counting(self, level, *args):
        counts[level] = counts.get(level, 0) + 1
        return original(self, level, *args)

    monkeypatch.setattr(TiffSlideReader, "_read", counting)
    return counts
