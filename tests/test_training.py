"""The training engine: presets, weights sources, stop/resume, SIGTERM, two processes."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.cli import main
from napari_nuclei.core.errors import WeightsError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.models.maskrcnn.presets import PRESETS, TrainSettings, preset_settings
from napari_nuclei.core.training.reports import Notice, TrainReport, read_metrics

pytest.importorskip("detectron2")
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "napari_nuclei.cli"]


def train_cli(*args, timeout=600):
    return subprocess.run([*CLI, "train", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_cli_run_writes_config_metrics_and_checkpoints(tiny_run):
    run_dir, result = tiny_run
    for name in ("config.yaml", "settings.json", "metrics.jsonl", "model_final.pth",
                 "last_checkpoint", "model_0000039.pth", "model_0000059.pth", "log.txt"):
        assert (run_dir / name).is_file(), name
    # Two periodic checkpoints are kept by default (the best one is among them here).
    assert not (run_dir / "model_0000019.pth").exists()
    assert "training from scratch with GroupNorm" in result.stderr
    config = (run_dir / "config.yaml").read_text()
    assert "NORM: GN" in config and "DEPTH: 18" in config
    facts = json.loads((run_dir / "settings.json").read_text())
    assert facts["preset"] == "tiny" and facts["n_val_images"] == 1
    reports = read_metrics(run_dir)
    assert [r.iteration for r in reports[:60]] == list(range(1, 61))
    first = reports[0]
    assert set(first.losses) == {"loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls",
                                 "loss_rpn_loc"}
    assert first.total_loss == pytest.approx(sum(first.losses.values()), rel=1e-4)
    assert all(r.seconds_per_iter > 0 and r.lr > 0 for r in reports)
    assert reports[-1].eta_seconds == 0


def test_losses_go_down_on_the_sample_data(tiny_run):
    # A later line for the same iteration only adds validation results: keep one each.
    by_iteration = {r.iteration: r for r in read_metrics(tiny_run[0])}
    totals = [by_iteration[i].total_loss for i in range(1, 61)]
    assert sum(totals[-10:]) / 10 < 0.85 * sum(totals[:10]) / 10


def test_validation_ap_is_reported_at_eval_periods_and_at_the_end(tiny_run):
    with_val = [r for r in read_metrics(tiny_run[0]) if r.val_metrics]
    assert [r.iteration for r in with_val] == [30, 60]
    assert all(0.0 <= r.val_metrics["AP"] <= 1.0 for r in with_val)
    assert set(with_val[0].val_metrics) == {"AP", "AP50", "AP75"}
    config = (tiny_run[0] / "config.yaml").read_text()
    assert "DETECTIONS_PER_IMAGE: 300" in config


def _run_until(settings, run_dir, stop_after=None, resume=False):
    """Train in this process; set the stop event once ``stop_after`` reports arrived."""
    from napari_nuclei.core.training.run import iter_training

    stop = threading.Event()
    reports = []

    def on_report(report):
        if isinstance(report, TrainReport):
            reports.append(report)
            if stop_after is not None and len(reports) == stop_after:
                stop.set()

    result = drain(iter_training(None if resume else settings, run_dir,
                                 data=None if resume else SAMPLE_DATA, resume=resume,
                                 stop=stop), on_report)
    return result, reports


def test_stop_leaves_a_resumable_run_that_continues_the_schedule(tmp_path):
    settings = preset_settings("tiny", max_iter=12, steps=(8,), warmup_iters=4,
                               checkpoint_period=100)
    _, reference = _run_until(settings, tmp_path / "ref")

    stopped, first = _run_until(settings, tmp_path / "run", stop_after=5)
    assert stopped.stopped and stopped.iteration == 5
    assert stopped.checkpoint.name == "model_0000004.pth"
    assert (tmp_path / "run" / "last_checkpoint").read_text().strip() == "model_0000004.pth"

    resumed, second = _run_until(None, tmp_path / "run", resume=True)
    assert not resumed.stopped and resumed.iteration == 12
    assert [r.iteration for r in second] == list(range(6, 13))
    # Same learning-rate schedule as the run that was never stopped.
    lrs = [r.lr for r in first + second]
    assert lrs == pytest.approx([r.lr for r in reference])
    assert [r.iteration for r in read_metrics(tmp_path / "run")] == list(range(1, 13))


def test_closing_the_generator_writes_a_checkpoint(tmp_path):
    from napari_nuclei.core.training.run import iter_training

    job = iter_training(preset_settings("tiny", max_iter=50), tmp_path, data=SAMPLE_DATA)
    seen = 0
    for report in job:
        if isinstance(report, TrainReport):
            seen += 1
            if seen == 3:
                break
    job.close()
    assert (tmp_path / "model_0000002.pth").is_file()


def test_sigterm_stops_the_cli_with_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([*CLI, "train", "--data", str(SAMPLE_DATA), "--out",
                                str(run_dir), "--iters", "500", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "continue with: napari-nuclei train --resume" in out
    done = len(read_metrics(run_dir))
    assert (run_dir / f"model_{done - 1:07d}.pth").is_file()
    assert done < 500


def test_sigkill_loses_at_most_one_checkpoint_period(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([*CLI, "train", "--data", str(SAMPLE_DATA), "--out",
                                str(run_dir), "--iters", "500", "--checkpoint-period", "5",
                                "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 13:
            break
        time.sleep(0.1)
    process.kill()
    process.wait(timeout=60)
    reached = len(metrics.read_text().splitlines())
    saved = (run_dir / "last_checkpoint").read_text().strip()
    saved_iterations = int(saved[len("model_"):-len(".pth")]) + 1
    assert reached - saved_iterations <= 5 + 1  # one period, plus the step in flight
    _, reports = _run_until(None, run_dir, stop_after=1, resume=True)
    assert reports[0].iteration == saved_iterations + 1
    assert [r.iteration for r in read_metrics(run_dir)][-2:] == [saved_iterations,
                                                                 saved_iterations + 1]


def test_presets_build_valid_configs_without_downloading():
    from detectron2.modeling import build_model

    from napari_nuclei.core.models.maskrcnn.config import build_config

    seed = build_config(PRESETS["seed"], "/tmp/unused")
    assert seed.MODEL.RESNETS.DEPTH == 101 and seed.MODEL.RESNETS.NUM_GROUPS == 32
    assert seed.MODEL.RESNETS.WIDTH_PER_GROUP == 8 and seed.MODEL.RESNETS.NORM == "FrozenBN"
    assert seed.INPUT.MIN_SIZE_TRAIN == (1000,) and seed.INPUT.MASK_FORMAT == "bitmask"
    assert seed.SOLVER.IMS_PER_BATCH == 1 and seed.SOLVER.BASE_LR == 0.00025
    assert seed.SOLVER.STEPS == (3000, 3500, 4500) and seed.SOLVER.MAX_ITER == 5000
    assert seed.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 256
    assert seed.MODEL.ROI_HEADS.NUM_CLASSES == 1 and seed.SOLVER.CHECKPOINT_PERIOD == 150
    assert seed.INPUT.MIN_SIZE_TEST == 1000 and seed.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 0.7
    assert seed.TEST.DETECTIONS_PER_IMAGE == 1000
    assert seed.MODEL.RPN.POST_NMS_TOPK_TEST >= 1000 and seed.MODEL.RPN.PRE_NMS_TOPK_TEST >= 1000
    assert build_config(PRESETS["r101"], "/tmp/x").MODEL.RESNETS.NUM_GROUPS == 1
    for name in ("seed", "fast", "tiny"):
        cfg = build_config(PRESETS[name], "/tmp/unused", group_norm=(name == "tiny"))
        model = build_model(cfg)
        assert sum(p.numel() for p in model.parameters()) > 1e6, name
    overridden = preset_settings("seed", max_iter=10, base_lr=0.1, steps=(5,))
    assert build_config(overridden, "/tmp/x").SOLVER.STEPS == (5,)


def test_settings_round_trip_through_json():
    settings = preset_settings("tiny", steps=(3, 4), min_size_train=(200, 256))
    assert TrainSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


def test_weights_none_trains_from_scratch_and_an_unreachable_zoo_stops(monkeypatch):
    from detectron2.utils.file_io import PathManager

    from napari_nuclei.core.models.maskrcnn.weights import resolve_weights

    none = resolve_weights("none", PRESETS["seed"])
    assert none.group_norm and none.path == "" and "scratch" in none.notice

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(PathManager, "get_local_path", offline)
    # Never a silent switch to random initialisation: the user is told what to do.
    with pytest.raises(WeightsError, match="could not be downloaded.*--weights none"):
        resolve_weights("zoo", PRESETS["seed"])


def test_weights_from_a_file_and_from_a_run_folder(tiny_run, tmp_path):
    from napari_nuclei.core.models.maskrcnn.weights import resolve_weights

    run_dir = tiny_run[0]
    from_run = resolve_weights(str(run_dir), PRESETS["tiny"])
    assert from_run.path.endswith("model_final.pth") and from_run.group_norm
    from_file = resolve_weights(str(run_dir / "model_0000039.pth"), PRESETS["tiny"])
    assert from_file.group_norm
    with pytest.raises(WeightsError, match="no such|not found"):
        resolve_weights(str(tmp_path / "missing.pth"), PRESETS["tiny"])
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot be read as a weights file"):
        resolve_weights(str(broken), PRESETS["tiny"])


def test_bad_weights_path_is_one_clear_line(tmp_path, capsys):
    broken = tmp_path / "weights.pth"
    broken.write_bytes(b"\x00garbage")
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(tmp_path / "r"),
                   "--weights", str(broken), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and str(broken) in err[0] and "cannot be read" in err[0]
    assert not (tmp_path / "r").exists()  # the folder made for the run is gone again


def test_existing_run_folder_is_not_overwritten(tiny_run, capsys):
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(tiny_run[0]), "-q"])
    assert status == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_two_process_cpu_run(tmp_path):
    run_dir = tmp_path / "ddp"
    result = train_cli("--data", SAMPLE_DATA, "--out", run_dir, "--iters", "4",
                       "--batch-size", "2", "--num-gpus", "2", "-q", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "model_final.pth").is_file()
    assert [r.iteration for r in read_metrics(run_dir)] == [1, 2, 3, 4]
    assert "rank1" in " ".join(os.listdir(run_dir))  # the second process logged too


def test_notice_for_missing_validation(tmp_path):
    from napari_nuclei.core.training.run import prepare_run

    notices = []
    drain(prepare_run(preset_settings("tiny"), tmp_path, SAMPLE_DATA),
          lambda r: notices.append(r) if isinstance(r, Notice) else None)
    assert any("validation AP will not be computed" in n.message for n in notices)
