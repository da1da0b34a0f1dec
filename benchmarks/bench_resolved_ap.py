"""What resolving overlaps does to the scores: AP of disjoint masks against overlapping ones.

Predicts the bundled labelled test tile with a trained run and scores the same detections
twice, in one run: as the network gives them (masks may overlap) and as every output now
hands them in (one resolved set: the best score keeps shared pixels, a hidden nucleus is
dropped). Prints both and their ratio.

Usage: ``python benchmarks/bench_resolved_ap.py RUN_DIR [--score-thresh T]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_nuclei.core.ground_truth import load_ground_truth
from napari_nuclei.core.metrics import evaluate
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.core.predict.outputs import (
    ImagePredicted,
    ImageSource,
    iter_predict_sources,
    load_outputs_model,
)
from napari_nuclei.core.sample import sample_data_dir
from napari_nuclei.core.submission import submission_entries


def _overlapping(prediction: Prediction, threshold: float) -> Prediction:
    """The detections above the threshold with their own, overlapping masks."""
    keep = int(np.searchsorted(-prediction.scores, -threshold, side="right"))
    return Prediction(prediction.height, prediction.width, prediction.scores[:keep],
                      prediction.crops[:keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--score-thresh", type=float)
    args = parser.parse_args()
    sample = sample_data_dir()
    gt = load_ground_truth(sample / "test_gt", sample / "test" / "test_img_ids.json")
    by_name = {Path(image["file_name"]).name: image for image in gt["images"]}
    model, threshold = load_outputs_model(args.run, device="cpu")
    threshold = args.score_thresh if args.score_thresh is not None else threshold
    sources = [ImageSource(name, sample / "test" / name) for name in by_name]
    raw, resolved = [], []
    for step in iter_predict_sources(model, sources, skip_bad=False):
        if not isinstance(step, ImagePredicted):
            continue
        image_id = by_name[Path(step.path).name]["id"]
        both = _overlapping(step.prediction, threshold), step.prediction.above(threshold)
        for entries, shown in zip((raw, resolved), both, strict=True):
            entries += submission_entries(image_id, shown.rles(), shown.scores)
    scores = [evaluate(gt, entries)["overall"] for entries in (raw, resolved)]
    print(f"score threshold {threshold:g}; {len(raw)} detections, {len(resolved)} after "
          "resolving overlaps")
    for key in ("AP", "AP50", "AP75", "AP@cap", "AJI", "F1", "PQ"):
        before, after = scores[0][key], scores[1][key]
        ratio = after / before if before else float("nan")
        print(f"{key:>7}: overlapping {before:.4f}  resolved {after:.4f}  ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
