"""Benchmark: how long napari's GUI thread stalls while the dock trains and predicts.

A 20 ms ``QTimer`` ticks on the GUI thread of a real viewer (under Xvfb); every gap
between ticks longer than the period is time the user could not pan, paint or click.
Measured in one process, on the sample data, for four phases:

- training, dock (child process): the Train section's Start, the run in a spawned child
  process, its reports relayed to the live plot;
- training, in-process (the previous design): the same training generator in a napari
  thread worker of the viewer's own process, reports to the same plot, with
  ``gc.freeze()`` after the first report as that design did;
- folder prediction, dock (child process): the Predict section's "Predict test folder":
  its first click, which makes the two layers the dock reuses before the prediction
  starts (napari's own cost of inserting a layer, once per session); the prediction of
  that first round from then on; the later rounds;
- folder prediction, in-process (the previous design): the model loaded and run in a
  thread worker of the viewer's process, each result added as a Labels layer;
- closing napari during training (dock): Resume, then the window's close request; the
  close is held while the run writes its checkpoint and the window closes once the
  training process has stopped (the previous design waited for it on the GUI thread).
  Measured until the run has stopped; napari's own teardown of the window that follows
  is timed apart.

Prints the worst and 99th-percentile gap per phase and their in-process / child ratios,
with the load average (``os.getloadavg()``) before and after: a loaded machine stretches
every gap.

Usage::

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1200x24" \\
        .venv/bin/python benchmarks/bench_gui_latency.py [--seconds 30] [--rounds 3] \\
        [--phases dock] [--why]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# The in-process phases import torch into the viewer's process; Triton's LLVM clashes
# with Mesa's there, so the previous design hid it, and so does this benchmark.
sys.modules.setdefault("triton", None)

TICK_MS = 20


STALL_MS = 60  # a tick this late is a stall; the sampler records what the GUI thread runs


class GapMeter:
    """Records the gaps between ticks of a timer on the GUI thread.

    With ``why=True`` a sampling thread also records, every 10 ms of a stall, the Python
    stack the GUI thread is in, so that the report can say what stalls it.
    """

    def __init__(self, why: bool = False):
        from qtpy.QtCore import QTimer

        self.gaps: list[float] = []
        self.starts: list[float] = []
        self.stalls: dict[str, int] = {}
        self.episodes: dict[float, list] = {}  # stall's start -> stacks sampled in it
        self._last = None
        self._why = why
        self._gui_thread = threading.get_ident()
        self._sampling = threading.Event()
        self.timer = QTimer()
        self.timer.timeout.connect(self._on_tick)

    def _on_tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps.append(now - self._last)
            self.starts.append(self._last)
        self._last = now

    def _sample(self) -> None:
        while not self._sampling.wait(0.01):
            last = self._last
            if last is None or (time.perf_counter() - last) * 1000 < STALL_MS:
                continue
            frame = sys._current_frames().get(self._gui_thread)
            where = []
            while frame is not None and len(where) < 4:
                code = frame.f_code
                name = Path(code.co_filename)
                if "site-packages" not in name.parts or name.parts[-2] in ("napari_nuclei",):
                    where.append(f"{name.name}:{code.co_name}")
                elif not where:
                    where.append(f"{name.parent.name}/{name.name}:{code.co_name}")
                frame = frame.f_back
            key = " < ".join(where)
            self.stalls[key] = self.stalls.get(key, 0) + 1
            self.episodes.setdefault(last, []).append(key)

    def start(self) -> None:
        self.gaps, self.starts, self._last, self.stalls, self.episodes = [], [], None, {}, {}
        self.timer.start(TICK_MS)
        if self._why:
            self._sampling.clear()
            threading.Thread(target=self._sample, daemon=True).start()

    def stop(self) -> dict:
        self.timer.stop()
        self._sampling.set()
        gaps = np.array(self.gaps) * 1000
        longest = [(float(gaps[i]), self.episodes.get(self.starts[i], []))
                   for i in np.argsort(-gaps)[:3]]
        return {"ticks": len(gaps), "worst": float(gaps.max()) if len(gaps) else 0.0,
                "p99": float(np.percentile(gaps, 99)) if len(gaps) else 0.0,
                "stalls": dict(self.stalls), "longest": longest}


def spin(condition, timeout: float = 900.0) -> None:
    """Run the event loop until ``condition()`` holds (no sleeping on the GUI thread)."""
    from qtpy.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the viewer did not get there in time")
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()


def measure_for(meter: GapMeter, seconds: float) -> dict:
    meter.start()
    end = time.monotonic() + seconds
    spin(lambda: time.monotonic() > end)
    return meter.stop()


def train_child(dock, meter, out: Path, seconds: float) -> tuple[dict, Path]:
    train = dock.train_tab
    train.form.iterations.value = 2000
    train.form.val_fraction.value = 0.0
    train.form.output.set_text(str(out / "run_child"), emit=False)
    train.start_button.click()
    spin(lambda: len(train.plot.reports) >= 2)
    result = measure_for(meter, seconds)
    train.stop_button.click()
    spin(lambda: train.result is not None)
    return result, out / "run_child"


def train_in_process(dock, meter, out: Path, seconds: float, data: Path) -> dict:
    import gc

    from napari_nuclei._qt.workers import start_job
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.training.run import iter_training

    plot, stop, frozen = dock.train_tab.plot, threading.Event(), []
    plot.set_reports([])

    def on_report(report):
        if hasattr(report, "losses"):
            if not frozen:
                gc.freeze()
                frozen.append(True)
            plot.add_report(report)

    settings = preset_settings("tiny", max_iter=2000, val_fraction=0.0)
    worker = start_job(iter_training, settings, out / "run_inprocess", data=data, stop=stop,
                       on_yield=on_report)
    spin(lambda: len(plot.reports) >= 2)
    result = measure_for(meter, seconds)
    stop.set()
    spin(lambda: not worker.is_running)
    return result


def predict_child(dock, meter, run_dir: Path, rounds: int) -> list[dict | None]:
    """The first click (which makes the dock's two layers before the prediction
    starts), the first round's prediction from then on, then the later rounds."""
    predict = dock.predict_tab
    dock.train_tab.open_run(run_dir)
    meter.start()
    predict.folder_button.click()
    spin(lambda: predict.job is not None)  # the layers are made: the child is started
    results = [meter.stop()]
    meter.start()
    spin(lambda: predict.current_button.isEnabled())
    results.append(meter.stop())
    results.append(None)
    if rounds > 1:
        meter.start()
        for _ in range(rounds - 1):
            predict.folder_button.click()
            spin(lambda: predict.current_button.isEnabled())
        results[-1] = meter.stop()
    return results


