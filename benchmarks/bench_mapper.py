"""Benchmark: per-sample training data mapping on a 1000x1000 image with 700 nuclei.

Compares, in one run and on the same sample and augmentations (resize to 1000, flip):

- detectron2's ``DatasetMapper`` with ``MASK_FORMAT=bitmask`` (full-frame bitmaps);
- napari-nuclei's ``NucleiMapper`` (original-resolution crops, decoded once and cached).

Prints seconds per sample (napari-nuclei: first epoch, with decoding, and later epochs),
the memory the sample's masks hold, and the peak resident memory each mapper adds
(measured in a fresh process each), with the ratios.

Usage: ``.venv/bin/python benchmarks/bench_mapper.py [--nuclei 700] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dense_data import write_dense_set  # noqa: E402


def _record(folder: Path) -> dict:
    from napari_nuclei.core.convert import convert_dataset
    from napari_nuclei.core.dataset import open_dataset
    from napari_nuclei.core.training.data import _dataset_dicts

    dataset = open_dataset(folder)
    conversion = convert_dataset(dataset, folder / "coco.json", workers=1)
    return _dataset_dicts(dataset, conversion.coco)[0]


def _mappers(kind: str):
    from detectron2.data import DatasetMapper
    from detectron2.data import transforms as T

    from napari_nuclei.core.training.mapper import NucleiMapper

    augmentations = [T.ResizeShortestEdge(1000, 1333), T.RandomFlip(prob=0.5)]
    if kind == "detectron2":
        return DatasetMapper(is_train=True, augmentations=augmentations, image_format="BGR",
                             use_instance_mask=True, instance_mask_format="bitmask")
    mapper = NucleiMapper.__new__(NucleiMapper)
    mapper.is_train, mapper.augmentations, mapper._cache = True, augmentations, {}
    return mapper


def _mask_bytes(sample) -> int:
    masks = sample["instances"].gt_masks
    if hasattr(masks, "tensor"):
        return masks.tensor.numel() * masks.tensor.element_size()
    return sum(c.numel() * c.element_size() for c in masks.crops)


def measure(kind: str, record_path: str, repeats: int) -> dict:
    """Time ``repeats`` mappings of one sample in this process; report peak RSS growth."""
    record = json.loads(Path(record_path).read_text())
    mapper = _mappers(kind)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    mask_bytes = 0
    for _ in range(repeats):
        start = time.perf_counter()
        sample = mapper(dict(record))
        times.append(time.perf_counter() - start)
        mask_bytes = _mask_bytes(sample)
        n_instances = len(sample["instances"])
        del sample
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss
    return {"times": times, "mask_bytes": mask_bytes, "peak_rss_kib": peak,
            "instances": n_instances}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuclei", type=int, default=700)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "RECORD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.repeats)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_dense_set(Path(tmp) / "dense", 1, args.nuclei)
        record_path = Path(tmp) / "record.json"
        record_path.write_text(json.dumps(_record(folder)))
        results = {}
        for kind in ("detectron2", "napari-nuclei"):
            out = subprocess.run(
                [sys.executable, __file__, "--repeats", str(args.repeats), "--measure", kind,
                 str(record_path)], capture_output=True, text=True, check=True)
            results[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    ref, ours = results["detectron2"], results["napari-nuclei"]
    assert ref["instances"] == ours["instances"]
    ref_time = sum(ref["times"]) / len(ref["times"])
    cached = ours["times"][1:] or ours["times"]
    ours_time = sum(cached) / len(cached)
    print(f"1000x1000 image, {ours['instances']} nuclei, resize 1000 + random flip, "
          f"{args.repeats} samples each")
    print(f"detectron2 DatasetMapper (bitmask): {ref_time:7.3f} s/sample, masks "
          f"{ref['mask_bytes'] / 2**20:7.1f} MiB, peak RSS +{ref['peak_rss_kib'] / 1024:7.1f} MiB")
    print(f"napari-nuclei NucleiMapper:         {ours_time:7.3f} s/sample "
          f"(first epoch with decoding {ours['times'][0]:.3f} s), masks "
          f"{ours['mask_bytes'] / 2**20:7.2f} MiB, peak RSS "
          f"+{ours['peak_rss_kib'] / 1024:7.1f} MiB")
    print(f"speed-up: {ref_time / ours_time:.1f}x per sample "
          f"({ref_time / ours['times'][0]:.1f}x on the first epoch)")
    print(f"mask memory: {ref['mask_bytes'] / ours['mask_bytes']:.0f}x less; peak RSS growth: "
          f"{ref['peak_rss_kib'] / max(ours['peak_rss_kib'], 1):.1f}x less")


if __name__ == "__main__":
    main()
