"""``napari-nuclei predict-slide``: whole slides into OME-Zarr labels, a table and GeoJSON."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..core.models.maskrcnn.presets import PRESETS
from ..core.slide.ngff import DEFAULT_NGFF, NGFF_VERSIONS
from ..core.validate.limits import add_limit_options
from .option_types import (
    pixel_size,
    process_count,
    region,
    scheduler_address,
    score,
    stain_vectors,
    whole,
)

# Tile sides the network can take: below 32 px a tile holds no whole nucleus and the
# feature pyramid has no coarse level; above 8192 px one tile's activations exceed memory.
MIN_TILE, MAX_TILE = 32, 8192


def add_parser(sub) -> None:
    """Register the ``predict-slide`` sub-command."""
    p = sub.add_parser(
        "predict-slide", help="predict nuclei in whole-slide images (resumable, Dask-ready)",
        description="Predict nuclei in whole-slide images tile by tile. For each SLIDE, "
        "OUT/<slide>/ receives nuclei.ome.zarr (labels), nuclei.parquet (one row per "
        "nucleus with measurements), nuclei.geojson (QuPath detections) and tissue.png; "
        "OUT/summary.csv covers all slides. Stopped (Ctrl-C), the same command continues "
        "where it stopped.")
    p.add_argument("slides", nargs="+", type=Path, metavar="SLIDE",
                   help="slide files (TIFF/SVS/NDPI/..., OME-Zarr folders, TIFF/PNG images)")
    p.add_argument("--model", required=True, type=Path,
                   help="training run folder, or a .pth/.pkl weights file (see --preset)")
    p.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    p.add_argument("--preset", choices=sorted(PRESETS), help="architecture of a bare weights "
                   "file (default seed)")
    p.add_argument("--checkpoint", help="a checkpoint of the run (file name) instead of the last")
    p.add_argument("--score-thresh", type=score, help="minimum score (default: the run's)")
    p.add_argument("--max-dets", type=whole(1), help="detection cap per tile (default: the run's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=process_count(1), help="torch threads in this process "
                   "(Dask workers use one each)")
    p.add_argument("--batch-size", type=whole(1), help="tiles per forward pass (default: 4 on a "
                   "GPU, 1 on CPU); the nuclei found do not depend on it")
    where = p.add_argument_group("what to predict")
    where.add_argument("--mpp", type=pixel_size, help="the slides' pixel size in µm/px (overrides "
                       "the files'); tiles are resampled to the run's training pixel size")
    where.add_argument("--tissue", choices=("auto", "brightfield", "fluorescence", "none"),
                       default="auto", help="how background tiles are found and skipped: "
                       "brightfield (coloured tissue on glass), fluorescence (signal on a "
                       "dark background), auto (told from the slide's pixels, the default) "
                       "or none (predict every tile)")
    where.add_argument("--no-tissue-mask", dest="tissue", action="store_const", const="none",
                       help="the same as --tissue none")
    where.add_argument("--region", type=region, metavar="X,Y,W,H", help="only this "
                       "rectangle (level-0 pixels)")
    where.add_argument("--regions", type=Path, metavar="GEOJSON", help="only inside these "
                       "polygons (level-0 pixels, e.g. QuPath annotations exported as GeoJSON)")
    where.add_argument("--tile-size", type=whole(MIN_TILE, MAX_TILE), help="tile side at "
                       "the prediction pixel size (default: the run's input size)")
    where.add_argument("--overlap", type=whole(0), help="tile overlap (default: from the largest "
                       "nucleus the run was trained on)")
    where.add_argument("--stain", choices=("auto", "he", "intensity"), default="auto",
                       help="he: hematoxylin/eosin densities per nucleus; intensity: mean "
                       "per channel (default: he for colour slides)")
    where.add_argument("--stain-vectors", type=stain_vectors, metavar="HR,HG,HB,ER,EG,EB",
                       help="hematoxylin then eosin optical densities for --stain he, e.g. "
                       "from QuPath's Estimate stain vectors (default: QuPath's H&E default "
                       "0.65111,0.70119,0.29049,0.2159,0.8012,0.5581)")
    out = p.add_argument_group("outputs")
    out.add_argument("--csv", action="store_true", help="also write nuclei.csv")
    out.add_argument("--no-geojson", dest="geojson", action="store_false",
                     help="do not write nuclei.geojson")
    out.add_argument("--gzip", action="store_true", help="write nuclei.geojson.gz")
    out.add_argument("--ngff", choices=NGFF_VERSIONS, default=DEFAULT_NGFF,
                     help="NGFF version of nuclei.ome.zarr: 0.5 (zarr 3, the default; "
                     "napari) or 0.4 (zarr 2, for QuPath and Bio-Formats, which do not "
                     "read 0.5 yet)")
    out.add_argument("--overwrite", action="store_true", help="replace the job of another "
                     "slide or other settings in an output folder")
    dask = p.add_argument_group("scaling out (Dask)")
    dask.add_argument("--workers", type=process_count(0), default=0, help="start a "
                      "local Dask cluster of N processes on this machine (at most one per "
                      "core)")
    dask.add_argument("--scheduler", type=scheduler_address, metavar="tcp://HOST:PORT",
                      help="use a running Dask cluster (SLURM/PBS/LSF via dask-jobqueue, "
                      "Kubernetes, dask scheduler)")
    dask.add_argument("--block", type=whole(1), default=4, help="tiles per Dask task (default 4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_limit_options(p, slides=True)  # slides refused by their header, before any read
    p.set_defaults(func=run)


def _options(args):
    from ..core.slide.engine import SlideOptions
    from ..core.slide.job import OutputOptions
    from ..core.slide.tissue import read_regions

    if args.regions is not None:
        read_regions(args.regions)  # refused before the model loads
    return SlideOptions(args.tile_size, args.overlap, args.mpp, args.tissue, args.region,
                        args.regions, args.stain,
                        OutputOptions(args.csv, args.geojson, args.gzip), args.overwrite,
                        1 if args.batch_size is None else args.batch_size,
                        ngff=args.ngff, stain_vectors=args.stain_vectors or ())


# Tiles per forward pass on a GPU unless --batch-size says otherwise: enough to keep it
# busy with tiles of 512-1000 px, little enough for the memory of common cards.
GPU_BATCH_SIZE = 4


class _Progress:
    """One tqdm bar per slide: tiles done/total, nuclei so far, rate and ETA."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, report) -> None:
        from tqdm import tqdm

        from ..core.jobs import Notice
        from ..core.slide.engine import TileDone

        if isinstance(report, Notice):
            print(f"{report.level}: {report.message}", file=sys.stderr)
            return
        if not isinstance(report, TileDone) or self.quiet:
            return
        if self.bar is None:
            self.bar = tqdm(total=report.total, initial=report.done, unit="tile",
                            desc=Path(report.slide).name, file=sys.stderr, dynamic_ncols=True)
        self.bar.update(report.done - self.bar.n)
        self.bar.set_postfix_str(f"{report.nuclei} nuclei", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei predict-slide``."""
    from ..core.errors import InputError
    from ..core.jobs import drain
    from ..core.slide.engine import slide_name
    from ..core.slide.job import check_output_root
    from ..core.slide.reader import open_slide
    from ..core.slide.summary import SUMMARY_COLUMNS, SUMMARY_NAME, write_summary

    options = _options(args)
    check_output_root(args.output, SUMMARY_NAME, ",".join(SUMMARY_COLUMNS), args.overwrite)
    for path in args.slides:  # a bad slide is reported before the model loads
        open_slide(path).close()
    names = [slide_name(path) for path in args.slides]
    repeated = {n for n in names if names.count(n) > 1}
    if repeated:
        raise InputError(args.output, f"two slides would share the output folder "
                         f"{sorted(repeated)[0]!r}: predict them into different folders")
    load_args = dict(model=args.model, preset=args.preset, checkpoint=args.checkpoint,
                     device=args.device, score_thresh=args.score_thresh,
                     max_dets=args.max_dets)
    if args.workers or args.scheduler:
        from ..core.slide.cluster import connect, iter_predict_slide_dask

        if args.batch_size is None and args.device == "cuda":
            options = dataclasses.replace(options, batch_size=GPU_BATCH_SIZE)

        client = connect(args.workers, args.scheduler)
        start = lambda path, out: iter_predict_slide_dask(  # noqa: E731
            client, load_args, path, out, options, args.block)
    else:
        from ..core.models import load_model
        from ..core.slide.engine import iter_predict_slide

        client = None
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load_model(**load_args)
        if args.batch_size is None and model.device.startswith("cuda"):
            options = dataclasses.replace(options, batch_size=GPU_BATCH_SIZE)
        start = lambda path, out: iter_predict_slide(model, path, out, options)  # noqa: E731
    results = []
    try:
        for path, name in zip(args.slides, names, strict=True):
            progress = _Progress(args.quiet)
            try:
                result = drain(start(path, args.output / name), progress)
            except KeyboardInterrupt:
                progress.close()
                print(f"stopped: {path.name} is resumable; run the same command to continue",
                      file=sys.stderr)
                return 130
            finally:
                progress.close()
            results.append(result)
            write_summary(args.output / SUMMARY_NAME, results)
            print(f"{path.name}: {result.nuclei} nuclei in {result.predicted}/{result.tiles} "
                  f"tiles ({result.skipped_share:.0%} skipped as background) -> "
                  f"{result.out_dir}")
            print(f"  wrote {', '.join(Path(p).name for p in result.outputs.values())} in "
                  f"{result.out_dir}")
            if result.nuclei_per_class:
                print("  nuclei per class: " + ", ".join(
                    f"{name} {count}" for name, count in result.nuclei_per_class.items()))
            if result.wider_than_overlap:
                print(f"warning: {path.name}: {result.wider_than_overlap} nuclei were seen "
                      "whole by no tile that owns them (wider than the tile overlap) and "
                      "were kept once from their cut views; a larger --overlap finds them "
                      "whole", file=sys.stderr)
            if result.capped_tiles:
                print(f"warning: {path.name}: {result.capped_tiles} tiles reached the "
                      "detection cap: raise --max-dets", file=sys.stderr)
    finally:
        if client is not None:
            client.close()
    print(f"wrote {args.output / SUMMARY_NAME}: {len(results)} slide(s)")
    return 0