def _predict_in_thread(run_dir: Path, checkpoint: Path, paths: list[Path]):
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.predict.predictor import predict_image

    model = load_model(run_dir, checkpoint=checkpoint, score_thresh=0.05)
    for path in paths:
        pixels = read_image(path)
        yield path.stem, pixels, predict_image(model, pixels)


def warm_up(viewer) -> None:
    """Draw a large image and a Labels layer once, so that neither prediction phase pays
    for the first compilation of the OpenGL shaders."""
    image = viewer.add_image(np.zeros((1000, 1000, 3), np.uint8), rgb=True)
    labels = viewer.add_labels(np.arange(10**6, dtype=np.int32).reshape(1000, 1000) % 300)
    end = time.monotonic() + 2
    spin(lambda: time.monotonic() > end)
    viewer.layers.remove(labels)
    viewer.layers.remove(image)


def predict_in_process(viewer, meter, checkpoint: Path, rounds: int, test_dir: Path) -> dict:
    from napari_nuclei._qt.workers import start_job

    paths = sorted(p for p in test_dir.glob("*.png"))

    def on_result(result):
        name, pixels, prediction = result
        viewer.add_image(pixels, name=f"in-process {name}", rgb=pixels.ndim == 3)
        viewer.add_labels(prediction.above(0.3).labels(), name=f"in-process {name} nuclei")

    finished = []
    meter.start()
    for round_number in range(1, rounds + 1):
        start_job(_predict_in_thread, checkpoint.parent, checkpoint, paths,
                  on_yield=on_result, on_finish=lambda: finished.append(True))
        spin(lambda n=round_number: len(finished) >= n)
    return meter.stop()


