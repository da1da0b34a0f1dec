"""``napari-nuclei predict``: a submission (and label images) for a folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.models.maskrcnn.presets import PRESETS
from ..core.validate import add_limit_options
from .option_types import pixel_size, stain_vectors


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
    p.add_argument("--measurements", type=Path, help="also write one row per nucleus with "
                   "its shape and stain measurements (.parquet, or .csv)")
    p.add_argument("--geojson", type=Path, help="also write <name>.geojson (QuPath "
                   "detections) per image into this folder")
    p.add_argument("--mpp", type=pixel_size, help="the images' pixel size in µm/px for the "
                   "µm columns of --measurements (default: the run's training pixel size, "
                   "when it records one)")
    p.add_argument("--stain-vectors", type=stain_vectors, metavar="HR,HG,HB,ER,EG,EB",
                   help="hematoxylin then eosin optical densities of colour images for "
                   "--measurements and --geojson (default: QuPath's H&E default)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_limit_options(p)
    p.set_defaults(func=run)


def _write_measurements(path: Path, tables: list, metadata: dict) -> None:
    """All images' nucleus rows in one Parquet or CSV file (an ``image`` column first)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from ..core.atomic import atomic_path

    rows = [{"image": name, **row} for name, image_rows in tables for row in image_rows]
    # Colour and grey images have different stain columns: keep all, empty where absent.
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["image", "id"]
    table = pa.table({c: [row.get(c) for row in rows] for c in columns})
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            pcsv.write_csv(table, tmp)
        else:
            pq.write_table(table, tmp)


def _check_new_outputs(args: argparse.Namespace, names: list[str]) -> None:
    """Refuse, before the model loads, to replace files the user may have made (label
    images corrected in napari, a table, GeoJSON) unless ``--overwrite`` is given."""
    from ..core.errors import InputError

    if args.overwrite:
        return
    existing = [args.measurements] if args.measurements else []
    for folder, suffixes in ((args.labels_dir, (".tif", ".csv")), (args.geojson, (".geojson",))):
        if folder is not None:
            existing += [Path(folder) / f"{name}{suffix}" for name in names
                         for suffix in suffixes]
    existing = [path for path in existing if path.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(existing[0], f"exists{more}: use --overwrite to replace it, or "
                         "other output folders (nothing was changed)")


def run(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei predict``."""
    from tqdm import tqdm

    from ..core.dataset import open_dataset
    from ..core.export import image_entries
    from ..core.label_files import write_label_outputs
    from ..core.predict.outputs import (
        ImagePredicted,
        ImageSource,
        iter_predict_sources,
        load_outputs_model,
    )
    from ..core.submission import image_ids_by_name, write_submission

    dataset = open_dataset(args.images)
    ids = image_ids_by_name(dataset, args.test_ids)
    _check_new_outputs(args, [record.name for record in dataset.records])
    # The dock's and the demo's model and generator: the same nuclei at the same threshold.
    model, threshold = load_outputs_model(args.model, args.preset, args.checkpoint,
                                          args.device, args.test_size, args.score_thresh,
                                          args.max_dets)
    records = {record.name: record for record in dataset.records}
    sources = [ImageSource(record.name, record.path) for record in dataset.records]
    entries, sizes, capped, measured, counts = [], {}, [], [], {}
    if args.measurements or args.geojson:
        from ..core.image_io import read_image
        from ..core.slide.measure import measure_prediction, stain_vectors_of
        from ..core.slide.outputs import assemble_geojson, table_metadata, write_features_part

        mpp = args.mpp or _run_pixel_size(model)
        vectors = stain_vectors_of(args.stain_vectors or ())
    with tqdm(total=len(dataset), unit="image", desc="predict", file=sys.stderr,
              disable=args.quiet) as bar:
        for step in iter_predict_sources(model, sources, skip_bad=False,
                                         tile_size=args.tile_size):
            if not isinstance(step, ImagePredicted):  # tiles of a large image
                bar.set_postfix_str(f"{step.name}: tile {step.tile}/{step.tiles}")
                continue
            record = records[step.name]
            prediction = step.prediction.above(threshold)
            image_id = ids[Path(record.file_name).name]
            sizes[image_id] = (prediction.height, prediction.width)
            entries += image_entries(image_id, step.prediction, threshold,
                                     classes=model.classes)
            if args.labels_dir:
                write_label_outputs(args.labels_dir, record.name, prediction.labels(),
                                    prediction.features(classes=model.classes))
            if args.measurements or args.geojson:
                rows, features = measure_prediction(prediction, read_image(record.path), mpp,
                                                    vectors, model.classes)
                measured.append((record.name, rows))
                if args.geojson:
                    lines = args.geojson / f".{record.name}.geojsonl"
                    write_features_part(lines, features)
                    assemble_geojson([lines], args.geojson / f"{record.name}.geojson",
                                     compress=False)
                    lines.unlink()
            counts = _add_counts(counts, prediction.counts_per_class(model.classes))
            if prediction.hit_cap:
                capped.append(record.name)
            bar.update(1)
            bar.set_postfix_str(f"{record.name}: {len(prediction)} nuclei")
    write_submission(args.output, entries, sizes, model.classes.ids)
    if args.measurements:
        stain = "he" if any("hematoxylin_od" in row for _, rows in measured for row in rows) \
            else "intensity"
        _write_measurements(args.measurements, measured, table_metadata(
            mpp, stain, str(getattr(model, "weights", "") or ""), vectors=vectors))
    if capped:
        print(f"warning: {len(capped)} image(s) reached the detection cap "
              f"({model.detections_per_image}); their results are truncated: "
              f"{', '.join(capped[:5])}. Raise --max-dets.", file=sys.stderr)
    also = [f"label images and score tables in {args.labels_dir}" if args.labels_dir else "",
            f"measurements in {args.measurements}" if args.measurements else "",
            f"GeoJSON in {args.geojson}" if args.geojson else ""]
    also = "; ".join(a for a in also if a)
    print(f"wrote {args.output}: {len(entries)} nuclei in {len(sizes)} images"
          + (f"; {also}" if also else ""))
    if len(model.classes) > 1:
        print("nuclei per class: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    return 0


def _add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {name: total.get(name, 0) + n for name, n in more.items()}


def _run_pixel_size(model) -> float | None:
    """The training pixel size the model's run folder records, if any."""
    from ..core.runs import recorded_number

    weights = getattr(model, "weights", None)
    return recorded_number(Path(weights).parent, "mpp") if weights is not None else None
