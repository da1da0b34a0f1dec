"""Benchmark: opening a generated 16,000² slide in napari, and the GUI thread while the
dock's Slides section predicts a region.

Prints, from one run:

- the time to open the slide as a lazy multiscale layer and draw the first view, the
  regions read per level (level 0 must stay unread), against napari's own reader on the
  same file (tifffile: the whole level 0 in memory);
- the worst and 99th-percentile gap of a 20 ms timer on the GUI thread, case by case:
  the viewer idle; the Slides section opening the slide (its finished predictions
  looked for on disk; its layers made in a worker and put in the viewer a step per
  turn); the click on *Predict region*, which makes the region's empty multiscale
  Labels layer before the job starts (napari's own cost of inserting a layer);
  predicting a 2,048² region in its child process (the stand-in blob model of the
  tests: the network's speed does not change what the GUI thread does), the job's
  refreshes swapping the live labels into that layer as tiles finish, with the view on
  the region so that every refresh is drawn; then the job writing its outputs and the
  layer taking the finished pyramid; then a finished pyramid added as a layer of its
  own (a slide opened again with its predictions, or a restored session); and, before
  the prediction, panning at full resolution over the tab's layer (tiles decoded in a
  thread, drawn coarse first) against the same moves over plain lazy dask levels
  (decoded on napari's thread when drawn: the baseline);
- the load average (``os.getloadavg()``) before and after: a loaded machine stretches
  every gap.

Usage::

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1200x24" \\
        .venv/bin/python benchmarks/bench_slide_view.py [--size 16000] [--why]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_gui_latency import TICK_MS, GapMeter, measure_for, spin

TESTS = Path(__file__).resolve().parents[1] / "tests"


def count_level_reads() -> dict:
    from napari_nuclei.core.slide.reader import TiffSlideReader

    counts: dict[int, int] = {}
    original = TiffSlideReader._read

    def counting(self, level, *args):
        counts[level] = counts.get(level, 0) + 1
        return original(self, level, *args)

    TiffSlideReader._read = counting
    return counts


def open_lazily(viewer, slide: Path) -> tuple[float, dict]:
    from napari_nuclei.core.slide.lazy import slide_layer_data

    reads = count_level_reads()
    started = time.perf_counter()
    levels, meta, _ = slide_layer_data(slide)
    layer = viewer.add_image(levels, **meta)
    viewer.reset_view()
    viewer.screenshot(canvas_only=True)
    seconds = time.perf_counter() - started
    viewer.layers.remove(layer)
    return seconds, dict(sorted(reads.items()))


def open_with_napari(viewer, slide: Path) -> float:
    started = time.perf_counter()
    layers = viewer.open(str(slide), plugin="napari")
    viewer.screenshot(canvas_only=True)
    seconds = time.perf_counter() - started
    for layer in layers:
        viewer.layers.remove(layer)
    return seconds


def pan(viewer, layer, meter: GapMeter, moves: int = 8) -> dict:
    """Zoomed in at level 0, the view moved a screen at a time across fresh parts of the
    slide, each move given 300 ms to draw."""
    unit = layer.scale[0]
    viewer.camera.zoom = 1 / unit  # one screen pixel per level-0 pixel
    meter.start()
    for k in range(moves):
        viewer.camera.center = ((2000 + 1300 * k) * unit, (3000 + 1700 * k) * unit)
        end = time.monotonic() + 0.3
        spin(lambda end=end: time.monotonic() > end)
    return meter.stop()


def panning(viewer, section, slide: Path, meter: GapMeter) -> dict:
    """Panning over the Slides tab's layer (decoded in a thread) and over the same slide
    as plain lazy dask levels (decoded on napari's thread when drawn)."""
    from napari_nuclei.core.slide.lazy import slide_layer_data

    rows = {}
    for layer in viewer.layers:
        layer.visible = False
    section.slide_layer.visible = True
    rows["panning at level 0, the Slides tab's layer"] = pan(viewer, section.slide_layer,
                                                             meter)
    section.slide_layer.visible = False
    levels, meta, _ = slide_layer_data(slide)  # dask levels, as File > Open gives them
    plain = viewer.add_image(levels, **meta)
    end = time.monotonic() + 2
    spin(lambda: time.monotonic() > end)
    rows["panning at level 0, lazy dask levels (baseline)"] = pan(viewer, plain, meter)
    viewer.layers.remove(plain)
    for layer in viewer.layers:
        layer.visible = True
    return rows


def predict_region(viewer, dock, slide: Path, out: Path, meter: GapMeter) -> dict:
    import numpy as np

    section = dock.slide_section
    dock.session.output_dir = out / "session"
    dock.session.run_dir = out
    section.predict_target = "slide_jobs_for_child:predict_region_with_blobs"
    rows = {}
    meter.start()
    section.open_slide(slide)
    spin(lambda: section.state.slide is not None)
    end = time.monotonic() + 2  # napari draws it meanwhile
    spin(lambda: time.monotonic() > end)
    rows["opening the slide (Slides section)"] = meter.stop()
    rows.update(panning(viewer, section, slide, meter))
    viewer.layers["slide region"].add_rectangles(np.array([[4096, 4096], [6144, 6144]]))
    # The view on the region, so that each refresh of the live labels is drawn.
    viewer.scene.camera.center = (5120 * section.state.units_per_pixel,) * 2
    viewer.scene.camera.zoom = 0.5 / section.state.units_per_pixel
    meter.start()
    section.buttons["predict"].click()  # the region's layer made, then the job started
    spin(lambda: section.job is not None)
    rows["the click: the region's layer made before the job"] = meter.stop()
    meter.start()
    spin(lambda: bool(section.state.outputs))
    end = time.monotonic() + 2  # napari draws the finished pyramid meanwhile
    spin(lambda: time.monotonic() > end)
    name = "predicting a region (live refreshes, then the pyramid)"
    rows[name] = meter.stop()
    rows[name]["refreshes"] = section.labels_layers.refreshes
    out_dir = next(iter(section.state.outputs))
    layer = section.labels_layers[out_dir]
    viewer.layers.remove(layer)
    section.labels_layers.layers.pop(out_dir)
    end = time.monotonic() + 2
    spin(lambda: time.monotonic() > end)
    meter.start()
    # As a slide opened again (or a restored session) shows a finished prediction: the
    # layer made in a worker, put in the viewer in turns.
    from napari_nuclei._qt.layer_turns import new_layer
    from napari_nuclei._qt.workers import start_job
    from napari_nuclei.core.slide.lazy import cached_labels_layer_data

    def made():
        data, pyramid = cached_labels_layer_data(out_dir, (4096, 4096, 2048, 2048))
        return new_layer(*data), pyramid

    start_job(made, on_return=lambda got: section.labels_layers.show_made(out_dir, *got))
    spin(lambda: out_dir in section.labels_layers
         and section.labels_layers[out_dir] in viewer.layers)
    end = time.monotonic() + 3  # napari draws it meanwhile
    spin(lambda: time.monotonic() > end)
    rows["adding a finished pyramid (a slide opened again)"] = meter.stop()
    return rows


def print_row(name: str, row: dict, idle: dict | None = None) -> None:
    extra = f" ({row['refreshes']} refreshes)" if "refreshes" in row else ""
    ratio = f", {row['worst'] / max(idle['worst'], 1e-9):.1f}x idle" if idle else ""
    print(f"  {name:56s} ticks {row['ticks']:5d}  worst {row['worst']:6.0f} ms  "
          f"p99 {row['p99']:5.0f} ms{ratio}{extra}")


def print_stalls(name: str, row: dict) -> None:
    print(f"  where the GUI thread was in stalls, {name}:")
    for where, count in sorted(row["stalls"].items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {count:4d}  {where}")
    for gap, stacks in row["longest"][:2]:
        print(f"    a {gap:.0f} ms stall:")
        for where in dict.fromkeys(stacks):
            print(f"      {stacks.count(where):3d}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16000, help="slide side in pixels")
    parser.add_argument("--why", action="store_true",
                        help="also print where the GUI thread was during stalls")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))

    import napari

    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.sample import sample_data_dir
    from napari_nuclei.core.slide.synthetic import write_test_slide

    load_before = os.getloadavg()
    viewer = napari.Viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    meter = GapMeter(why=args.why)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        slide = write_test_slide(out / "bench.tif", read_image(
            sample_data_dir() / "test" / "he_tile_1000.png"), args.size)
        written = time.perf_counter() - started
        print(f"{args.size}x{args.size} slide ({slide.stat().st_size / 2**20:.0f} MiB, "
              f"written in {written:.1f} s)")
        lazy, reads = open_lazily(viewer, slide)
        print(f"  lazy open + first view: {lazy:.2f} s; regions read per level: {reads}")
        whole = open_with_napari(viewer, slide)
        print(f"  napari's own reader (level 0 whole): {whole:.2f} s; ratio {whole / lazy:.0f}x")
        idle = measure_for(meter, 5.0)
        rows = predict_region(viewer, dock, slide, out, meter)
    viewer.close()
    load_after = os.getloadavg()
    print(f"GUI-thread timer gaps ({TICK_MS} ms timer), worst and 99th percentile; load "
          f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(1 min; {os.cpu_count()} CPUs):")
    print_row("idle", idle)
    for name, row in rows.items():
        print_row(name, row, idle)
    print(f"  worst gap of all cases: {max(r['worst'] for r in rows.values()):.0f} ms")
    tab = rows["panning at level 0, the Slides tab's layer"]
    plain = rows["panning at level 0, lazy dask levels (baseline)"]
    print(f"panning: lazy dask levels / the Slides tab's layer: worst gap "
          f"{plain['worst'] / max(tab['worst'], 1e-9):.1f}x, p99 "
          f"{plain['p99'] / max(tab['p99'], 1e-9):.1f}x")
    if args.why:
        for name, row in rows.items():
            print_stalls(name, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
