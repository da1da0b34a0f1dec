"""Weights from others never run code; a run folder is a transaction; options are checked."""

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("detectron2")

CLI = [sys.executable, "-m", "napari_nuclei.cli"]
TEST_IMAGES = SAMPLE_DATA / "test"


class _Payload:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload_ran"


@pytest.fixture
def evil_pkl(tmp_path, marker) -> Path:
    path = tmp_path / "model_final_evil.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"model": {"w": _Payload(marker)}, "__author__": "zoo"}, fh, protocol=2)
    return path


@pytest.fixture
def evil_pth(tmp_path, marker) -> Path:
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": _Payload(marker)}}, path)
    return path


@pytest.fixture
def evil_run(tiny_run, tmp_path, evil_pkl) -> Path:
    """A run folder (settings, config) whose last_checkpoint names a malicious pickle."""
    run = tmp_path / "shared_run"
    run.mkdir()
    for name in ("settings.json", "config.yaml"):
        shutil.copy(tiny_run[0] / name, run / name)
    shutil.copy(evil_pkl, run / "model_0000010.pkl")
    (run / "last_checkpoint").write_text("model_0000010.pkl")
    return run


def _one_line_refusal(capsys, status, marker, *names):
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert "refuses to load: the file contains executable objects" in err[0]
    assert any(name in err[0] for name in names), err[0]
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("kind", ["pkl", "pth"])
def test_predict_refuses_a_malicious_weights_file(kind, request, tmp_path, capsys, marker):
    weights = request.getfixturevalue(f"evil_{kind}")
    status = main(["predict", "--model", str(weights), "--images", str(TEST_IMAGES),
                   "-o", str(tmp_path / "sub.json"), "-q"])
    _one_line_refusal(capsys, status, marker, str(weights))
    assert not (tmp_path / "sub.json").exists()


def test_predict_refuses_a_run_folder_and_a_checkpoint_that_are_malicious(
        evil_run, evil_pkl, tiny_run, tmp_path, capsys, marker):
    status = main(["predict", "--model", str(evil_run), "--images", str(TEST_IMAGES),
                   "-o", str(tmp_path / "a.json"), "-q"])
    _one_line_refusal(capsys, status, marker, "model_0000010.pkl")
    status = main(["predict", "--model", str(tiny_run[0]), "--checkpoint", str(evil_pkl),
                   "--images", str(TEST_IMAGES), "-o", str(tmp_path / "b.json"), "-q"])
    _one_line_refusal(capsys, status, marker, str(evil_pkl))
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("source", ["evil_pkl", "evil_pth", "evil_run"])
def test_train_refuses_malicious_weights(source, request, tmp_path, capsys, marker):
    weights = request.getfixturevalue(source)
    out = tmp_path / "new_run"
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(out), "--preset", "tiny",
                   "--weights", str(weights), "-q"])
    _one_line_refusal(capsys, status, marker, str(weights))
    assert not out.exists()


def _tiny_state(tiny_run) -> dict:
    from napari_nuclei.core.safe_load import load_weights_file

    return load_weights_file(tiny_run[0] / "model_final.pth")["model"]


def _tiny_network(tiny_run):
    from detectron2.modeling import build_model

    from napari_nuclei.core.runs import read_run, run_config

    return build_model(run_config(read_run(tiny_run[0]), device="cpu"))


def test_a_model_zoo_pickle_of_arrays_loads(tiny_run, tmp_path):
    from napari_nuclei.core.models.maskrcnn.checkpointer import NucleiCheckpointer

    state = _tiny_state(tiny_run)
    zoo = tmp_path / "model_final_zoo.pkl"
    arrays = {name: tensor.numpy() for name, tensor in state.items()}
    with open(zoo, "wb") as fh:  # detectron2's model-zoo layout, as the zoo writes it
        pickle.dump({"model": arrays, "__author__": "Detectron2 Model Zoo"}, fh, protocol=2)
    network = _tiny_network(tiny_run)
    NucleiCheckpointer(network).load(str(zoo))
    loaded = network.state_dict()
    for name in ("backbone.bottom_up.stem.conv1.weight", "roi_heads.mask_head.predictor.bias"):
        np.testing.assert_array_equal(loaded[name].numpy(), arrays[name])


def test_a_caffe2_blobs_pickle_reads_like_detectron2_reads_it(tmp_path):
    from napari_nuclei.core.safe_load import load_weights_file

    path = tmp_path / "R-50.pkl"
    blobs = {"conv1_w": np.ones((2, 3), np.float32), "conv1_w_momentum": np.zeros(1)}
    with open(path, "wb") as fh:
        pickle.dump({"blobs": blobs}, fh, protocol=2)
    data = load_weights_file(path)
    assert data["matching_heuristics"] and data["__author__"] == "Caffe2"
    assert list(data["model"]) == ["conv1_w"]


