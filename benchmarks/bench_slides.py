"""Benchmark: whole-slide prediction against predict_image on the same tiles.

Builds pyramidal JPEG test slides from the bundled H&E tile (a mosaic of flipped and
rotated copies with about 30% blank background; 8,000² and 16,000² by default) and
predicts them with the ``tiny`` preset (random weights, saved once) on CPU. Each
measurement runs in a fresh process. Prints, from one run each:

- throughput (megapixels of tissue tiles and nuclei per second) of ``predict-slide``
  (read, predict, stitch, measure, write labels, table and GeoJSON) against
  ``predict_image`` on the same tissue tiles held in memory (network and mask pasting
  only), and the overhead of the slide path;
- peak resident memory (``ru_maxrss``) of each slide, and the ratio of the largest to
  the smallest;
- the share of tiles skipped as background;
- with ``--workers``: the speed-up of a local Dask cluster of two workers (one torch
  thread each) over one worker, on the first slide or on a slide of ``--workers-size``
  (a smaller one is quicker to measure; the comparison needs a quiet machine with at
  least two free cores).

Both sides do the same network work: the same tile windows (``TILE`` pixels, larger or
smaller at the slide's edges), each fed whole at its own scale, the same detection cap and
score threshold, one torch thread.

Usage: ``.venv/bin/python benchmarks/bench_slides.py [--sizes 8000 16000] [--no-baseline]
[--workers] [--workers-size 4000] [--device cuda --batch-size 4]``. ``--no-baseline``
measures the memory and time of the slide path only, without the long predict_image runs;
on a GPU machine, ``--device cuda --batch-size 4`` times batched tiles against
predict_image one tile at a time.
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

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "sample_data" / "test" / "he_tile_1000.png"
TILE = 512
# Random weights score every detection low: a threshold of 0 with a cap of 200 per 512²
# tile gives about the nucleus density of H&E at 40x (700 per 1000²).
MAX_DETS = 200
SCORE_THRESH = 0.0


def make_model(folder: Path) -> Path:
    """A tiny-preset run folder with random weights (what load_model needs)."""
    import torch
    from detectron2.modeling import build_model

    from napari_nuclei.core.models.maskrcnn.config import build_config
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.runs import save_settings

    settings = preset_settings("tiny", device="cpu", min_size_test=TILE)
    cfg = build_config(settings, folder)
    torch.manual_seed(0)
    model = build_model(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, folder / "model_final.pth")
    (folder / "config.yaml").write_text(cfg.dump(), encoding="utf-8")
    (folder / "last_checkpoint").write_text("model_final.pth", encoding="utf-8")
    save_settings(settings, folder, largest_nucleus_px=40)
    return folder


def _load(run_dir: str, device: str):
    from napari_nuclei.core.models import load_model

    return load_model(run_dir, device=device, score_thresh=SCORE_THRESH, max_dets=MAX_DETS)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm_imports() -> None:
    """Import the libraries once before timing (a few seconds, paid once per process)."""
    import ome_zarr.writer  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import shapely  # noqa: F401
    import skimage.color  # noqa: F401
    import skimage.measure  # noqa: F401
    import tiffslide  # noqa: F401
    import zarr  # noqa: F401


def side_slide(run_dir: str, slide: str, out: str, workers: int, device: str,
               batch_size: int) -> dict:
    """predict-slide, in-process or on a local cluster."""
    import torch

    _warm_imports()
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide

    torch.set_num_threads(1)
    options = SlideOptions(tile_size=TILE, batch_size=batch_size)
    baseline = _peak_mib()
    if workers:
        from napari_nuclei.core.slide.cluster import connect, iter_predict_slide_dask

        connection = connect(workers)
        load_args = {"model": run_dir, "device": device, "score_thresh": SCORE_THRESH,
                     "max_dets": MAX_DETS}
        # Start the workers and load their models before timing, as a running cluster
        # would have them.
        connection.register(load_args)
        start, cpu = time.perf_counter(), time.process_time()
        result = drain(iter_predict_slide_dask(connection, load_args, slide, out,
                                               options, block=2))
        connection.close()
    else:
        model = _load(run_dir, device)
        start, cpu = time.perf_counter(), time.process_time()
        result = drain(iter_predict_slide(model, slide, out, options))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
            "nuclei": result.nuclei, "tiles": result.tiles,
            "predicted": result.predicted, "skipped": result.skipped_share,
            "peak_mib": _peak_mib(), "start_mib": baseline}


def side_predict_image(run_dir: str, slide: str, out: str, device: str) -> dict:
    """predict_image on the windows of the same tissue tiles, read into memory first."""
    import torch

    from napari_nuclei.core.predict.predictor import predict_image
    from napari_nuclei.core.slide.plan import SlidePlan
    from napari_nuclei.core.slide.reader import open_slide
    from napari_nuclei.core.slide.work import read_tile

    torch.set_num_threads(1)
    plan = SlidePlan.from_json(json.loads((Path(out) / "job" / "job.json").read_text()))
    model = _load(run_dir, device)
    with open_slide(slide) as opened:
        windows = [read_tile(opened, plan, *(lambda t: (t.top, t.left, t.bottom, t.right))(
            plan.tile_at(i))) for i in plan.selected]
    start, cpu = time.perf_counter(), time.process_time()
    nuclei = 0
    for pixels in windows:
        # Each window whole at its own scale, as the slide path feeds it (without
        # tile_size, predict_image would enlarge the smaller edge windows to the test size).
        nuclei += len(predict_image(model, pixels, tile_size=max(pixels.shape[:2])))
    seconds = time.perf_counter() - start
    megapixels = sum(w.shape[0] * w.shape[1] for w in windows) / 1e6
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "nuclei": nuclei,
            "megapixels": megapixels}


def run_side(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--side", *map(str, args)],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[8000, 16000],
                        help="slide sides to compare with predict_image (none: only --workers)")
    parser.add_argument("--workers", action="store_true",
                        help="also time a local cluster of 1 and of 2 workers")
    parser.add_argument("--workers-size", type=int,
                        help="side of the slide for --workers (default: the first size)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip predict_image (memory and throughput of the slide path only)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the network runs (both sides)")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="tiles per forward pass on the slide side")
    parser.add_argument("--side", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        kind, *rest = args.side
        if kind == "slide":
            result = side_slide(rest[0], rest[1], rest[2], int(rest[3]), rest[4], int(rest[5]))
        else:
            result = side_predict_image(*rest)
        print(json.dumps(result))
        return
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.slide.synthetic import write_test_slide

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = make_model(tmp / "run")
        print(f"tiny preset, random weights, tiles {TILE} px, score threshold {SCORE_THRESH}, "
              f"cap {MAX_DETS}, {args.device.upper()}, batch size {args.batch_size}, one "
              "torch thread per process")
        peaks = {}
        for size in args.sizes:
            start = time.perf_counter()
            slide = write_test_slide(tmp / f"slide_{size}.tif", read_image(IMAGE), size)
            made = time.perf_counter() - start
            out = tmp / f"out_{size}"
            streamed = run_side("slide", run_dir, slide, out, 0, args.device, args.batch_size)
            peaks[size] = streamed["peak_mib"]
            print(f"{size}x{size} slide ({slide.stat().st_size / 2**20:.0f} MiB, written in "
                  f"{made:.0f} s): {streamed['predicted']}/{streamed['tiles']} tiles "
                  f"predicted, {streamed['skipped']:.1%} skipped as background")
            print(f"  predict-slide: {streamed['seconds']:7.1f} s ({streamed['cpu_seconds']:.1f}"
                  f" s CPU), {streamed['nuclei']} nuclei, peak RSS "
                  f"{streamed['peak_mib']:.0f} MiB")
            if not args.baseline:
                continue
            direct = run_side("image", run_dir, slide, out, args.device)
            mp = direct["megapixels"]
            print(f"  predict-slide: {mp / streamed['seconds']:.3f} MP/s, "
                  f"{streamed['nuclei'] / streamed['seconds']:.1f} nuclei/s")
            print(f"  predict_image: {direct['seconds']:7.1f} s, {mp / direct['seconds']:.3f}"
                  f" MP/s, {direct['nuclei'] / direct['seconds']:.1f} nuclei/s "
                  f"({direct['nuclei']} nuclei) on the same {mp:.1f} MP of tissue tiles")
            # CPU time of the process as well: on a shared machine wall time also counts
            # the other programs' load, which differs between the two runs.
            print(f"  slide path overhead (read, stitch, measure, write): "
                  f"{100 * (streamed['seconds'] / direct['seconds'] - 1):.1f}% wall time, "
                  f"{100 * (streamed['cpu_seconds'] / direct['cpu_seconds'] - 1):.1f}% CPU "
                  f"time ({streamed['cpu_seconds']:.1f} s vs {direct['cpu_seconds']:.1f} s)")
        if args.workers:
            size = args.workers_size or args.sizes[0]
            slide = tmp / f"slide_{size}.tif"
            if not slide.exists():
                write_test_slide(slide, read_image(IMAGE), size)
            one = run_side("slide", run_dir, slide, tmp / f"w1_{size}", 1, args.device,
                           args.batch_size)
            two = run_side("slide", run_dir, slide, tmp / f"w2_{size}", 2, args.device,
                           args.batch_size)
            print(f"{size}x{size} slide on a Dask local cluster: 1 worker {one['seconds']:.1f} s, "
                  f"2 workers {two['seconds']:.1f} s: speed-up "
                  f"{one['seconds'] / two['seconds']:.2f}x (same nuclei: "
                  f"{one['nuclei'] == two['nuclei']}, {one['nuclei']})")
        if len(peaks) > 1:
            small, large = min(peaks), max(peaks)
            print(f"peak RSS {large}² / {small}²: {peaks[large] / peaks[small]:.2f}x "
                  f"(area {large**2 / small**2:.0f}x)")


if __name__ == "__main__":
    main()
