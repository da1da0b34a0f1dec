"""Stand-ins for the dock's training job, for its child process in tests."""

import threading
from pathlib import Path


def train_without_a_gpu(settings, run_dir, data=None, resume=False, stop=None):
    """The dock's own training job, on a machine where torch sees no CUDA GPU."""
    import torch

    from napari_nuclei.core.training.run import iter_training

    torch.cuda.is_available = lambda: False
    return (yield from iter_training(settings, run_dir, data, resume=resume, stop=stop))


def train_with_checkpoints(settings, run_dir, data=None, resume=False,
                           stop: threading.Event | None = None):
    """Four iterations of 100, a checkpoint file after the 2nd and the 4th, then wait to
    be stopped (so that a test sees the checkpoints listed while the run goes on)."""
    from napari_nuclei.core.training.reports import TrainReport, TrainResult

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for iteration in range(1, 5):
        checkpoint = ""
        if iteration % 2 == 0:
            checkpoint = f"model_{iteration - 1:07d}.pth"
            (run_dir / checkpoint).write_bytes(b"stand-in weights")
        yield TrainReport(iteration, 100, {"loss_cls": 1.0 / iteration}, 1.0 / iteration,
                          0.01, 0.1, 0.0, 10.0, {}, checkpoint)
    if stop is not None:
        stop.wait(120)
    return TrainResult(run_dir, 4, 100, True, None)