def test_weights_of_another_architecture_are_refused_by_name(tiny_run, tmp_path, capsys):
    final = tiny_run[0] / "model_final.pth"
    status = main(["predict", "--model", str(final), "--preset", "fast",
                   "--images", str(TEST_IMAGES), "-o", str(tmp_path / "s.json"), "-q"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.endswith("weights for R-18 FPN, not R-50 FPN: pass --preset tiny")
    out = tmp_path / "run"
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(out), "--preset", "fast",
                   "--weights", str(tiny_run[0]), "-q"])
    assert status == 2 and "weights for R-18 FPN, not R-50 FPN" in capsys.readouterr().err
    assert not out.exists()


def test_r50_weights_into_the_x101_seed_model_name_both(tmp_path, capsys):
    from detectron2.modeling import build_model

    from napari_nuclei.core.models.maskrcnn.config import build_config
    from napari_nuclei.core.models.maskrcnn.presets import PRESETS

    r50 = tmp_path / "r50.pth"
    torch.save({"model": build_model(build_config(PRESETS["fast"], tmp_path)).state_dict()}, r50)
    status = main(["predict", "--model", str(r50), "--preset", "seed",
                   "--images", str(TEST_IMAGES), "-o", str(tmp_path / "s.json"), "-q"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "weights for R-50 FPN, not X-101-32x8d FPN: pass --preset fast" in err


def test_a_bare_weights_file_takes_its_architecture_from_the_file(tiny_run):
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.models.maskrcnn.architecture import describe_state

    assert describe_state(_tiny_state(tiny_run)) == "R-18 FPN"
    model = load_model(tiny_run[0] / "model_final.pth", device="cpu")
    assert model.cfg.MODEL.RESNETS.DEPTH == 18 and model.cfg.MODEL.RESNETS.NORM == "GN"


# --- Atomic checkpoints and temporary files ------------------------------------------------


def _small_checkpointer(folder: Path):
    from napari_nuclei.core.models.maskrcnn.checkpointer import NucleiCheckpointer

    return NucleiCheckpointer(torch.nn.Linear(4, 2), str(folder))


def test_a_failed_checkpoint_write_leaves_the_previous_one_valid(tmp_path, monkeypatch):
    checkpointer = _small_checkpointer(tmp_path)
    checkpointer.save("model_0000004", iteration=4)
    before = (tmp_path / "model_0000004.pth").read_bytes()

    def disk_full(data, fh):
        fh.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError) as raised:
        checkpointer.save("model_0000009", iteration=9)
    assert raised.value.filename == str(tmp_path / "model_0000009.pth")  # the real name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint",
                                                          "model_0000004.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    assert (tmp_path / "model_0000004.pth").read_bytes() == before


def test_temporary_files_of_killed_writers_are_cleaned_at_the_next_write(tmp_path):
    from napari_nuclei.core.atomic import write_json_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.json.{dead.pid}.abc123.part"
    stale.write_text("{half")
    alive = tmp_path / f".out.json.{os.getpid()}.def456.part"  # a writer still at work
    alive.write_text("{")
    write_json_atomic(tmp_path / "out.json", [1])
    assert not stale.exists() and alive.exists()
    assert json.loads((tmp_path / "out.json").read_text()) == [1]


# --- One writer per run folder -------------------------------------------------------------


def test_a_second_writer_of_a_run_folder_stops_at_once(tmp_path, capsys):
    from napari_nuclei.core.training.run_folder import hold_run_folder

    run = tmp_path / "run"
    with hold_run_folder(run, new=True):
        status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(run), "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1
        assert str(run) in err[0] and f"process {os.getpid()}" in err[0]
        status = main(["train", "--resume", str(run), "-q"])
        assert status == 2 and "is in use by" in capsys.readouterr().err


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    from napari_nuclei.core.training.run_folder import LOCK_NAME, hold_run_folder

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text("process 999999 on elsewhere\n")
    with hold_run_folder(run, new=False) as folder:
        assert f"process {os.getpid()}" in (folder / LOCK_NAME).read_text()


# --- Options are checked before anything is created ----------------------------------------


@pytest.mark.parametrize("option, flag", [
    (["--iters", "0"], "--iters"), (["--lr", "nan"], "--lr"), (["--lr", "-0.1"], "--lr"),
    (["--checkpoint-period", "0"], "--checkpoint-period"), (["--batch-size", "0"], "--batch-size"),
    (["--val-fraction", "1"], "--val-fraction"), (["--val-fraction", "-0.2"], "--val-fraction"),
    (["--device", "cuda"], "--device"), (["--score-thresh", "1.5"], "--score-thresh"),
    (["--num-gpus", "0"], "--num-gpus"),
])
def test_bad_options_are_one_line_and_leave_no_folder(option, flag, tmp_path, capsys):
    if flag == "--device" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so --device cuda is valid")
    out = tmp_path / "run"
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(out), *option, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"napari-nuclei: error: {flag}:")
    assert not out.exists()


