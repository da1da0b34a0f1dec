"""``napari-nuclei train``: the training engine with a terminal progress bar."""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import threading
from pathlib import Path

from ..core.models.maskrcnn.presets import PRESETS
from .option_types import process_count


def add_parser(sub) -> None:
    """Register the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train Mask R-CNN on a nuclei dataset (stop with Ctrl-C, continue with --resume)",
        description="Train detectron2 Mask R-CNN on an annotated dataset. Ctrl-C or SIGTERM "
        "stops at the next iteration with a checkpoint; --resume RUN_DIR continues.",
    )
    p.add_argument("--data", type=Path, help="training data: DSB folder, label images or "
                   "COCO JSON")
    p.add_argument("--out", type=Path, help="run folder to create (default runs/<preset>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue a stopped run from its last checkpoint")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="seed: the competition recipe (X101-FPN); r101; fast: R50 for a "
                   "laptop CPU; tiny: for tests and demos (default)")
    p.add_argument("--weights", help="zoo, none, a .pth/.pkl file or a previous run folder")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    p.add_argument("--val", type=Path, help="separate annotated validation set")
    p.add_argument("--val-fraction", type=float, help="share of --data held out for "
                   "validation AP (default 0)")
    p.add_argument("--image-root", type=Path, help="image folder of a COCO JSON --data")
    group = p.add_argument_group("schedule and model (override the preset)")
    group.add_argument("--iters", type=int, dest="max_iter")
    group.add_argument("--lr", type=float, dest="base_lr")
    group.add_argument("--steps", type=int, nargs="*", help="iterations where lr drops 10x")
    group.add_argument("--warmup", type=int, dest="warmup_iters")
    group.add_argument("--min-size", type=int, nargs="+", dest="min_size_train",
                       help="training shortest-edge size(s)")
    group.add_argument("--max-size", type=int, dest="max_size_train")
    group.add_argument("--batch-size", type=int, dest="ims_per_batch",
                       help="images per iteration over all processes")
    group.add_argument("--roi-batch", type=int, dest="batch_size_per_image",
                       help="proposals sampled per image")
    group.add_argument("--checkpoint-period", type=int)
    group.add_argument("--eval-period", type=int)
    group.add_argument("--test-size", type=int, dest="min_size_test")
    group.add_argument("--score-thresh", type=float, dest="score_thresh_test")
    group.add_argument("--max-dets", type=int, dest="detections_per_image")
    group.add_argument("--workers", type=process_count(0), dest="num_workers",
                       help="data-loading processes, at most one per core")
    group.add_argument("--seed", type=int)
    group.add_argument("--keep-checkpoints", type=_keep_count, metavar="N|all",
                       help="periodic checkpoints kept on disk (default 2; the best by "
                       "validation AP, the last and the final model always stay)")
    group.add_argument("--class-balance", type=float, metavar="T",
                       help="draw images of rare nucleus classes more often: images of "
                       "a class found in fewer than this share of images repeat (0: off)")
    group.add_argument("--mpp", type=float, help="pixel size of the training images in "
                       "microns per pixel (whole slides are predicted at this pixel size)")
    dist = p.add_argument_group("several processes or machines (detectron2 launcher)")
    dist.add_argument("--num-gpus", type=int, default=1,
                      help="processes per machine: one per GPU (on CPU: gloo workers)")
    dist.add_argument("--num-machines", type=int, default=1)
    dist.add_argument("--machine-rank", type=int, default=0)
    dist.add_argument("--dist-url", default="auto", help="tcp://HOST:PORT of machine 0")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _keep_count(text: str) -> int:
    if text == "all":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("keep at least 1 checkpoint (or 'all')")
    return value


_OVERRIDES = ("max_iter", "base_lr", "warmup_iters", "max_size_train", "ims_per_batch",
              "batch_size_per_image", "checkpoint_period", "eval_period", "min_size_test",
              "score_thresh_test", "detections_per_image", "num_workers", "seed",
              "val_fraction", "weights", "keep_checkpoints", "mpp", "class_balance")
DEFAULT_PRESET = "tiny"


def _overrides(args) -> dict:
    """The settings given on the command line (None for those left out)."""
    values = {name: getattr(args, name) for name in _OVERRIDES}
    values["steps"] = tuple(args.steps) if args.steps is not None else None
    values["min_size_train"] = (tuple(args.min_size_train)
                                if args.min_size_train is not None else None)
    values["preset"] = args.preset
    return values


def _settings(args):
    from ..core.models.maskrcnn.presets import preset_settings

    values = _overrides(args)
    del values["preset"]
    if values["mpp"] is None and args.data is not None:
        values["mpp"] = _windows_pixel_size(args.data)
    return preset_settings(args.preset or DEFAULT_PRESET, **values)


def _windows_pixel_size(data: Path) -> float | None:
    """The pixel size recorded by a training set of slide windows, if ``data`` is one."""
    from ..core.slide.training_windows import training_set_mpp

    mpp = training_set_mpp(data) if Path(data).is_dir() else None
    if mpp:
        print(f"note: training at {mpp:g} µm per pixel, the pixel size of the slide windows "
              f"in {data} (--mpp overrides it)", file=sys.stderr)
    return mpp


def _check_process_options(args) -> None:
    from ..core.errors import OptionError

    for name in ("num_gpus", "num_machines"):
        if getattr(args, name) < 1:
            raise OptionError(name, f"must be at least 1 (got {getattr(args, name)})")
    if not 0 <= args.machine_rank < args.num_machines:
        raise OptionError("machine_rank", f"must be between 0 and {args.num_machines - 1}")


def _refuse_data_on_resume(args) -> None:
    from ..core.errors import OptionError

    for name in ("data", "val", "image_root", "out"):
        if getattr(args, name) is not None:
            raise OptionError(name, "cannot change when a run is resumed: the run keeps its "
                              "own data and folder")


class _ProgressPrinter:
    """Terminal output of a run: data preparation, notices, and a bar per iteration.

    Picklable, so that the first process of a multi-process run can print too.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self._bar = None

    def __call__(self, report) -> None:
        from ..core.jobs import StepProgress
        from ..core.training.reports import Notice, TrainReport

        if isinstance(report, Notice):
            print(f"{report.level}: {report.message}", file=sys.stderr)
        elif isinstance(report, StepProgress) and not self.quiet:
            print(f"\rpreparing data {report.done}/{report.total} ({report.item})",
                  end="\n" if report.done == report.total else "", file=sys.stderr)
        elif isinstance(report, TrainReport):
            self._train(report)

    def _train(self, report) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=report.max_iter, initial=report.iteration - 1,
                             unit="it", desc="train", file=sys.stderr, dynamic_ncols=True)
        self._bar.n = report.iteration
        terms = " ".join(f"{k[5:]}={v:.3f}" for k, v in sorted(report.losses.items()))
        minutes, seconds = divmod(int(report.eta_seconds), 60)
        postfix = (f"loss={report.total_loss:.3f} ({terms}) lr={report.lr:.2g} "
                   f"{report.seconds_per_iter:.2f}s/it eta={minutes}:{seconds:02d}")
        if report.val_metrics:
            postfix += f" val AP={report.val_metrics.get('AP', 0):.3f}"
        self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _install_stop_handlers(stop: threading.Event, forward_to_children: bool):
    """First Ctrl-C/SIGTERM: stop at the next iteration with a checkpoint; a second one
    aborts now, or right after the checkpoint being written is on disk."""
    from ..core.interrupts import hold_interrupt

    def handler(signum, _frame):
        if forward_to_children:
            for child in multiprocessing.active_children():
                if signum == signal.SIGTERM:
                    child.terminate()  # SIGTERM: the child stops with a checkpoint
            return
        if stop.is_set():
            if hold_interrupt() is not None:
                return  # raised once the file being written is on disk
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this iteration (a checkpoint is written); "
              "press Ctrl-C again to abort now", file=sys.stderr)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, h) for sig, h in previous.items()]


