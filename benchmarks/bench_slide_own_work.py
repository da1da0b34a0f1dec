"""Benchmark: the slide path's own work per tile, with the network's time taken out.

``bench_slides.py`` compares whole runs, in which the network's time dominates and
varies with the machine's load. This script runs the network once on a test slide
(``tiny`` preset, random weights, as ``bench_slides.py``), keeps its outputs, and then
times, several times each, with those outputs replayed instead of the network:

- ``predict-slide`` (read, stitch, measure, outline, write labels, table and GeoJSON);
- ``predict_image`` on the same tissue tiles held in memory (mask pasting and stitching).

It prints the CPU time per tile of each (the least of the repeats, the one least
disturbed by other programs) and their difference: the slide path's own work per tile,
which ``bench_slides.py``'s overhead is made of.

Usage: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_slide_own_work.py [--size 3000]
[--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench_slides import IMAGE, TILE, _load, _warm_imports, make_model


def _windows(slide: Path, out: Path) -> list:
    from napari_nuclei.core.slide.plan import SlidePlan
    from napari_nuclei.core.slide.reader import open_slide
    from napari_nuclei.core.slide.work import read_tile

    plan = SlidePlan.from_json(json.loads((out / "job" / "job.json").read_text()))
    with open_slide(slide) as opened:
        return [read_tile(opened, plan, t.top, t.left, t.bottom, t.right)
                for t in map(plan.tile_at, plan.selected)]


def _replaying(outputs: list):
    """A stand-in for the network's call that returns the recorded outputs in order."""
    recorded = iter(outputs)
    return lambda *args, **kwargs: next(recorded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=3000, help="side of the test slide")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side")
    args = parser.parse_args()

    import torch

    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.predict.predictor import predict_image
    from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
    from napari_nuclei.core.slide.synthetic import write_test_slide

    torch.set_num_threads(1)
    _warm_imports()
    options = SlideOptions(tile_size=TILE)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = _load(str(make_model(tmp / "run")), "cpu")
        slide = write_test_slide(tmp / "slide.tif", read_image(IMAGE), args.size)
        out = tmp / "out"
        # The network once: its outputs for the slide path (batches) and predict_image.
        batches, singles = [], []
        infer_batch, infer = model.infer_batch, model.infer
        model.infer_batch = lambda *a, **k: batches.append(infer_batch(*a, **k)) or batches[-1]
        result = drain(iter_predict_slide(model, slide, out, options))
        del model.infer_batch
        windows = _windows(slide, out)
        model.infer = lambda *a, **k: singles.append(infer(*a, **k)) or singles[-1]
        for window in windows:
            predict_image(model, window, tile_size=max(window.shape[:2]))

        slide_cpu, image_cpu = [], []
        for _ in range(args.repeats):
            model.infer_batch = _replaying(batches)
            shutil.rmtree(out)
            start = time.process_time()
            drain(iter_predict_slide(model, slide, out, options))
            slide_cpu.append(time.process_time() - start)
            model.infer = _replaying(singles)
            start = time.process_time()
            for window in windows:
                predict_image(model, window, tile_size=max(window.shape[:2]))
            image_cpu.append(time.process_time() - start)
    tiles = result.predicted
    slide_ms, image_ms = (1000 * min(times) / tiles for times in (slide_cpu, image_cpu))
    print(f"{args.size}x{args.size} slide, {tiles} tiles of {TILE} px, {result.nuclei} nuclei; "
          f"network outputs replayed; CPU ms per tile, least of {args.repeats}:")
    print(f"  predict-slide {slide_ms:.1f} (runs: "
          f"{', '.join(f'{1000 * t / tiles:.1f}' for t in slide_cpu)})")
    print(f"  predict_image {image_ms:.1f} (runs: "
          f"{', '.join(f'{1000 * t / tiles:.1f}' for t in image_cpu)})")
    print(f"  slide path's own work: {slide_ms - image_ms:.1f} ms CPU per tile (includes the "
          "job's start and end, spread over the tiles)")


if __name__ == "__main__":
    main()
