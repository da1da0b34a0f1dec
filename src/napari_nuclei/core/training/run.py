"""A training run as a stoppable generator over detectron2's own trainer.

:func:`iter_training` prepares the run folder (data check and conversion, weights,
config), then drives ``NucleiTrainer`` through the same steps as detectron2's
``TrainerBase.train`` (``before_train``, then ``before_step``/``run_step``/``after_step``
per iteration, ``after_train``), yielding a :class:`TrainReport` after every iteration.
Between iterations it honours a stop request: it writes a checkpoint and returns, leaving
the run resumable. Closing the generator (napari's worker quitting) does the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path, write_json_atomic
from ..errors import DatasetError, InputError
from ..jobs import StepProgress
from ..models.maskrcnn.presets import TrainSettings, fit_schedule
from ..models.maskrcnn.weights import resolve_weights
from ..runs import (
    DICTS_NAME,
    is_run_dir,
    last_checkpoint,
    read_run,
    run_config,
    save_settings,
    starting_weights,
    write_config_record,
)
from ..validate import load_json
from .data import TrainingData, prepare_training_data, register
from .reports import METRICS_NAME, Notice, TrainReport, TrainResult, read_metrics
from .resume import apply_resume_changes, done_iterations, read_run_facts, saved_path
from .run_folder import hold_run_folder, repair_checkpoint_tag

LOG_NAME = "log.txt"
TRAIN_NAME = "napari_nuclei_train"
VAL_NAME = "napari_nuclei_val"


@dataclass
class RunPlan:
    """Everything a process needs to train: the config and the registered data."""

    cfg: object
    data: TrainingData
    resume: bool


def holds_run(run_dir: str | Path) -> bool:
    """Whether a folder already holds a training run (its settings or a checkpoint): a
    new run is refused there, the dock's Start as the command line's ``train``."""
    run_dir = Path(run_dir).expanduser()
    return is_run_dir(run_dir) or last_checkpoint(run_dir) is not None


def _check_new_run_dir(run_dir: Path) -> None:
    if holds_run(run_dir):
        raise InputError(run_dir, "already holds a training run: continue it with --resume "
                         "or choose another output folder")


def _absolute(path: str | Path | None) -> Path | None:
    return None if path is None else Path(path).expanduser().resolve()


def prepare_run(
    settings: TrainSettings | None,
    run_dir: str | Path,
    data: str | Path | None = None,
    val_data: str | Path | None = None,
    image_root: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    resume_changes: dict | None = None,
) -> Generator[StepProgress | Notice, None, RunPlan]:
    """Check data and weights, write ``config.yaml`` and ``settings.json``; yield progress.

    For ``resume=True`` the settings, data and config saved in ``run_dir`` are used, so
    the schedule continues unchanged; ``resume_changes`` may extend the run or change
    what :data:`.resume.RESUMABLE_CHANGES` lists, and any other change is refused. Data paths
    are saved absolute, so a run resumes from any working directory, and a run folder
    that was moved or copied resumes in its new place.

    Returns
    -------
    RunPlan

    Raises
    ------
    InputError, OptionError
        Before anything is written, for bad settings, data, weights or run folders.
    """
    from ..models.maskrcnn.config import build_config, resolve_device

    run_dir = Path(run_dir).expanduser().resolve()
    if resume:
        facts = read_run_facts(run_dir)
        settings = TrainSettings.from_json(facts)
        data = saved_path(run_dir, facts["data"])
        val_data = saved_path(run_dir, facts.get("val_data"))
        image_root = saved_path(run_dir, facts.get("image_root"))
        start_from, warning = repair_checkpoint_tag(run_dir)
        if warning:
            yield Notice("warning", warning)
        if start_from is None:
            yield Notice("warning", "the run has no checkpoint yet: it starts again from "
                         "iteration 0")
        changes = dict(resume_changes or {}, device=device)
        settings = apply_resume_changes(settings, changes, done_iterations(start_from))
        settings, schedule_note = fit_schedule(settings)
    else:
        if data is None or settings is None:
            raise ValueError("a new run needs settings and data")
        settings, schedule_note = fit_schedule(settings.validate())
        data, val_data, image_root = _absolute(data), _absolute(val_data), _absolute(image_root)
        _check_new_run_dir(run_dir)
        # Before the data is read: a wrong weights file is found in a second, not minutes.
        weights = resolve_weights(settings.weights, settings)
        # Every setting must fit detectron2's config before anything is written.
        build_config(settings, run_dir, weights.path, weights.group_norm)
    resolve_device(settings.device)
    if schedule_note:
        yield Notice("warning", schedule_note)
    run_dir.mkdir(parents=True, exist_ok=True)

    prepared = yield from prepare_training_data(
        data, run_dir, val_data, settings.val_fraction, settings.seed, image_root
    )
    if resume:
        _check_classes_kept(run_dir, facts, prepared.classes)
    if not prepared.classes.is_default:
        counts = ", ".join(f"{name} {n}" for name, n in prepared.nuclei_per_class().items())
        yield Notice("info", f"{len(prepared.classes)} nucleus classes, training nuclei: "
                     f"{counts}")
    if prepared.max_nuclei_per_image >= settings.detections_per_image:
        yield Notice("warning", f"an image holds {prepared.max_nuclei_per_image} nuclei, more "
                     f"than the detection cap ({settings.detections_per_image}): raise "
                     "--max-dets or predictions will be truncated")
    test_names = (VAL_NAME,) if prepared.val else ()
    if resume:
        group_norm = bool(facts.get("group_norm", False))
        initial_weights = facts.get("initial_weights")
    else:
        if weights.notice:
            yield Notice("warning", weights.notice)
        group_norm, initial_weights = weights.group_norm, weights.path
        if settings.eval_period and not test_names:
            yield Notice("info", "no validation images (use --val-fraction or --val): "
                         "validation AP will not be computed")
    write_json_atomic(run_dir / DICTS_NAME, {
        "train": prepared.train, "val": prepared.val,
        "val_json": prepared.val_json.name if prepared.val_json else None,
    })
    save_settings(
        settings, run_dir, data=str(data), val_data=str(val_data) if val_data else None,
        image_root=str(image_root) if image_root else None, group_norm=group_norm,
        initial_weights=initial_weights,
        n_train_images=len(prepared.train), n_val_images=len(prepared.val),
        classes=prepared.classes.to_json(),
    )
    plan = load_plan(run_dir, resume)
    write_config_record(run_dir, plan.cfg)
    return plan


def load_plan(run_dir: str | Path, resume: bool) -> RunPlan:
    """Read a prepared run folder and register its data with detectron2.

    Every training process calls this (in a multi-process run, each one).

    Parameters
    ----------
    run_dir : str or Path
        A folder written by :func:`prepare_run`.
    resume : bool
        Whether the trainer continues from the last checkpoint.

    Returns
    -------
    RunPlan
    """
    record = read_run(run_dir)
    run_dir = record.folder
    dicts = _read_dicts(run_dir / DICTS_NAME)
    val_json = saved_path(run_dir, dicts["val_json"])
    register(TRAIN_NAME, dicts["train"], classes=record.classes)
    test_names = ((register(VAL_NAME, dicts["val"], val_json, record.classes),)
                  if dicts["val"] else ())
    # Built from the checked settings, in the folder named now (it may have moved).
    cfg = run_config(record, starting_weights(record), None, (TRAIN_NAME,), test_names)
    nuclei = [len(d["annotations"]) for d in dicts["train"] + dicts["val"]]
    data = TrainingData(dicts["train"], dicts["val"], val_json,
                        sum(len(d["annotations"]) for d in dicts["train"]), max(nuclei),
                        record.classes)
    return RunPlan(cfg, data, resume)


def _check_classes_kept(run_dir: Path, facts: dict, classes) -> None:
    """A resumed run's data must still have the classes its checkpoints learnt."""
    from ..nucleus_classes import ClassSet

    recorded = ClassSet.from_json(facts.get("classes"), run_dir / "settings.json")
    if recorded.names != classes.names:
        raise DatasetError(run_dir, "its data now has the classes "
                           f"{', '.join(classes.names)}, but the run learnt "
                           f"{', '.join(recorded.names)}: start a new run")


