"""Developer tool: build sample_data/ from the real images kept beside the repository.

Run once from the repository root (``python scripts/make_sample_data.py ../shared/data``);
the project itself only ever reads the committed ``sample_data/``.

The 512x512 fluorescence image of the 2018 Data Science Bowl (with its 125-nucleus label
image) is cut into four 256x256 tiles: three form the training set (DSB layout, one PNG
per nucleus), the fourth is a labelled test image (its ground truth under ``test_gt/``).
The real H&E tile joins the test folder as an unlabelled image.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import tifffile

TILE = 256
MIN_FRAGMENT_PIXELS = 10  # slivers left by the tile cut are not useful nuclei
TRAIN_TILES = [(0, 0), (0, 1), (1, 0)]
TEST_TILE = (1, 1)


def write_sample(folder: Path, sample_id: str, image: np.ndarray, labels: np.ndarray) -> int:
    """Write one DSB sample: images/<id>.png (16-bit) and masks/<id>_nucleus_NNN.png."""
    (folder / sample_id / "images").mkdir(parents=True)
    (folder / sample_id / "masks").mkdir()
    cv2.imwrite(str(folder / sample_id / "images" / f"{sample_id}.png"), image)
    count = 0
    for value in np.unique(labels):
        if value == 0:
            continue
        mask = labels == value
        if mask.sum() < MIN_FRAGMENT_PIXELS:
            continue
        count += 1
        name = f"{sample_id}_nucleus_{count:03d}.png"
        cv2.imwrite(str(folder / sample_id / "masks" / name), mask.astype(np.uint8) * 255)
    return count


def main(shared_data: Path, out: Path) -> None:
    image = tifffile.imread(shared_data / "dsb2018_fluo" / "img2d.tif")
    labels = tifffile.imread(shared_data / "dsb2018_fluo" / "mask2d.tif")
    for sub in ("train", "test", "test_gt"):
        shutil.rmtree(out / sub, ignore_errors=True)

    def tile(array, row, col):
        return array[row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE]

    for row, col in TRAIN_TILES:
        sample_id = f"fluo_r{row}c{col}"
        n = write_sample(out / "train", sample_id, tile(image, row, col), tile(labels, row, col))
        print(f"train/{sample_id}: {n} nuclei")

    test_id = f"fluo_r{TEST_TILE[0]}c{TEST_TILE[1]}"
    (out / "test").mkdir()
    cv2.imwrite(str(out / "test" / f"{test_id}.png"), tile(image, *TEST_TILE))
    n = write_sample(out / "test_gt", test_id, tile(image, *TEST_TILE), tile(labels, *TEST_TILE))
    print(f"test/{test_id}: {n} nuclei in test_gt/")
    shutil.copy(shared_data / "he_tile" / "he_tile_1000.png", out / "test" / "he_tile_1000.png")
    ids = [
        {"id": 1, "file_name": f"{test_id}.png", "height": TILE, "width": TILE},
        {"id": 2, "file_name": "he_tile_1000.png", "height": 1000, "width": 1000},
    ]
    (out / "test" / "test_img_ids.json").write_text(json.dumps(ids, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else Path("sample_data"))
