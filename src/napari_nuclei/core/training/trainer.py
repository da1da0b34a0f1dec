"""detectron2's ``DefaultTrainer`` with the nuclei data path, evaluator and a report hook."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import os
import statistics
import time
import weakref
from pathlib import Path

from detectron2.engine import (
    AMPTrainer,
    DefaultTrainer,
    HookBase,
    SimpleTrainer,
    TrainerBase,
    create_ddp_model,
    hooks,
)
from detectron2.evaluation import COCOEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..models.maskrcnn.architecture import describe_config
from ..models.maskrcnn.checkpointer import NucleiCheckpointer
from ..models.maskrcnn.config import keep_checkpoints
from .mapper import NucleiMapper
from .reports import CLASS_AP_PREFIX, METRICS_NAME, TrainReport
from .run_folder import prune_checkpoints

# Validation metrics of detectron2's COCO evaluator worth reporting, as fractions.
_VAL_KEYS = ("AP", "AP50", "AP75")
_CLASS_AP = "segm/" + CLASS_AP_PREFIX
_ETA_WINDOW = 20


class ReportHook(HookBase):
    """After each iteration, turn the trainer's event storage into a :class:`TrainReport`.

    Reports are appended to ``metrics.jsonl`` and queued for the caller (the training
    generator), which yields them. Runs last, so it sees learning rate, timing,
    checkpoint and validation results of the same iteration.
    """

    def __init__(self, metrics_path: Path, checkpoint_period: int,
                 class_names: tuple[str, ...] = ()):
        self.metrics_path = Path(metrics_path)
        self.class_names = tuple(class_names) if len(class_names) > 1 else ()
        self.checkpoint_period = checkpoint_period
        self.pending: list[TrainReport] = []
        self._times: list[float] = []
        self._file = None
        self._started = 0.0
        self._last: TrainReport | None = None

    def before_train(self):
        self._file = open(self.metrics_path, "a", encoding="utf-8")  # noqa: SIM115

    def after_train(self):
        # detectron2 validates after the last iteration in its own after_train, which runs
        # before this one: report those results as an update of the last iteration.
        last = self._last
        if last is not None and last.iteration == self.trainer.max_iter and not last.val_metrics:
            val_metrics = self._val_metrics(self._current(self.trainer.storage.iter))
            if val_metrics:
                self._emit(dataclasses.replace(last, val_metrics=val_metrics))
        if self._file is not None:
            self._file.close()
            self._file = None

    def _current(self, iteration: int) -> dict:
        return {
            name: value for name, (value, at) in self.trainer.storage.latest().items()
            if at == iteration
        }

    def _val_metrics(self, current: dict) -> dict:
        # detectron2 reports NaN for every AP when the model predicted nothing: that is 0.
        # With several classes its evaluator also reports each class's AP as "AP-<name>",
        # unless the model predicted nothing at all: then each class's AP is 0 too.
        found = {
            key: float(current[f"segm/{key}"]) / 100.0
            if math.isfinite(current[f"segm/{key}"]) else 0.0
            for key in _VAL_KEYS
            if f"segm/{key}" in current
        }
        if found:
            found.update({f"{CLASS_AP_PREFIX}{name}": 0.0 for name in self.class_names})
            found.update({
                name[len("segm/"):]: (float(value) / 100.0 if math.isfinite(value) else 0.0)
                for name, value in current.items() if name.startswith(_CLASS_AP)})
        return found

    def _emit(self, report: TrainReport) -> None:
        self._file.write(json.dumps(report.to_json()) + "\n")
        self._file.flush()
        self.pending.append(report)
        self._last = report

    def before_step(self):
        self._started = time.perf_counter()

    def _checkpoint_name(self, iteration: int) -> str:
        if self.checkpoint_period and (iteration + 1) % self.checkpoint_period == 0:
            return f"model_{iteration:07d}.pth"
        if iteration == self.trainer.max_iter - 1:
            return "model_final.pth"
        return ""

    def after_step(self):
        iteration = self.trainer.iter
        current = self._current(iteration)
        losses = {k: float(v) for k, v in current.items() if k.startswith("loss_")}
        seconds = float(current.get("time", time.perf_counter() - self._started))
        self._times = (self._times + [seconds])[-_ETA_WINDOW:]
        remaining = self.trainer.max_iter - iteration - 1
        report = TrainReport(
            iteration=iteration + 1,
            max_iter=self.trainer.max_iter,
            losses=losses,
            total_loss=float(current.get("total_loss", sum(losses.values()))),
            lr=float(current.get("lr", float("nan"))),
            seconds_per_iter=seconds,
            data_time=float(current.get("data_time", 0.0)),
            eta_seconds=statistics.median(self._times) * remaining,
            val_metrics=self._val_metrics(current),
            checkpoint=self._checkpoint_name(iteration),
        )
        self._emit(report)

    def take(self) -> list[TrainReport]:
        """The reports queued since the last call."""
        reports, self.pending = self.pending, []
        return reports


class CheckpointRetention(HookBase):
    """Delete periodic checkpoints beyond the newest ``keep`` after each one is written.

    Runs after :class:`ReportHook`, so the validation AP of the newest checkpoint is in
    ``metrics.jsonl`` when the best one is chosen; also runs after training, for the
    checkpoint written when a run stops.
    """

    def __init__(self, run_dir: Path, keep: int, period: int):
        self.run_dir = Path(run_dir)
        self.keep = keep
        self.period = period

    def after_step(self):
        iteration = self.trainer.iter
        if (iteration + 1) % self.period == 0 or iteration == self.trainer.max_iter - 1:
            prune_checkpoints(self.run_dir, self.keep)

    def after_train(self):
        prune_checkpoints(self.run_dir, self.keep)


class QuietCOCOEvaluator(COCOEvaluator):
    """detectron2's COCO evaluator with pycocotools' printed tables sent to the run log."""

    def evaluate(self, img_ids=None):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            results = super().evaluate(img_ids)
        logging.getLogger("detectron2").info("COCOeval output:\n%s", buffer.getvalue())
        return results


class NucleiTrainer(DefaultTrainer):
    """``DefaultTrainer`` with :class:`NucleiMapper`, a capped COCO evaluator and reports.

    Parameters
    ----------
    cfg : CfgNode
        The run's config (``OUTPUT_DIR`` is the run folder).
    """

    def __init__(self, cfg):
        # DefaultTrainer.__init__ step by step, with the model wrapped by wrap_model:
        # detectron2 wraps it in DDP with device_ids=[local_rank], which only suits GPUs.
        TrainerBase.__init__(self)
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):  # setup_logger is not called for d2
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = self.wrap_model(cfg, model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(
            model, data_loader, optimizer
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        # Safe loading, architecture checks and atomic saves, for resuming and for the
        # checkpoint hook alike.
        self.checkpointer = NucleiCheckpointer(
            model, cfg.OUTPUT_DIR, architecture=describe_config(cfg),
            trainer=weakref.proxy(self),
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def wrap_model(cls, cfg, model):
        """The model in DistributedDataParallel when there are several processes.

        On CPU (gloo) DDP needs ``device_ids=None``; on GPUs each process drives its own.
        """
        device_ids = None if cfg.MODEL.DEVICE == "cpu" else [comm.get_local_rank()]
        return create_ddp_model(model, broadcast_buffers=False, device_ids=device_ids)

    @classmethod
    def build_train_loader(cls, cfg):
        from detectron2.data import build_detection_train_loader

        return build_detection_train_loader(cfg, mapper=NucleiMapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        from detectron2.data import build_detection_test_loader

        return build_detection_test_loader(
            cfg, dataset_name, mapper=NucleiMapper(cfg, is_train=False)
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name):
        # Stock COCOeval stops at 100 detections per image; nuclei images hold hundreds.
        return QuietCOCOEvaluator(
            dataset_name,
            tasks=("segm",),
            distributed=True,
            output_dir=os.path.join(cfg.OUTPUT_DIR, "eval"),
            max_dets_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
            use_fast_impl=False,
        )

    def build_writers(self):
        # Reports (metrics.jsonl) replace detectron2's printers and JSON writer.
        return []

    def _validation_classes(self) -> tuple[str, ...]:
        """The class names of the validation set, as registered with detectron2."""
        from detectron2.data import MetadataCatalog

        if not self.cfg.DATASETS.TEST:
            return ()
        return tuple(MetadataCatalog.get(self.cfg.DATASETS.TEST[0]).get("thing_classes", ()))

    def build_hooks(self):
        kept = [h for h in super().build_hooks() if not isinstance(h, hooks.PeriodicWriter)]
        self.report_hook = None
        if comm.is_main_process():
            self.report_hook = ReportHook(
                Path(self.cfg.OUTPUT_DIR) / METRICS_NAME, self.cfg.SOLVER.CHECKPOINT_PERIOD,
                self._validation_classes(),
            )
            kept.append(self.report_hook)
            kept.append(CheckpointRetention(
                self.cfg.OUTPUT_DIR, keep_checkpoints(self.cfg), self.cfg.SOLVER.CHECKPOINT_PERIOD
            ))
        return kept