def _read_dicts(path: Path) -> dict:
    """The run's prepared dataset lists, with their shape checked."""
    dicts = load_json(path)
    if (not isinstance(dicts, dict) or not isinstance(dicts.get("train"), list)
            or not isinstance(dicts.get("val"), list)
            or not all(isinstance(d, dict) and isinstance(d.get("annotations"), list)
                       for d in dicts["train"] + dicts["val"])
            or not isinstance(dicts.get("val_json"), str | None)):
        raise InputError(path, "is damaged: not the dataset lists a run prepares")
    if not dicts["train"]:
        raise InputError(path, "is damaged: it lists no training image")
    return dicts


@contextlib.contextmanager
def _run_log(run_dir: Path, rank: int):
    """Send detectron2's and fvcore's log lines to the run's ``log.txt`` (not the terminal)."""
    handler = logging.FileHandler(run_dir / (LOG_NAME if rank == 0 else f"log_rank{rank}.txt"))
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s] %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("detectron2", "fvcore")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.propagate = False
        lg.addHandler(handler)
    try:
        yield
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


def _keep_metrics_before(run_dir: Path, start_iter: int) -> None:
    """On resume, drop report lines past the checkpoint (a killed run may have written
    iterations that are now trained again) and any line cut short by a kill."""
    path = run_dir / METRICS_NAME
    if not path.is_file():
        return
    kept = [report for report in read_metrics(run_dir) if report.iteration <= start_iter]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r.to_json()) + "\n" for r in kept), encoding="utf-8")


