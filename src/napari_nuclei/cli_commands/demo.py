"""``napari-nuclei demo``: the whole product on the bundled sample data, files to look at."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..core.models.maskrcnn.presets import PRESETS

STEPS = 7
SUMMARY_KEYS = ("AP", "AP50", "AP75", "AP@cap", "AJI", "F1", "PQ")


def add_parser(sub) -> None:
    """Register the ``demo`` sub-command."""
    p = sub.add_parser(
        "demo", help="convert, train, predict, evaluate and export on the sample data",
        description="Run the whole workflow on the bundled sample data and write files to "
        "look at: annotations.json, the run folder, submission.json, metrics.json, "
        "corrected_labels.json, loss.png, overlay_<image>.png and napari.png.")
    p.add_argument("--out", type=Path, default=Path("demo_output"), help="output folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--iters", type=int, help="training iterations (default: the preset's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    # The demo reads the bundled sample data: its output is kept apart from it too.
    p.set_defaults(func=run, sample_data=_bundled_sample_data())


def _bundled_sample_data() -> Path | None:
    from ..core.sample import sample_data_dir

    try:
        return sample_data_dir()
    except FileNotFoundError:  # reported by the demo itself when it runs
        return None


def _step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


def _screenshot(out: Path, run_dir: Path, image: Path, labels: Path) -> str:
    """napari.png via a separate process, under Xvfb when there is no display."""
    command = [sys.executable, "-m", "napari_nuclei._qt.screenshot", str(out), str(run_dir),
               str(image), str(labels), "train"]
    if not os.environ.get("DISPLAY"):
        if shutil.which("xvfb-run") is None:
            return "skipped: no display and no xvfb-run (install Xvfb)"
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1200x24", *command]
    env = {**os.environ, "QT_API": os.environ.get("QT_API", "pyqt6")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode or not out.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {last}"
    return str(out)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when every file was written."""
    from ..core.atomic import write_json_atomic
    from ..core.convert import convert_dataset
    from ..core.dataset import open_dataset
    from ..core.export import export_labels, image_entries
    from ..core.ground_truth import load_ground_truth
    from ..core.image_io import read_image
    from ..core.jobs import drain
    from ..core.label_files import write_label_outputs
    from ..core.metrics import evaluate
    from ..core.models.maskrcnn.presets import preset_settings
    from ..core.plots import enlarged, overlay, save_rgb_png, save_training_plot
    from ..core.predict.outputs import (
        ImagePredicted,
        ImageSource,
        iter_predict_sources,
        load_outputs_model,
    )
    from ..core.sample import sample_data_dir
    from ..core.submission import image_ids_by_name, write_submission
    from ..core.training.reports import read_metrics
    from ..core.training.run import iter_training
    from .evaluate import print_metrics
    from .train import _ProgressPrinter

    started = time.monotonic()
    sample, out = sample_data_dir(), args.out.resolve()
    run_dir, labels_dir = out / "run", out / "labels"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a demo starts afresh; nothing else is removed
    out.mkdir(parents=True, exist_ok=True)

    _step(1, f"checking and converting {sample}")
    conversion = convert_dataset(open_dataset(sample), out / "annotations.json")
    for line in conversion.warning_lines():
        print(f"  warning: {line}")
    print(f"  {conversion.n_images} training images, {conversion.n_annotations} nuclei")

    _step(2, f"training the {args.preset} preset (validation: the labelled test tile)")
    settings = preset_settings(args.preset, max_iter=args.iters, device=args.device)
    printer = _ProgressPrinter(quiet=False)
    result = drain(iter_training(settings, run_dir, data=sample, val_data=sample / "test_gt"),
                   printer)
    printer.close()

    _step(3, "predicting the test images")
    test_set = open_dataset(sample / "test")
    ids = image_ids_by_name(test_set)
    # The command line's and the dock's model and generator: the same nuclei everywhere.
    model, threshold = load_outputs_model(run_dir, device=args.device)
    records = {record.name: record for record in test_set.records}
    sources = [ImageSource(record.name, record.path) for record in test_set.records]
    entries, sizes, predictions = [], {}, {}
    for step in iter_predict_sources(model, sources, skip_bad=False):
        if not isinstance(step, ImagePredicted):  # tiles of a large image
            continue
        prediction, record = step.prediction.above(threshold), records[step.name]
        image_id = ids[Path(record.file_name).name]
        sizes[image_id] = (prediction.height, prediction.width)
        entries += image_entries(image_id, step.prediction, threshold)
        labels = prediction.labels()
        write_label_outputs(labels_dir, record.name, labels, prediction.features())
        predictions[record.name] = (record, labels)
        print(f"  {record.name}: {len(prediction)} nuclei")
    write_submission(out / "submission.json", entries, sizes)

    _step(4, "evaluating against the test tile's ground truth")
    gt = load_ground_truth(sample / "test_gt", sample / "test" / "test_img_ids.json")
    metrics = evaluate(gt, entries)
    write_json_atomic(out / "metrics.json", metrics, indent=2)
    print_metrics(metrics)

    _step(5, "exporting the (correctable) label images as COCO JSON")
    export_labels(labels_dir, test_set, out / "corrected_labels.json")

    _step(6, "drawing loss.png and the overlays")
    save_training_plot(read_metrics(run_dir), out / "loss.png")
    truth_by_name = _truth_labels(gt)
    for name, (record, labels) in predictions.items():
        picture = overlay(read_image(record.path), labels, truth_by_name.get(name))
        save_rgb_png(enlarged(picture), out / f"overlay_{name}.png")

    _step(7, "napari screenshot")
    he = predictions["he_tile_1000"][0].path
    shot = _screenshot(out / "napari.png", run_dir, he, labels_dir / "he_tile_1000.tif")
    print(f"  {shot}")

    overall = metrics["overall"]
    print(f"\ndone in {time.monotonic() - started:.0f} s: {result.iteration} iterations; "
          f"files in {out}")
    print("summary (" + ", ".join(f"{k}={overall[k]:.4f}" for k in SUMMARY_KEYS) + ")")
    return 0 if (out / "napari.png").is_file() else 1


def _truth_labels(gt: dict) -> dict:
    """Ground-truth label images by image name (stem)."""
    from ..core.coco import coco_to_labels

    return {Path(im["file_name"]).stem: coco_to_labels(gt, im["id"]) for im in gt["images"]}
