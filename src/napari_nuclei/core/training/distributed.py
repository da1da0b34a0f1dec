"""Multi-process and multi-machine training through detectron2's own launcher.

Each machine prepares its run folder (a shared file system is assumed across machines),
then ``detectron2.engine.launch`` starts one process per GPU (or per CPU worker, with
the gloo backend when there is no GPU). Every process loads the same plan and trains;
the first one writes reports, checkpoints and ``metrics.jsonl``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from ..jobs import drain
from .reports import TrainResult
from .run import load_plan, run_plan


def _worker(run_dir: str, resume: bool, on_report: Callable | None) -> None:
    from detectron2.utils import comm

    stop = threading.Event()
    # Ctrl-C reaches every process of the terminal's group; all of them then stop at the
    # same iteration boundary (run_plan makes them agree) and the first one checkpoints.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    plan = load_plan(run_dir, resume)
    drain(run_plan(plan, stop), on_report if comm.is_main_process() else None)


def launch_training(
    run_dir: str | Path,
    resume: bool,
    num_processes: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
    on_report: Callable | None = None,
) -> TrainResult:
    """Train a prepared run with ``num_processes`` processes on each of ``num_machines``.

    Parameters
    ----------
    run_dir : str or Path
        Folder prepared by :func:`napari_nuclei.core.training.run.prepare_run`.
    resume : bool
        Continue from the run's last checkpoint.
    num_processes : int
        Processes on this machine (one per GPU; on CPU, gloo workers).
    num_machines, machine_rank : int
        Machines in the job and this one's rank.
    dist_url : str
        ``tcp://HOST:PORT`` of machine 0, or ``auto`` for a free local port.
    on_report : callable, optional
        Called in the first process with each report; must be picklable.

    Returns
    -------
    TrainResult
    """
    import os

    from detectron2.engine import launch

    from ..models.maskrcnn.config import resolve_device
    from ..runs import last_checkpoint, read_run
    from .reports import read_metrics

    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    if resolve_device(read_run(run_dir).settings.device) == "cpu":
        # detectron2's launcher picks NCCL and binds a GPU whenever CUDA is visible; a run
        # asked for on the CPU hides the GPUs from its processes so they use gloo.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    try:
        launch(_worker, num_processes, num_machines=num_machines, machine_rank=machine_rank,
               dist_url=dist_url, args=(str(run_dir), resume, on_report))
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved
    reports = read_metrics(run_dir)
    done = reports[-1].iteration if reports else 0
    max_iter = reports[-1].max_iter if reports else 0
    return TrainResult(Path(run_dir), done, max_iter, done < max_iter, last_checkpoint(run_dir))
