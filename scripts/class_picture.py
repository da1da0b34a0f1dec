"""Draw ``docs/nuclei_by_class.png``: nuclei of a generated two-class set coloured by
class, the truth beside a prediction of a small model trained on that set.

No labelled classes ship with the sample data, so the picture is made from the generated
set the tests use (large pale "tumor" nuclei, small dark "lymphocyte" nuclei): it shows
what the outputs look like, not how well a real model classifies.

Usage: ``.venv/bin/python scripts/class_picture.py [--out docs/nuclei_by_class.png]``
(trains the ``tiny`` preset for a few minutes on CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the generated set's writer is the tests' own


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "nuclei_by_class.png")
    parser.add_argument("--iters", type=int, default=300)
    args = parser.parse_args()

    from class_helpers import class_image, write_dsb_classes

    from napari_nuclei.cli import main as cli
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.plots import class_overlay, enlarged, save_rgb_png
    from napari_nuclei.core.predict.predictor import predict_image

    with tempfile.TemporaryDirectory() as folder:
        data = write_dsb_classes(Path(folder) / "data", count=12)
        run = Path(folder) / "run"
        status = cli(["train", "--data", str(data), "--out", str(run), "--preset", "tiny",
                      "--iters", str(args.iters), "--min-size", "192", "--test-size", "192",
                      "--lr", "0.005", "--warmup", "50", "--checkpoint-period",
                      str(args.iters), "--eval-period", "0", "--device", "cpu", "-q"])
        if status:
            return status
        model = load_model(run, device="cpu")
        classes = model.classes
        image, truth, names = class_image(100)  # not among the training images
        shown = predict_image(model, image).above(model.score_thresh)
        truth_classes = {label: classes.index_of_name(name) for label, name in names.items()}
        predicted_classes = {index + 1: int(kind) for index, kind in enumerate(shown.classes)}
        left = class_overlay(image, truth, truth_classes, classes)
        right = class_overlay(image, shown.labels(), predicted_classes, classes)
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        picture = enlarged(np.concatenate([left, gap, right], axis=1), 900)
        save_rgb_png(picture, args.out)
        counts = ", ".join(f"{n} {c}" for n, c in shown.counts_per_class(classes).items())
        colours = ", ".join(f"{c.name} {c.color}" for c in classes)
        print(f"wrote {args.out}: truth (left), prediction (right: {counts}); {colours}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