def _stop_requested(stop: threading.Event | None) -> bool:
    """Whether to stop now; in a multi-process run, every process must agree."""
    import torch
    import torch.distributed as dist
    from detectron2.utils import comm

    wanted = bool(stop is not None and stop.is_set())
    if comm.get_world_size() == 1:
        return wanted
    flag = torch.tensor([int(wanted)])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def run_plan(
    plan: RunPlan, stop: threading.Event | None = None
) -> Generator[TrainReport, None, TrainResult]:
    """Train by a prepared plan in this process, yielding a report per iteration.

    Parameters
    ----------
    plan : RunPlan
        From :func:`prepare_run`.
    stop : threading.Event, optional
        Set it to stop at the next iteration boundary (with a checkpoint).

    Returns
    -------
    TrainResult
    """
    from detectron2.utils import comm
    from detectron2.utils.events import EventStorage

    from .trainer import NucleiTrainer

    run_dir = Path(plan.cfg.OUTPUT_DIR)
    with _run_log(run_dir, comm.get_rank()):
        trainer = NucleiTrainer(plan.cfg)
        trainer.resume_or_load(resume=plan.resume)
        start, max_iter = trainer.start_iter, trainer.max_iter
        if comm.is_main_process():
            _keep_metrics_before(run_dir, start)
        completed, finished, failed = None, False, False
        with EventStorage(start) as trainer.storage:
            trainer.iter = start
            trainer.before_train()
            try:
                for trainer.iter in range(start, max_iter):
                    trainer.before_step()
                    trainer.run_step()
                    trainer.after_step()
                    completed = trainer.iter
                    if trainer.report_hook is not None:
                        yield from trainer.report_hook.take()
                    if _stop_requested(stop):
                        break
                else:
                    finished = True
                    trainer.iter += 1  # as detectron2's loop: after_train sees max_iter
            except (Exception, KeyboardInterrupt):
                # A failure, or a second Ctrl-C (abort now): the last checkpoint stays.
                failed = True
                raise
            finally:
                if not finished and not failed and completed is not None:
                    _save_stop_checkpoint(trainer, completed)
                trainer.after_train()
        if trainer.report_hook is not None and not failed:
            yield from trainer.report_hook.take()
    done = (completed + 1) if completed is not None else start
    return TrainResult(run_dir, done, max_iter, not finished, last_checkpoint(run_dir))


def _save_stop_checkpoint(trainer, completed: int) -> None:
    name = f"model_{completed:07d}"
    if not (Path(trainer.cfg.OUTPUT_DIR) / f"{name}.pth").exists():
        trainer.iter = completed
        trainer.checkpointer.save(name, iteration=completed)


def iter_training(
    settings: TrainSettings | None,
    run_dir: str | Path,
    data: str | Path | None = None,
    val_data: str | Path | None = None,
    image_root: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    stop: threading.Event | None = None,
    resume_changes: dict | None = None,
) -> Generator[StepProgress | Notice | TrainReport, None, TrainResult]:
    """Prepare and run a training in this process, yielding progress, notices and reports.

    Parameters
    ----------
    settings : TrainSettings or None
        What to train (ignored when resuming: the run's own settings are used).
    run_dir : str or Path
        Run folder: ``config.yaml``, ``settings.json``, ``metrics.jsonl``, checkpoints,
        ``model_final.pth``, ``log.txt``.
    data, val_data, image_root
        Training data (any annotated layout), an optional validation set, and the image
        folder of a COCO JSON.
    resume : bool
        Continue the run in ``run_dir`` from its last checkpoint.
    device : str, optional
        Overrides the settings' device (also when resuming).
    stop : threading.Event, optional
        Set to stop at the next iteration boundary, with a checkpoint.
    resume_changes : dict, optional
        Settings to change when resuming (see :data:`.resume.RESUMABLE_CHANGES`).

    Yields
    ------
    StepProgress, Notice or TrainReport

    Returns
    -------
    TrainResult
    """
    if settings is not None and device is not None:
        settings = settings.replace(device=device)
    with hold_run_folder(run_dir, new=not resume) as folder:
        plan = yield from prepare_run(settings, folder, data, val_data, image_root, resume,
                                      device, resume_changes)
        return (yield from run_plan(plan, stop))