# --- Resume follows the folder; damaged folders ---------------------------------------------


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Four iterations, a checkpoint after each, every checkpoint kept; data given relative
    to the working directory."""
    base = tmp_path_factory.mktemp("short")
    shutil.copytree(SAMPLE_DATA, base / "data")
    result = subprocess.run([*CLI, "train", "--data", "data", "--out", "run", "--iters", "4",
                             "--checkpoint-period", "1", "--keep-checkpoints", "all", "-q"],
                            cwd=base, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return base / "run"


def _copy_run(run: Path, where: Path) -> Path:
    # Hard links: the damage below replaces files, it never writes into shared ones.
    return Path(shutil.copytree(run, where, copy_function=os.link))


def _resume(run: Path, *extra, cwd: Path):
    return subprocess.run([*CLI, "train", "--resume", str(run), *map(str, extra), "-q"],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def test_a_moved_run_resumes_in_its_new_folder_from_any_directory(short_run, tmp_path):
    facts = json.loads((short_run / "settings.json").read_text())
    assert Path(facts["data"]).is_absolute()
    moved = _copy_run(short_run, tmp_path / "elsewhere" / "moved")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = _resume(moved, "--iters", "6", "--checkpoint-period", "2", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (moved / "model_0000005.pth").is_file()  # the new period, in the new folder
    assert not (short_run / "model_0000005.pth").exists()
    assert "6 iterations" in result.stdout and "MiB on disk" in result.stdout
    lines = (moved / "metrics.jsonl").read_text().splitlines()
    reports = [json.loads(line)["iteration"] for line in lines]
    assert reports == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_options_it_cannot_apply_by_name(short_run, tmp_path, capsys):
    run = _copy_run(short_run, tmp_path / "run")
    assert main(["train", "--resume", str(run), "--lr", "0.5", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("napari-nuclei: error: --lr: cannot change when a run is resumed")
    assert main(["train", "--resume", str(run), "--iters", "3", "-q"]) == 2
    assert "more than the 4 iterations" in capsys.readouterr().err


def _replace(path: Path, content: bytes) -> None:
    path.unlink()
    path.write_bytes(content)


@pytest.mark.parametrize("damage", ["truncated", "empty_tag", "dangling_tag"])
def test_a_damaged_run_resumes_from_the_newest_checkpoint_that_loads(
        damage, short_run, tmp_path):
    run = _copy_run(short_run, tmp_path / "run")
    tag = run / "last_checkpoint"
    if damage == "truncated":
        final = run / "model_final.pth"
        _replace(final, final.read_bytes()[:100_000])
        (run / "model_0000003.pth").unlink()  # the newest whole one is then iteration 2
        expected = "model_0000002.pth"
    else:
        _replace(tag, b"" if damage == "empty_tag" else b"model_0000077.pth")
        expected = "model_final.pth"
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"iteration": 5, "max_it')  # a line cut short by a kill
    result = _resume(run, "--iters", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resuming from {expected}" in result.stderr
    assert "Traceback" not in result.stderr
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_a_damaged_settings_file_is_one_line(short_run, tmp_path, capsys):
    run = _copy_run(short_run, tmp_path / "run")
    settings = run / "settings.json"
    _replace(settings, settings.read_bytes()[:40])
    assert main(["train", "--resume", str(run), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "settings.json: is damaged" in err[0]


def test_no_loadable_checkpoint_is_one_line(short_run, tmp_path, capsys):
    run = _copy_run(short_run, tmp_path / "run")
    for checkpoint in run.glob("model_*.pth"):
        _replace(checkpoint, b"PK\x03\x04 cut")
    assert main(["train", "--resume", str(run), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint loads" in err[0]


# --- Disk use is bounded -------------------------------------------------------------------


def test_pruning_keeps_the_newest_the_best_the_tagged_and_the_final(tmp_path):
    from napari_nuclei.core.training.reports import TrainReport
    from napari_nuclei.core.training.run_folder import prune_checkpoints

    for i in (9, 19, 29, 39, 49):
        (tmp_path / f"model_{i:07d}.pth").write_bytes(b"x")
    (tmp_path / "model_final.pth").write_bytes(b"x")
    (tmp_path / "last_checkpoint").write_text("model_0000049.pth")
    aps = {10: 0.2, 20: 0.5, 30: 0.1, 40: 0.3, 50: 0.25}
    with open(tmp_path / "metrics.jsonl", "w") as fh:
        for it, ap in aps.items():
            report = TrainReport(it, 60, {}, 1.0, 0.01, 1.0, 0.0, 1.0, {"AP": ap},
                                 f"model_{it - 1:07d}.pth")
            fh.write(json.dumps(report.to_json()) + "\n")
    deleted = prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in deleted) == ["model_0000009.pth", "model_0000029.pth"]
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == [
        "model_0000019.pth", "model_0000039.pth", "model_0000049.pth", "model_final.pth"]
    assert prune_checkpoints(tmp_path, keep=0) == []  # "all"


@pytest.mark.parametrize("option, flag", [
    (["--score-thresh", "2"], "--score-thresh"), (["--max-dets", "0"], "--max-dets"),
    (["--test-size", "5"], "--test-size"), (["--tile-size", "10"], "--tile-size"),
])
def test_bad_prediction_options_are_one_line(option, flag, tiny_run, tmp_path, capsys):
    out = tmp_path / "sub.json"
    status = main(["predict", "--model", str(tiny_run[0]), "--images", str(TEST_IMAGES),
                   "-o", str(out), *option, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"napari-nuclei: error: {flag}:")
    assert not out.exists()
