"""Benchmark: what checking every input costs next to the work it guards.

Builds a dense COCO instances JSON (images of 1000x1000 with ~700 nuclei each, string
RLE) and a submission of the same nuclei, then, in one process:

- times the checks alone (JSON load, :func:`check_coco`, :func:`check_submission`);
- times the commands' work on the same files: ``convert`` of the COCO dataset and
  ``evaluate`` of the submission against it (both of which include the checks);

and prints the share of the checks in each. Also times a refusal: a ground-truth JSON
declaring a 200,000 x 200,000 image, which before the checks allocated 149 GiB.

Usage: ``.venv/bin/python benchmarks/bench_validation.py [--images 4] [--nuclei 700]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from dense_data import write_dense_set

from napari_nuclei.cli import main
from napari_nuclei.core.convert import convert_dataset
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.submission import submission_entries
from napari_nuclei.core.validate import load_json
from napari_nuclei.core.validate.schemas import check_coco, check_submission


def build(folder: Path, n_images: int, n_nuclei: int) -> tuple[Path, Path]:
    """A COCO JSON beside its images, and a submission of the same nuclei."""
    write_dense_set(folder, n_images, n_nuclei)
    conversion = convert_dataset(open_dataset(folder), folder / "gt.json")
    coco = conversion.coco
    by_image: dict[int, list] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["segmentation"])
    entries = []
    for image_id, rles in by_image.items():
        entries += submission_entries(image_id, rles, [0.9] * len(rles))
    (folder / "pred.json").write_text(json.dumps(entries))
    for label_file in folder.glob("*_labels.tif"):  # the COCO JSON is the dataset now
        label_file.unlink()
    return folder / "gt.json", folder / "pred.json"


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--nuclei", type=int, default=700)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dense"
        gt, pred = build(folder, args.images, args.nuclei)
        coco = json.loads(gt.read_text())
        sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
        n_nuclei = len(coco["annotations"])

        checks_gt = timed(lambda: check_coco(load_json(gt), gt, sizes_required=True))
        checks_pred = timed(lambda: check_submission(load_json(pred), sizes, pred))
        quiet = contextlib.redirect_stdout(io.StringIO())
        with quiet, contextlib.redirect_stderr(io.StringIO()):
            convert = timed(lambda: main(["convert", str(gt), "-o", str(folder / "c.json"),
                                          "-q", "--workers", "1"]))
            evaluate = timed(lambda: main(["evaluate", "--gt", str(gt), "--pred", str(pred)]))
        huge = folder / "huge.json"
        huge.write_text(json.dumps({"images": [{"id": 1, "file_name": "x.png",
                                                "height": 200_000, "width": 200_000}],
                                    "annotations": []}))
        with contextlib.redirect_stderr(io.StringIO()):
            refusal = timed(lambda: main(["evaluate", "--gt", str(huge), "--pred", str(pred)]))

    print(f"{args.images} images of 1000x1000, {n_nuclei} nuclei")
    print(f"checks of the COCO JSON:   {checks_gt:6.2f} s")
    print(f"checks of the submission:  {checks_pred:6.2f} s")
    print(f"convert (checks included): {convert:6.2f} s   checks' share "
          f"{checks_gt / convert:.2f}")
    print(f"evaluate (checks included): {evaluate:5.2f} s   checks' share "
          f"{(checks_gt + checks_pred) / evaluate:.2f}")
    print(f"refusing a GT JSON that declares 200,000 x 200,000: {refusal * 1000:.0f} ms")


if __name__ == "__main__":
    main_benchmark()
