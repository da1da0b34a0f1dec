"""``napari-nuclei evaluate`` and ``napari-nuclei export``: scores and hand-in files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.validate import add_limit_options

_SHOWN = ("AP", "AP50", "AP75", "AP@cap", "AP50@cap", "AP75@cap", "AJI", "precision",
          "recall", "F1", "PQ")
_CLASS_SHOWN = ("AP", "AP50", "PQ", "F_c")


def add_parsers(sub) -> None:
    """Register the ``evaluate`` and ``export`` sub-commands."""
    ev = sub.add_parser(
        "evaluate", help="score a submission against ground truth (COCO AP, AJI, F1, PQ)",
        description="COCO mask AP as stock pycocotools COCOeval computes it (100 detections "
        "per image, as the competition's scorer) and with the cap raised above the nuclei "
        "count, plus AJI, precision/recall/F1 at IoU 0.5 and panoptic quality; per image and "
        "overall. Ground truth of several classes adds AP, PQ and F_c per class, mPQ, bPQ "
        "and the class accuracy of matched nuclei.")
    ev.add_argument("--gt", required=True, type=Path,
                    help="ground truth: COCO JSON, DSB folder or label images")
    ev.add_argument("--pred", required=True, type=Path, help="submission JSON")
    ev.add_argument("--test-ids", type=Path, help="test_img_ids.json: match ground-truth "
                    "images to submission ids by file name")
    ev.add_argument("-o", "--output", type=Path, help="metrics JSON to write")
    add_limit_options(ev)
    ev.set_defaults(func=run_evaluate)

    ex = sub.add_parser(
        "export", help="turn (corrected) label images into COCO JSON or a submission",
        description="Export label images as COCO instances JSON, or with --submission as the "
        "competition submission. Scores come from <name>.csv beside each label image (as "
        "written by predict --labels-dir); nuclei drawn by hand get score 1.0.")
    ex.add_argument("--labels", required=True, type=Path, nargs="+",
                    help="folder of label images, or label image files")
    ex.add_argument("--images", required=True, type=Path, help="the images' folder")
    ex.add_argument("--test-ids", type=Path, help="test_img_ids.json (default: the one in "
                    "the image folder)")
    ex.add_argument("--submission", action="store_true", help="write a submission list")
    ex.add_argument("--model", type=Path, help="the run folder that predicted the labels: "
                    "its classes' COCO ids (default: classes numbered by name)")
    ex.add_argument("-o", "--output", required=True, type=Path)
    add_limit_options(ex)
    ex.set_defaults(func=run_export)


def print_metrics(result: dict, out=None) -> None:
    """A table: one row per image, then the overall row (to ``out``, default stdout)."""
    out = out if out is not None else sys.stdout
    header = f"{'image':<24}" + "".join(f"{k:>10}" for k in _SHOWN) + f"{'GT':>6}{'pred':>6}"
    print(header, file=out)
    rows = [*result["per_image"].items(), ("overall", result["overall"])]
    for name, values in rows:
        print(f"{Path(name).name[:23]:<24}" + "".join(f"{values[k]:>10.4f}" for k in _SHOWN)
              + f"{values['gt_nuclei']:>6}{values['predicted_nuclei']:>6}", file=out)
    print(f"AP: stock COCOeval (100 detections per image); @cap: up to {result['max_dets']}",
          file=out)
    if "per_class" in result["overall"]:
        print_class_metrics(result["overall"], out)


def _cell(value, width: int = 8) -> str:
    """A score, or ``-`` where there is nothing to score."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def print_class_metrics(overall: dict, out) -> None:
    """One line per class (over all images), then mPQ, bPQ and class accuracy."""
    print(f"{'class':<24}{'GT':>6}" + "".join(f"{k:>8}" for k in _CLASS_SHOWN), file=out)
    for name, values in overall["per_class"].items():
        print(f"{name[:23]:<24}{values['gt_nuclei']:>6}"
              + "".join(_cell(values[k]) for k in _CLASS_SHOWN), file=out)
    print(f"mPQ {_cell(overall['mPQ'], 0)}  bPQ {_cell(overall['bPQ'], 0)}  class accuracy "
          f"{_cell(overall['class_accuracy'], 0)}  (PQ per class over all images; F_d is F1)",
          file=out)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei evaluate``."""
    from ..core.atomic import write_json_atomic
    from ..core.errors import InputError
    from ..core.ground_truth import load_ground_truth
    from ..core.metrics import evaluate
    from ..core.nucleus_classes import ClassSet
    from ..core.submission import read_submission, validate_submission

    gt = load_ground_truth(args.gt, args.test_ids)
    detections = read_submission(args.pred)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    # Detections name the ground truth's classes; against ground truth of one class
    # (which says nothing of classes), a model's classes are scored as one.
    classes = ClassSet.from_categories(gt.get("categories") or [], args.gt)
    category_ids = classes.ids if len(classes) > 1 else None
    known = validate_submission(detections, sizes, args.pred, unknown_images_ok=True,
                                category_ids=category_ids)
    if detections and not known:
        raise InputError(args.pred, "none of its image ids is an image of the ground truth "
                         f"{args.gt} (pass --test-ids to match images by file name)")
    if len(known) < len(detections):
        print(f"note: {len(detections) - len(known)} detection(s) belong to images without "
              "ground truth and are not scored", file=sys.stderr)
    n_crowd = sum(ann.get("iscrowd", 0) == 1 for ann in gt["annotations"])
    if n_crowd:
        print(f"note: {n_crowd} iscrowd region(s) of the ground truth are ignore regions: "
              "not nuclei, and detections inside them are not false positives",
              file=sys.stderr)
    result = evaluate(gt, known)
    print_metrics(result)
    if args.output:
        write_json_atomic(args.output, result, indent=2)
        print(f"wrote {args.output}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei export``."""
    from ..core.dataset import open_dataset
    from ..core.export import export_labels

    labels = args.labels[0] if len(args.labels) == 1 and args.labels[0].is_dir() else args.labels
    dataset = open_dataset(args.images)
    classes = None
    if args.model is not None:
        from ..core.runs import read_run

        classes = read_run(args.model).classes
    n_images, n_nuclei, missing = export_labels(labels, dataset, args.output, args.submission,
                                                args.test_ids, classes)
    if missing:
        print(f"warning: no label image for {len(missing)} image(s): "
              f"{', '.join(missing[:5])}", file=sys.stderr)
    kind = "submission" if args.submission else "COCO JSON"
    print(f"wrote {args.output} ({kind}): {n_nuclei} nuclei in {n_images} images")
    return 0
