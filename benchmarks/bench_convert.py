"""Benchmark: COCO conversion of a dense DSB-layout set against the straightforward way.

Generates 6 images of 1000x1000 with 700 nuclei each (4,200 mask PNGs), then, in one
process and on the same files:

- baseline: for every mask, ``cv2.imread``, a full-frame Fortran copy and
  ``pycocotools.mask.encode``, single process;
- napari-nuclei: ``convert_dataset`` (box-only encoding, worker processes).

Checks that both give identical RLEs, and prints the time ratio. Then measures the peak
traced memory of converting one image with 70 and with 700 nuclei: it should not grow
with the number of masks.

Usage: ``.venv/bin/python benchmarks/bench_convert.py [--images 6] [--nuclei 700]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from napari_nuclei.core.convert import annotate_image, convert_dataset
from napari_nuclei.core.dataset import open_dataset


def generate(root: Path, n_images: int, n_nuclei: int, size: int = 1000, seed: int = 0):
    """Write a DSB-layout set of random elliptical nuclei, one 0/255 PNG per nucleus."""
    rng = np.random.default_rng(seed)
    for index in range(n_images):
        sample_id = f"img{index:02d}"
        (root / "train" / sample_id / "images").mkdir(parents=True)
        (root / "train" / sample_id / "masks").mkdir()
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "train" / sample_id / "images" / f"{sample_id}.png"), image)
        mask = np.zeros((size, size), np.uint8)
        for number in range(n_nuclei):
            mask[:] = 0
            center = (int(rng.integers(10, size - 10)), int(rng.integers(10, size - 10)))
            axes = (int(rng.integers(5, 14)), int(rng.integers(5, 14)))
            cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
            cv2.imwrite(str(root / "train" / sample_id / "masks" / f"n{number:04d}.png"), mask)


def baseline(dataset) -> list[str]:
    """The straightforward conversion: read each mask, encode its full frame."""
    counts = []
    for record in dataset.records:
        for path in record.mask_paths:
            mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            encoded = mask_utils.encode(np.asfortranarray((mask > 0).astype(np.uint8)))
            mask_utils.area(encoded)
            mask_utils.toBbox(encoded)
            counts.append(encoded["counts"].decode("ascii"))
    return counts


def peak_memory_of_one_image(record) -> float:
    tracemalloc.start()
    annotate_image(record)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--nuclei", type=int, default=700)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        generate(root / "dense", args.images, args.nuclei)
        generate(root / "sparse", 1, args.nuclei // 10, seed=1)
        print(f"generated {args.images} x {args.nuclei} masks in "
              f"{time.perf_counter() - start:.1f} s")
        dataset = open_dataset(root / "dense")

        start = time.perf_counter()
        reference = baseline(dataset)
        t_baseline = time.perf_counter() - start

        start = time.perf_counter()
        conversion = convert_dataset(dataset, root / "out.json")
        t_ours = time.perf_counter() - start

        ours = [a["segmentation"]["counts"] for a in conversion.coco["annotations"]]
        assert ours == reference, "RLEs differ from the straightforward conversion"
        print(f"baseline (imread + full-frame encode, 1 process): {t_baseline:6.2f} s")
        print(f"napari-nuclei convert_dataset:                    {t_ours:6.2f} s")
        print(f"speed-up: {t_baseline / t_ours:.2f}x  (identical RLEs for {len(ours)} masks)")

        dense_peak = peak_memory_of_one_image(dataset.records[0])
        sparse_peak = peak_memory_of_one_image(open_dataset(root / "sparse").records[0])
        print(f"peak traced memory for one image: {sparse_peak:.1f} MiB with "
              f"{args.nuclei // 10} masks, {dense_peak:.1f} MiB with {args.nuclei} masks "
              f"(ratio {dense_peak / sparse_peak:.2f})")


if __name__ == "__main__":
    main()
