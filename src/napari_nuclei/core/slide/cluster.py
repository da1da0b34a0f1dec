"""Predict slides on a Dask cluster: a local one, or any running ``dask.distributed`` one.

Each worker loads the model once (a worker plugin) and opens each slide once; a task
predicts a block of tiles and writes their records into the job folder, which must be on
a file system the workers share with this process. Ids come from each tile's own range,
so no counter is shared; this process finalizes and paints tiles as their neighbours
complete, exactly as :func:`~napari_nuclei.core.slide.engine.iter_predict_slide` does,
and the outputs are the same, nucleus for nucleus.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from pathlib import Path

from distributed import WorkerPlugin

from ..errors import OptionError
from ..jobs import Notice
from .engine import ModelFacts, SlideOptions, TileDone, run_job, start_job
from .job import SlideResult
from .plan import SlidePlan

PLUGIN_NAME = "napari-nuclei-model"


class ModelPlugin(WorkerPlugin):
    """Loads the model once per worker, with one torch thread (workers share the cores).

    Parameters
    ----------
    load_args : dict
        Keyword arguments of :func:`napari_nuclei.core.models.load_model`.
    threads : int
        torch threads per worker.
    """

    name = PLUGIN_NAME

    def __init__(self, load_args: dict, threads: int = 1):
        self.load_args = load_args
        self.threads = threads
        self.model = None
        self._slides: dict[str, object] = {}

    def setup(self, worker) -> None:
        import torch

        from ..models import load_model

        torch.set_num_threads(self.threads)
        self.model = load_model(**self.load_args)

    def slide(self, path: str):
        """The slide at ``path``, opened once per worker."""
        from .readers import open_slide

        if path not in self._slides:
            self._slides[path] = open_slide(path)
        return self._slides[path]

    def teardown(self, worker) -> None:
        for slide in self._slides.values():
            slide.close()


def predict_block(plan_json: dict, job_dir: str, indices: list[int],
                  batch_size: int = 1) -> list[tuple[int, int]]:
    """A Dask task: predict some tiles of a slide; returns ``(tile, nuclei owned)``."""
    from distributed import get_worker

    from .work import predict_batches, read_window

    plugin = get_worker().plugins[PLUGIN_NAME]
    plan = SlidePlan.from_json(plan_json)
    slide = plugin.slide(plan.slide)
    tiles = ((index, read_window(slide, plan, index)) for index in indices)
    return [pair for batch in predict_batches(plugin.model, plan, Path(job_dir), tiles,
                                              batch_size) for pair in batch]


class Connection:
    """A Dask client, and the local cluster it started, if any (closed together)."""

    def __init__(self, client, cluster=None):
        self.client, self.cluster = client, cluster
        self._registered: set[str] = set()

    def register(self, load_args: dict) -> None:
        key = repr(sorted(load_args.items(), key=lambda kv: kv[0]))
        if key not in self._registered:
            self.client.register_plugin(ModelPlugin(load_args))
            self._registered.add(key)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def connect(workers: int = 0, scheduler: str | None = None) -> Connection:
    """Start a local cluster of ``workers`` processes (loopback only, no dashboard), or
    connect to the scheduler at ``scheduler``."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Connection(Client(scheduler))
        except (OSError, ValueError) as exc:  # unreachable, refused, timed out, malformed
            raise OptionError("scheduler", f"cannot use the scheduler at {scheduler} "
                              f"({exc})") from None
    # Loopback only and no dashboard: nothing listens beyond this machine.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None,
                           silence_logs=logging.ERROR)
    return Connection(Client(cluster), cluster)


def iter_predict_slide_dask(
    connection: Connection, load_args: dict, slide_path: str | Path, out_dir: str | Path,
    options: SlideOptions | None = None, block: int = 4,
) -> Generator[TileDone | Notice, None, SlideResult]:
    """Predict one slide on a Dask cluster; the same reports and result as in-process.

    Parameters
    ----------
    connection : Connection
        From :func:`connect`.
    load_args : dict
        How workers load the model (:func:`~napari_nuclei.core.models.load_model`).
    slide_path, out_dir, options
        As :func:`~napari_nuclei.core.slide.engine.iter_predict_slide`.
    block : int
        Tiles per task.
    """
    from distributed import as_completed

    from ..models import load_model

    options = options or SlideOptions()
    started_at = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    # The plan needs the run's input size, detection cap and pixel size; loading the model
    # here also reports a bad run folder before any worker starts.
    facts = ModelFacts.of(load_model(**{**load_args, "device": "cpu"}))
    started = start_job(facts, Path(slide_path), out_dir, options)

    def predict_pending(pending: list[int]) -> Iterator[list[tuple[int, int]]]:
        connection.register(load_args)
        plan_json = started.plan.to_json()
        job_dir = str(started.job.job_dir)
        futures = [connection.client.submit(predict_block, plan_json, job_dir,
                                            pending[i : i + block], options.batch_size,
                                            pure=False)
                   for i in range(0, len(pending), block)]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()

    return (yield from run_job(started, options, started_at, predict_pending))