def run(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei train``; returns the exit status (130 when stopped early)."""
    from ..core.jobs import drain
    from ..core.training.run import iter_training

    resume = args.resume is not None
    if not resume and args.data is None:
        print("napari-nuclei train: error: --data is required (or --resume RUN_DIR)",
              file=sys.stderr)
        return 2
    _check_process_options(args)
    if resume:
        _refuse_data_on_resume(args)
        settings, changes = None, _overrides(args)
        run_dir = args.resume
    else:
        # Checked before anything is created: a bad value leaves no folder behind.
        settings, changes = _settings(args).validate(), None
        run_dir = args.out or Path("runs") / settings.preset
    printer = _ProgressPrinter(args.quiet)
    stop = threading.Event()
    processes = args.num_gpus * args.num_machines
    try:
        if processes > 1:
            result = _train_in_processes(args, settings, run_dir, changes, printer, stop)
        else:
            restore = _install_stop_handlers(stop, forward_to_children=False)
            try:
                result = drain(iter_training(settings, run_dir, args.data, args.val,
                                             args.image_root, resume, args.device, stop,
                                             changes), printer)
            finally:
                restore()
    finally:
        printer.close()
    return _report_result(result)


def _train_in_processes(args, settings, run_dir, changes, printer, stop):
    from ..core.jobs import drain
    from ..core.training.distributed import launch_training
    from ..core.training.run import prepare_run
    from ..core.training.run_folder import hold_run_folder

    resume = args.resume is not None
    with hold_run_folder(run_dir, new=not resume) as folder:
        drain(prepare_run(settings, folder, args.data, args.val, args.image_root, resume,
                          args.device, changes), printer)
        restore = _install_stop_handlers(stop, forward_to_children=True)
        try:
            return launch_training(folder, resume, args.num_gpus, args.num_machines,
                                   args.machine_rank, args.dist_url, printer)
        finally:
            restore()


def _report_result(result) -> int:
    from ..core.training.run_folder import folder_size

    where = result.checkpoint.name if result.checkpoint else "no checkpoint written"
    size = f"{folder_size(result.run_dir) / 2**20:,.0f} MiB on disk"
    if result.stopped:
        print(f"stopped at iteration {result.iteration}/{result.max_iter} ({where}; {size}); "
              f"continue with: napari-nuclei train --resume {result.run_dir}")
        return 130
    print(f"trained {result.max_iter} iterations: {result.run_dir} ({where}; {size})")
    return 0
