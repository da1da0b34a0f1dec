"""``napari-nuclei predict``: a submission (and label images) for a folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.training.settings import PRESETS
from ..core.validate import add_limit_options


def add_parser(sub) -> None:
    """Register the ``predict`` sub-command."""
    p = sub.add_parser(
        "predict", help="predict nuclei in a folder of images; write the submission JSON",
        description="Predict nuclei with a trained model. Writes the competition submission "
        "(ids from test_img_ids.json by file name) and, with --labels-dir, one label image "
        "(TIFF) plus score table (CSV) per image, for correction in napari.")
    p.add_argument("--model", required=True, type=Path,
                   help="training run folder, or a .pth/.pkl weights file (see --preset)")
    p.add_argument("--images", required=True, type=Path, help="folder of images (or one image)")
    p.add_argument("--test-ids", type=Path, help="test_img_ids.json (default: the one in "
                   "the image folder, else ids 1..n by sorted name)")
    p.add_argument("-o", "--output", required=True, type=Path, help="submission JSON to write")
    p.add_argument("--labels-dir", type=Path, help="also write <name>.tif and <name>.csv here")
    p.add_argument("--preset", choices=sorted(PRESETS), help="architecture of a bare weights "
                   "file (default seed)")
    p.add_argument("--checkpoint", help="a checkpoint of the run (file name) instead of the last")
    p.add_argument("--score-thresh", type=float, help="minimum score (default: the run's)")
    p.add_argument("--max-dets", type=int, help="detection cap per image (default: the run's)")
    p.add_argument("--test-size", type=int, help="input size (default: the run's)")
    p.add_argument("--tile-size", type=int, help="predict in tiles of this size (default: "
                   "only images the network would shrink, in tiles of the input size)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_limit_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei predict``."""
    from tqdm import tqdm

    from ..core.dataset import open_dataset
    from ..core.label_files import write_label_outputs
    from ..core.predict.model import load_model
    from ..core.predict.predictor import iter_predict_dataset
    from ..core.submission import image_ids_by_name, submission_entries, write_submission

    dataset = open_dataset(args.images)
    ids = image_ids_by_name(dataset, args.test_ids)
    model = load_model(args.model, args.preset, args.checkpoint, args.device, args.test_size,
                       args.score_thresh, args.max_dets)
    entries, sizes, capped = [], {}, []
    with tqdm(total=len(dataset), unit="image", desc="predict", file=sys.stderr,
              disable=args.quiet) as bar:
        for step in iter_predict_dataset(model, dataset, tile_size=args.tile_size):
            prediction = step.prediction
            image_id = ids[Path(step.record.file_name).name]
            sizes[image_id] = (prediction.height, prediction.width)
            entries += submission_entries(image_id, prediction.rles(), prediction.scores)
            if args.labels_dir:
                write_label_outputs(args.labels_dir, step.record.name, prediction.labels(),
                                    prediction.features())
            if prediction.hit_cap:
                capped.append(step.record.name)
            bar.update(1)
            bar.set_postfix_str(f"{step.record.name}: {len(prediction)} nuclei")
    write_submission(args.output, entries, sizes)
    if capped:
        print(f"warning: {len(capped)} image(s) reached the detection cap "
              f"({model.detections_per_image}); their results are truncated: "
              f"{', '.join(capped[:5])}. Raise --max-dets.", file=sys.stderr)
    where = f" and label images in {args.labels_dir}" if args.labels_dir else ""
    print(f"wrote {args.output}: {len(entries)} nuclei in {len(sizes)} images{where}")
    return 0
