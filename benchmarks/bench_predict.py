"""Benchmark: end-to-end prediction of a 1000x1000 image with hundreds of detections.

Both sides use the same X101-FPN weights (random, saved once), score threshold 0 and a
cap of 1000 detections, on the bundled H&E tile:

- straightforward: detectron2's ``DefaultPredictor``, full-frame masks to numpy, then a
  pycocotools encode per mask (Fortran copy of each frame);
- napari-nuclei: ``load_model`` + ``predict_image`` (masks pasted inside their boxes
  only), then the label image, the feature table and each nucleus' RLE.

Each side runs in a fresh process (one warm-up on a small image, then the timed image);
memory is sampled every 2 ms and reported as the peak above the level just before the
timed image. Prints times, the ratio, post-processing overhead against the network's
forward time, detection counts and the peak extra memory ratio.

Usage: ``.venv/bin/python benchmarks/bench_predict.py [--device cpu] [--preset seed]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

IMAGE = Path(__file__).resolve().parents[1] / "sample_data" / "test" / "he_tile_1000.png"


class PeakMemory:
    """Resident set size sampled in a thread: the peak above the level at ``start``."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096

    def __enter__(self):
        self.base = self.rss()
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _settings(preset: str, device: str):
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings

    return preset_settings(preset, score_thresh_test=0.0, detections_per_image=1000,
                           device=device)


def make_weights(path: Path, preset: str, device: str) -> None:
    """Random weights for the preset's model, saved as a detectron2 checkpoint."""
    import torch
    from detectron2.modeling import build_model

    from napari_nuclei.core.models.maskrcnn.config import build_config

    torch.manual_seed(0)
    model = build_model(build_config(_settings(preset, "cpu"), path.parent))
    torch.save({"model": model.state_dict()}, path)


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _gpu_peak_mib(device: str, reset: bool = False) -> float:
    """Peak GPU memory allocated by torch since the last reset (0 on CPU)."""
    if device != "cuda":
        return 0.0
    import torch

    if reset:
        torch.cuda.reset_peak_memory_stats()
        return 0.0
    return torch.cuda.max_memory_allocated() / 2**20


def side_straightforward(weights: str, preset: str, device: str) -> dict:
    import cv2
    from detectron2.engine import DefaultPredictor
    from pycocotools import mask as mask_utils

    from napari_nuclei.core.models.maskrcnn.config import build_config

    cfg = build_config(_settings(preset, device), Path(weights).parent, weights)
    predictor = DefaultPredictor(cfg)
    image = cv2.imread(str(IMAGE))
    predictor(image[:256, :256])  # warm-up
    _sync(device)
    _gpu_peak_mib(device, reset=True)
    with PeakMemory() as memory:
        start = time.perf_counter()
        instances = predictor(image)["instances"].to("cpu")
        _sync(device)
        forward = time.perf_counter() - start
        masks = instances.pred_masks.numpy()
        scores = instances.scores.numpy()
        rles = []
        for mask in masks:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            rles.append(rle)
        total = time.perf_counter() - start
    areas = [int(mask_utils.area({**r, "counts": r["counts"].encode()})) for r in rles]
    return {"total": total, "forward": forward, "extra_mib": memory.extra_mib,
            "gpu_peak_mib": _gpu_peak_mib(device),
            "detections": int(sum(a > 0 for a in areas)), "scores": scores.tolist()[:5]}


def side_ours(weights: str, preset: str, device: str) -> dict:
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.predict import predictor as predictor_module

    model = load_model(weights, preset=preset, device=device, score_thresh=0.0, max_dets=1000)
    image = read_image(IMAGE)
    predictor_module.predict_image(model, image[:256, :256])  # warm-up
    forward = [0.0]
    original_infer = model.infer

    def timed_infer(*args, **kwargs):
        start = time.perf_counter()
        result = original_infer(*args, **kwargs)
        _sync(device)
        forward[0] += time.perf_counter() - start
        return result

    model.infer = timed_infer
    _sync(device)
    _gpu_peak_mib(device, reset=True)
    with PeakMemory() as memory:
        start = time.perf_counter()
        prediction = predictor_module.predict_image(model, image)
        prediction.labels()
        prediction.features()
        rles = prediction.rles()
        total = time.perf_counter() - start
    return {"total": total, "forward": forward[0], "extra_mib": memory.extra_mib,
            "gpu_peak_mib": _gpu_peak_mib(device),
            "detections": len(rles), "scores": prediction.scores.tolist()[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side = side_ours if args.side == "ours" else side_straightforward
        print(json.dumps(side(args.weights, args.preset, args.device)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random.pth"
        make_weights(weights, args.preset, args.device)
        results = {}
        for side in ("straightforward", "ours"):
            out = subprocess.run(
                [sys.executable, __file__, "--side", side, "--weights", str(weights),
                 "--preset", args.preset, "--device", args.device],
                capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-3000:])
            results[side] = json.loads(out.stdout.strip().splitlines()[-1])
    ref, ours = results["straightforward"], results["ours"]
    print(f"{args.preset} preset, random weights, {IMAGE.name} (1000x1000), device "
          f"{args.device}, score threshold 0, cap 1000")
    print(f"straightforward (DefaultPredictor + full-frame masks + encode): "
          f"{ref['total']:7.2f} s ({ref['forward']:.2f} s until masks are on the host), "
          f"{ref['detections']} nuclei, peak extra memory {ref['extra_mib']:8.1f} MiB")
    print(f"napari-nuclei (box-only paste, labels, table, RLE):             "
          f"{ours['total']:7.2f} s ({ours['forward']:.2f} s network forward), "
          f"{ours['detections']} nuclei, peak extra memory {ours['extra_mib']:8.1f} MiB")
    same = np.allclose(ref["scores"], ours["scores"], atol=1e-3)
    print(f"same detections: {ref['detections']} vs {ours['detections']} nuclei, top scores "
          f"{'agree' if same else 'DIFFER'} ({ref['scores'][:3]} vs {ours['scores'][:3]})")
    if args.device == "cuda":
        print(f"peak GPU memory: straightforward {ref['gpu_peak_mib']:.0f} MiB, "
              f"napari-nuclei {ours['gpu_peak_mib']:.0f} MiB")
    post = ours["total"] - ours["forward"]
    print(f"speed-up: {ref['total'] / ours['total']:.2f}x; post-processing "
          f"{post:.2f} s = {100 * post / ours['forward']:.1f}% of the forward time; "
          f"memory: {ref['extra_mib'] / max(ours['extra_mib'], 1e-6):.1f}x less")


if __name__ == "__main__":
    main()