def close_during_training(dock, meter) -> dict:
    """Resume the run, then close the window as its close button does; measured from
    the close request until napari has closed."""
    train = dock.train_tab
    measured = []

    def on_closed():  # the run has stopped: napari's own teardown follows at once
        measured.append((meter.stop(), time.perf_counter()))

    dock.close_guard.closed.connect(on_closed)
    reports = len(train.plot.reports)
    train.resume_button.click()
    spin(lambda: len(train.plot.reports) >= reports + 2)
    dock.predict_tab.ask = lambda *_: True  # "Close anyway?"
    meter.start()
    dock.window().close()
    spin(lambda: bool(measured))
    result, stopped = measured[0]
    result["teardown_s"] = time.perf_counter() - stopped  # napari closing its window
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="seconds of training measured per phase")
    parser.add_argument("--rounds", type=int, default=3,
                        help="test-folder predictions per prediction phase")
    parser.add_argument("--phases", choices=("all", "dock"), default="all",
                        help="dock: only the dock's phases, not the previous design's")
    parser.add_argument("--why", action="store_true",
                        help="also print where the GUI thread was during stalls")
    args = parser.parse_args()

    import napari

    from napari_nuclei.core.sample import sample_data_dir

    sample = sample_data_dir()
    load_before = os.getloadavg()
    viewer = napari.Viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    meter = GapMeter(why=args.why)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        dock.data_tab.set_paths(sample, sample / "test", sample / "test_gt", out / "session")
        rows["training, dock (child process)"], run_dir = train_child(dock, meter, out,
                                                                      args.seconds)
        if args.phases == "all":
            rows["training, in-process (previous)"] = train_in_process(dock, meter, out,
                                                                       args.seconds, sample)
        warm_up(viewer)
        click, first, later = predict_child(dock, meter, run_dir, args.rounds)
        rows["first click: the dock's layers made"] = click
        rows["folder prediction, dock (child process)"] = first
        if later is not None:
            rows["  the same, later rounds"] = later
        if args.phases == "all":
            rows["folder prediction, in-process (previous)"] = predict_in_process(
                viewer, meter, dock.session.checkpoint, args.rounds, sample / "test")
        rows["closing during training, dock"] = close_during_training(dock, meter)
    viewer.close()  # closed already by the dock: nothing left to do
    load_after = os.getloadavg()
    print(f"GUI-thread timer gaps ({TICK_MS} ms timer), worst and 99th percentile; load "
          f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min; "
          f"{os.cpu_count()} CPUs):")
    for name, row in rows.items():
        print(f"  {name:42s} ticks {row['ticks']:5d}  worst {row['worst']:7.1f} ms  "
              f"p99 {row['p99']:6.1f} ms")
    if "teardown_s" in rows.get("closing during training, dock", {}):
        print(f"  then napari's own teardown of the window: "
              f"{rows['closing during training, dock']['teardown_s'] * 1000:.0f} ms")
    dock_rows = {k: v for k, v in rows.items() if "previous" not in k}
    worst = max(dock_rows, key=lambda k: dock_rows[k]["worst"])
    print(f"worst gap of the dock's cases: {dock_rows[worst]['worst']:.1f} ms ({worst.strip()})")
    for what in ("training", "folder prediction"):
        child = rows[f"{what}, dock (child process)"]
        inproc = [v for k, v in rows.items() if k.startswith(what) and "in-process" in k]
        if not inproc:
            continue
        inproc = inproc[0]
        print(f"{what}: in-process / child worst gap = {inproc['worst'] / child['worst']:.1f}x, "
              f"p99 = {inproc['p99'] / child['p99']:.1f}x")
    if args.why:
        for name, row in rows.items():
            print(f"where the GUI thread was during stalls over {STALL_MS} ms, {name} "
                  "(10 ms samples):")
            for where, count in sorted(row["stalls"].items(), key=lambda kv: -kv[1])[:8]:
                print(f"  {count:4d}  {where}")
            for gap, stacks in row["longest"]:
                print(f"  a {gap:.0f} ms stall:")
                for where in dict.fromkeys(stacks):
                    print(f"    {stacks.count(where):3d}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
