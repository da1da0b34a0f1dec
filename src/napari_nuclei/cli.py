"""The ``napari-nuclei`` command line: the same core the napari widget uses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_commands.path_roles import check_outputs_apart
from .core.errors import InputError, OptionError
from .core.validate import add_limit_options, apply_limit_options

EXIT_BAD_INPUT = 2
EXIT_STOPPED = 130
EXIT_ENGINE_MISSING = 3
# Sub-commands that run the network: they check torch and detectron2 before starting.
ENGINE_COMMANDS = frozenset({"train", "predict", "predict-slide", "demo"})
# Slide formats no reader but OpenSlide's opens (the others are TIFF files tiffslide reads).
OPENSLIDE_ONLY_SUFFIXES = (".mrxs", ".vms", ".vmu", ".svslide")
# Sub-commands whose -o is one file: an existing one is the user's and is not replaced
# unless --overwrite says so.
FILE_OUTPUT_COMMANDS = frozenset({"convert", "predict", "evaluate", "export"})


def _cmd_info(args: argparse.Namespace) -> int:
    from .environment import environment_report

    rows = environment_report()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .core.convert import convert_dataset
    from .core.dataset import open_dataset

    dataset = open_dataset(args.dataset, image_root=args.image_root)
    with tqdm(total=len(dataset), unit="image", desc="convert", file=sys.stderr,
              disable=args.quiet) as bar:
        conversion = convert_dataset(
            dataset, args.output, workers=args.workers,
            on_progress=lambda p: (bar.update(1), bar.set_postfix_str(p.item)),
            keep_crowd=True,
        )
    for line in conversion.warning_lines():
        print(f"warning: {line}", file=sys.stderr)
    print(
        f"wrote {args.output}: {conversion.n_images} images, "
        f"{conversion.n_annotations} nuclei ({dataset.layout} layout)"
    )
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    from ._qt.launch import main as launch

    return launch(args.run)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per action."""
    from .cli_commands.option_types import OneLineParser, process_count

    parser = OneLineParser(
        prog="napari-nuclei",
        description="Nuclei instance segmentation: datasets, COCO conversion, "
        "Mask R-CNN training and prediction, submission export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="print versions and CUDA availability for bug reports")
    info.set_defaults(func=_cmd_info)

    convert = sub.add_parser(
        "convert",
        help="convert a dataset (DSB folder, label images, COCO JSON) to COCO instances JSON",
        description="Convert a dataset to COCO instances JSON with RLE masks. DATASET may be "
        "a Data Science Bowl folder (train/<id>/images, masks), a test folder with "
        "test_img_ids.json, a folder of images with label images, or a COCO JSON. "
        "In mask files any non-zero pixel is foreground.",
    )
    convert.add_argument("dataset", type=Path, help="dataset folder or COCO JSON")
    convert.add_argument("-o", "--output", type=Path, required=True, help="output JSON file")
    convert.add_argument("--image-root", type=Path, default=None,
                         help="folder the COCO JSON's file names are relative to")
    convert.add_argument("--workers", type=process_count(1), default=None,
                         help="worker processes, at most one per core (default: one per "
                         "core for large sets)")
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_limit_options(convert)
    convert.set_defaults(func=_cmd_convert)

    gui = sub.add_parser("gui", help="open napari with the dock widget and the sample data")
    gui.add_argument("--run", type=Path, help="a training run to show (and predict with)")
    gui.set_defaults(func=_cmd_gui)

    from .cli_commands import demo, evaluate, install_engine, predict, predict_slide, train

    install_engine.add_parser(sub)
    train.add_parser(sub)
    predict.add_parser(sub)
    predict_slide.add_parser(sub)
    evaluate.add_parsers(sub)
    demo.add_parser(sub)
    for name in FILE_OUTPUT_COMMANDS:
        sub.choices[name].add_argument("--overwrite", action="store_true",
                                       help="replace output files that exist")
    for command in sub.choices.values():
        # Errors about a setting name the flag the user typed (max_iter -> --iters).
        flags = {a.dest: a.option_strings[-1] for a in command._actions if a.option_strings}
        command.set_defaults(option_flags=flags)
    return parser


def _quiet_third_party_warnings() -> None:
    """torch and detectron2 warn about their own internals; users cannot act on those."""
    import logging
    import warnings

    for module in ("torch", "torchvision", "detectron2", "fvcore"):
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    # tifffile logs (as errors) what it finds wrong in a damaged file as it parses it; the
    # reader then refuses the file with one line that names it, which is what users need.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def _engine_problem() -> str | None:
    """The first missing or failing engine piece, as one line with its fix; None when the
    engine works (checked by using it; a kept verdict costs milliseconds)."""
    from .core.engine import engine_status, verify_engine

    status = verify_engine(engine_status())
    if status.ready:
        return None
    problems = status.problems()
    return problems[0] if problems else "the engine is not ready; check it with: " \
        "napari-nuclei install-engine --check"


def _features_needed(args: argparse.Namespace) -> list[str]:
    """The features (keys of :data:`napari_nuclei.core.engine.libraries.FEATURES`) whose
    libraries the command needs with these options."""
    if args.command == "predict-slide":
        features = ["slides"]
        if args.workers or args.scheduler:
            features.append("dask")
        if any(Path(path).suffix.lower() in OPENSLIDE_ONLY_SUFFIXES for path in args.slides):
            features.append("openslide")
        return features
    if args.command == "predict" and (args.measurements or args.geojson):
        return ["measurements"]
    return []


def _library_problem(args: argparse.Namespace) -> str | None:
    """The libraries the command needs that are missing, with the pip command that
    installs them, as one line; None when nothing is missing (reads package metadata
    only: milliseconds)."""
    features = _features_needed(args)
    if not features:
        return None
    from .core.engine.libraries import missing_libraries

    return missing_libraries(features).line() or None


def _stop_on_sigterm():
    """SIGTERM (``kill``, a batch system's time limit) stops a command as Ctrl-C does:
    long jobs close between steps, keep their work and say how to continue, instead of
    dying wherever the signal lands. Commands with their own handling replace it.
    Returns a function that puts the previous handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # only the main thread may set handlers

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _check_new_output(args: argparse.Namespace) -> None:
    """Refuse, before any work, to replace an existing output file without --overwrite."""
    output = getattr(args, "output", None)
    if args.command not in FILE_OUTPUT_COMMANDS or output is None:
        return
    if output.is_dir():
        raise InputError(output, "is a folder: -o wants the file to write")
    if output.exists() and not args.overwrite:
        raise InputError(output, "exists: use --overwrite to replace it, or another -o "
                         "(nothing was changed)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad input prints one line naming the file and the problem (exit status 2);
    Ctrl-C or SIGTERM stops the job without leaving partial outputs (status 130);
    a missing torch or detectron2, or a library the command needs (tiffslide for slides,
    shapely for GeoJSON, ...), prints the command that installs it (status 3) before any
    work starts.
    """
    args = build_parser().parse_args(argv)
    apply_limit_options(args)
    _quiet_third_party_warnings()
    if problem := _library_problem(args):
        print(f"napari-nuclei: error: {problem}", file=sys.stderr)
        return EXIT_ENGINE_MISSING
    if args.command in ENGINE_COMMANDS and (problem := _engine_problem()):
        print(f"napari-nuclei: error: {problem}", file=sys.stderr)
        return EXIT_ENGINE_MISSING
    restore_sigterm = _stop_on_sigterm()
    try:
        check_outputs_apart(args)
        _check_new_output(args)
        return args.func(args)
    except ImportError as exc:
        from .core.engine import engine_error_line
        from .core.engine.libraries import library_error_line

        if (line := engine_error_line(exc) or library_error_line(exc)) is None:
            raise
        print(f"napari-nuclei: error: {line}", file=sys.stderr)
        return EXIT_ENGINE_MISSING
    except InputError as exc:
        print(f"napari-nuclei: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OptionError as exc:
        flag = getattr(args, "option_flags", {}).get(exc.option, exc.option)
        print(f"napari-nuclei: error: {flag}: {exc.problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        why = f" ({exc})" if str(exc) else ""
        print(f"napari-nuclei: stopped{why}", file=sys.stderr)
        return EXIT_STOPPED
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"napari-nuclei: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        restore_sigterm()


if __name__ == "__main__":
    sys.exit(main())
