"""Benchmark: where the network's forward time goes, one change at a time, in one process.

One X101-FPN model (random weights, score threshold 0, 1000 detections) predicts the
bundled 1000x1000 H&E tile as ``load_model`` builds it, and again with one of its
choices undone:

- ``stock box predictor``: detectron2's ``FastRCNNOutputLayers`` instead of the one that
  keeps class probabilities (what classes cost a one-class model);
- ``mask head unchunked``: the mask head on every detection at once instead of chunks;
- ``contiguous``: NCHW convolutions instead of ``channels_last``.

Variants alternate round by round, so that a change of machine load touches all of
them; each one's median is printed with its ratio to the model as built.

Usage: ``.venv/bin/python benchmarks/bench_forward.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

IMAGE = Path(__file__).resolve().parents[1] / "sample_data" / "test" / "he_tile_1000.png"


@contextlib.contextmanager
def _variant(model, name: str):
    """``model`` with one of its choices undone for the block."""
    import torch
    from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers

    heads = model.model.roi_heads
    if name == "stock box predictor":
        own = type(heads.box_predictor)
        heads.box_predictor.__class__ = FastRCNNOutputLayers
        try:
            yield
        finally:
            heads.box_predictor.__class__ = own
    elif name == "mask head unchunked":
        chunk = heads.mask_chunk
        heads.mask_chunk = 10**9
        try:
            yield
        finally:
            heads.mask_chunk = chunk
    elif name == "contiguous":
        model.model.to(memory_format=torch.contiguous_format)
        try:
            yield
        finally:
            model.model.to(memory_format=torch.channels_last)
    else:
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="seed")
    args = parser.parse_args()

    import os

    import torch
    from detectron2.modeling import build_model

    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.models.maskrcnn.config import build_config
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.normalize import to_model_input

    settings = preset_settings(args.preset, score_thresh_test=0.0, detections_per_image=1000,
                               device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "random.pth"
        torch.manual_seed(0)
        torch.save({"model": build_model(build_config(settings, folder)).state_dict()},
                   weights)
        model = load_model(weights, preset=args.preset, device="cpu", score_thresh=0.0,
                           max_dets=1000)
    bgr = to_model_input(read_image(IMAGE))
    model.infer(bgr[:256, :256])  # warm-up
    names = ["as built", "stock box predictor", "mask head unchunked", "contiguous"]
    times: dict[str, list[float]] = {name: [] for name in names}
    counts = {}
    for round_number in range(args.rounds):
        order = names[round_number % len(names):] + names[: round_number % len(names)]
        for name in order:
            with _variant(model, name):
                start = time.perf_counter()
                raw = model.infer(bgr)
                times[name].append(time.perf_counter() - start)
                counts[name] = len(raw.scores)
    load = os.getloadavg()[0]
    print(f"{args.preset} preset, random weights, {IMAGE.name}, cpu, {torch.get_num_threads()} "
          f"threads, {args.rounds} rounds, load average at the end {load:.2f}")
    base = statistics.median(times["as built"])
    for name in names:
        median = statistics.median(times[name])
        print(f"{name:22s} {median:7.2f} s (min {min(times[name]):6.2f}), {counts[name]} "
              f"detections, {median / base:.3f}x the model as built")


if __name__ == "__main__":
    main()
