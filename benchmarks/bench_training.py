"""Benchmark: seconds per training iteration, napari-nuclei's engine against detectron2's
``DefaultTrainer`` with its standard ``DatasetMapper`` (bitmask), same config, one run.

Data: synthetic dense nuclei (1000x1000 images, ~700 nuclei each). Model: the ``tiny``
preset (or ``--preset fast``) at input size 1000, on this machine's device. The first
``--warmup`` iterations of each trainer are not timed. Also prints the share of the
engine's time spent in its report hook (building reports, writing ``metrics.jsonl``).

Usage: ``.venv/bin/python benchmarks/bench_training.py [--iters 8] [--preset tiny]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dense_data import write_dense_set  # noqa: E402


class _StepClock:
    """Wall time of each iteration, from the start of one to the start of the next."""

    def __init__(self):
        self.marks = []

    def hook(self):
        from detectron2.engine import HookBase

        clock = self

        class Mark(HookBase):
            def before_step(self):
                clock.marks.append(time.perf_counter())

            def after_train(self):
                clock.marks.append(time.perf_counter())

        return Mark()

    def per_iter(self, warmup: int) -> list[float]:
        deltas = [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]
        return deltas[warmup:]


def run_reference(cfg, iters: int, clock: _StepClock) -> None:
    """detectron2's DefaultTrainer with its standard mapper and writers."""
    from detectron2.engine import DefaultTrainer
    from detectron2.utils.events import CommonMetricPrinter, JSONWriter

    class Reference(DefaultTrainer):
        def build_writers(self):  # the defaults minus TensorBoard (not installed here)
            return [CommonMetricPrinter(self.max_iter),
                    JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "metrics.json"))]

    trainer = Reference(cfg)
    trainer.register_hooks([clock.hook()])
    trainer.resume_or_load(resume=False)
    trainer.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    args = parser.parse_args()

    import logging

    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.training import trainer as engine
    from napari_nuclei.core.training.run import prepare_run, run_plan

    logging.getLogger("detectron2").setLevel(logging.WARNING)
    settings = preset_settings(args.preset, max_iter=args.iters, min_size_train=(1000,),
                               max_size_train=1333, checkpoint_period=10**6, eval_period=0,
                               num_workers=args.workers, detections_per_image=1000)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dense_set(Path(tmp) / "dense", args.images)
        plan = drain(prepare_run(settings, Path(tmp) / "run", data))

        # Time spent in the report hook, measured around its after_step.
        hook_time = [0.0]
        original_after_step = engine.ReportHook.after_step

        def timed_after_step(self):
            start = time.perf_counter()
            original_after_step(self)
            hook_time[0] += time.perf_counter() - start

        engine.ReportHook.after_step = timed_after_step
        ours = _StepClock()
        original_build_hooks = engine.NucleiTrainer.build_hooks
        engine.NucleiTrainer.build_hooks = lambda self: [ours.hook()] + original_build_hooks(self)
        start = time.perf_counter()
        drain(run_plan(plan))
        ours_total = time.perf_counter() - start

        reference = _StepClock()
        ref_cfg = plan.cfg.clone()
        ref_cfg.defrost()
        ref_cfg.OUTPUT_DIR = str(Path(tmp) / "reference")
        Path(ref_cfg.OUTPUT_DIR).mkdir()
        run_reference(ref_cfg, args.iters, reference)

    ours_iter = statistics.mean(ours.per_iter(args.warmup))
    ref_iter = statistics.mean(reference.per_iter(args.warmup))
    print(f"{args.preset} preset, {args.images} images of 1000x1000 with ~700 nuclei, input "
          f"1000, device {plan.cfg.MODEL.DEVICE}, {args.iters} iterations "
          f"({args.warmup} untimed), {args.workers} data-loading workers")
    print(f"detectron2 DefaultTrainer + DatasetMapper(bitmask): {ref_iter:6.2f} s/iter")
    print(f"napari-nuclei engine (NucleiMapper, reports):       {ours_iter:6.2f} s/iter")
    print(f"speed-up: {ref_iter / ours_iter:.2f}x")
    print(f"report hook: {hook_time[0]:.4f} s of {ours_total:.1f} s "
          f"({100 * hook_time[0] / ours_total:.3f}% of the engine's run)")


if __name__ == "__main__":
    main()
