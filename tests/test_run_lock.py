"""The run folder's lock file is there only while a run is: removed when the run finishes,
is stopped or fails, and never held twice when one run ends as the next starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.core.training import run_folder
from napari_nuclei.core.training.run_folder import LOCK_NAME, RunFolderBusy, hold_run_folder


def test_the_lock_goes_when_the_block_ends(tmp_path):
    run = tmp_path / "run"
    with hold_run_folder(run, new=True) as folder:
        (folder / "settings.json").write_text("{}")
        assert f"process {os.getpid()}" in (folder / LOCK_NAME).read_text()
    assert sorted(p.name for p in run.iterdir()) == ["settings.json"]


@pytest.mark.parametrize("ending", [KeyboardInterrupt, ValueError])
def test_the_lock_goes_when_the_run_is_stopped_or_fails(tmp_path, ending):
    run = tmp_path / "run"
    run.mkdir()
    (run / "settings.json").write_text("{}")
    with pytest.raises(ending), hold_run_folder(run, new=False):
        raise ending("stopped")
    assert not (run / LOCK_NAME).exists() and (run / "settings.json").is_file()


def test_a_folder_held_is_refused_and_its_lock_kept(tmp_path):
    run = tmp_path / "run"
    with hold_run_folder(run, new=True):
        with pytest.raises(RunFolderBusy, match=f"process {os.getpid()}"), \
                hold_run_folder(run, new=False):
            pass
        # The refused writer removes nothing: the holder's lock stays.
        assert (run / LOCK_NAME).is_file()
    assert not (run / LOCK_NAME).exists()


def test_a_lock_taken_on_a_file_already_removed_is_taken_again(tmp_path, monkeypatch):
    """A writer that opened the lock file just before its holder removed it locks a file
    no longer in the folder: it must take the lock again on the path's new file."""
    run = tmp_path / "run"
    run.mkdir()
    lock_path = run / LOCK_NAME
    lock_path.write_text("process 1 on elsewhere\n")
    real_open = open
    opened = []

    def open_then_lose_the_race(path, *args, **kwargs):
        handle = real_open(path, *args, **kwargs)
        if path == lock_path and not opened:
            # The holder removes the file between this open and the lock.
            os.unlink(lock_path)
        opened.append(path)
        return handle

    monkeypatch.setattr(run_folder, "open", open_then_lose_the_race, raising=False)
    with hold_run_folder(run, new=False):
        assert len(opened) == 2  # taken again, on the new file
        assert f"process {os.getpid()}" in lock_path.read_text()
    assert not lock_path.exists()


@pytest.mark.slow
def test_no_lock_is_left_in_a_finished_or_stopped_run(tmp_path):
    pytest.importorskip("detectron2")
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "napari_nuclei.cli", "train", "--data",
                           str(SAMPLE_DATA), "--out", str(run), "--preset", "tiny",
                           "--iters", "2", "--device", "cpu", "-q"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (run / "model_final.pth").is_file() and not (run / LOCK_NAME).exists()

    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.training.reports import TrainReport
    from napari_nuclei.core.training.run import iter_training

    stopped = tmp_path / "stopped"
    job = iter_training(preset_settings("tiny", max_iter=50, device="cpu"), stopped,
                        data=SAMPLE_DATA)
    for report in job:
        if isinstance(report, TrainReport):
            break
    job.close()
    assert (stopped / "settings.json").is_file() and not (stopped / LOCK_NAME).exists()
