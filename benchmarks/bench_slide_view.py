"""Benchmark: opening a generated 16,000² slide in napari, and the GUI thread while the
dock's Slides section predicts a region.

Prints, from one run:

- the time to open the slide as a lazy multiscale layer and draw the first view, the
  regions read per level (level 0 must stay unread), against napari's own reader on the
  same file (tifffile: the whole level 0 in memory);
- the worst and 99th-percentile gap of a 20 ms timer on the GUI thread while the Slides
  section predicts a 2,048² region in its child process (the stand-in blob model of the
  tests: the network's speed does not change what the GUI thread does), against the
  same timer with the viewer idle (this includes adding the live multiscale Labels layer
  after the first tiles and refreshing it as tiles finish); then the worst gap while the
  job writes its outputs and the live layer takes the finished pyramid.

Usage::

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1200x24" \\
        .venv/bin/python benchmarks/bench_slide_view.py [--size 16000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_gui_latency import GapMeter, measure_for, spin

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


def predict_region(viewer, dock, slide: Path, out: Path, meter: GapMeter) -> dict:
    import numpy as np

    section = dock.slide_section
    dock.session.output_dir = out / "session"
    dock.session.run_dir = out
    section.predict_target = "slide_jobs_for_child:predict_region_with_blobs"
    section.open_slide(slide)
    spin(lambda: section.state.slide is not None)
    viewer.layers["slide region"].add_rectangles(np.array([[4096, 4096], [6144, 6144]]))
    meter.start()
    section.buttons["predict"].click()
    spin(lambda: section.progress.maximum() > 1
         and section.progress.value() == section.progress.maximum())
    tiles = meter.stop()
    meter.start()
    spin(lambda: bool(section.state.outputs))
    ending = meter.stop()
    return {"tiles": section.progress.maximum(), "predicting": tiles, "ending": ending}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16000, help="slide side in pixels")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))

    import napari

    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.sample import sample_data_dir
    from napari_nuclei.core.slide.synthetic import write_test_slide

    viewer = napari.Viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    meter = GapMeter()
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
        busy = predict_region(viewer, dock, slide, out, meter)
        print(f"  GUI timer gaps, idle: worst {idle['worst']:.0f} ms, p99 {idle['p99']:.0f} ms")
        worst = busy["predicting"]["worst"]
        print(f"  while the tiles of a 2048x2048 region are predicted ({busy['tiles']} tiles, "
              f"child process): worst {worst:.0f} ms, p99 {busy['predicting']['p99']:.0f} "
              f"ms ({worst / max(idle['worst'], 1e-9):.1f}x idle worst)")
        print(f"  then writing the outputs, the live layer taking the finished pyramid: "
              f"worst {busy['ending']['worst']:.0f} ms")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
