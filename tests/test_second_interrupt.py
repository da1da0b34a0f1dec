"""A second Ctrl-C while a checkpoint is written stops with one line, after the write."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.core.interrupts import hold_interrupt, interrupts_held


def test_an_interrupt_asked_for_during_a_write_is_raised_after_it():
    written = []
    with pytest.raises(KeyboardInterrupt, match="the file was written first"):
        with interrupts_held("the file"):
            assert hold_interrupt() == "the file"
            written.append("all of it")
    assert written == ["all of it"]
    assert hold_interrupt() is None  # nothing held any more


def test_an_error_in_the_write_wins_over_the_held_interrupt():
    with pytest.raises(OSError):
        with interrupts_held("the file"):
            hold_interrupt()
            raise OSError("disk full")
    with interrupts_held("the next file"):
        pass  # the earlier request does not leak into a later write


_CHILD = textwrap.dedent("""
    import signal, sys
    import torch
    from napari_nuclei.cli import main
    from napari_nuclei.cli_commands import train

    real_save = torch.save

    def save_with_a_second_ctrl_c(*args, **kwargs):
        # The user presses Ctrl-C again while the stop checkpoint is being written.
        signal.raise_signal(signal.SIGINT)
        return real_save(*args, **kwargs)

    torch.save = save_with_a_second_ctrl_c
    real_report = train._ProgressPrinter.__call__

    def first_ctrl_c_after_the_first_iteration(self, report):
        real_report(self, report)
        if type(report).__name__ == "TrainReport" and not getattr(self, "asked", False):
            self.asked = True
            signal.raise_signal(signal.SIGINT)

    train._ProgressPrinter.__call__ = first_ctrl_c_after_the_first_iteration
    sys.exit(main(["train", "--data", sys.argv[1], "--out", sys.argv[2], "--preset", "tiny",
                   "--iters", "50", "--device", "cpu", "--eval-period", "0", "-q"]))
""")


def test_a_second_ctrl_c_during_the_stop_checkpoint_is_one_line_and_status_130(tmp_path):
    pytest.importorskip("detectron2")
    from napari_nuclei.core.safe_load import load_weights_file

    run = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", _CHILD, str(SAMPLE_DATA), str(run)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "napari-nuclei: stopped (the checkpoint was written first)", result.stderr
    # The checkpoint the second Ctrl-C waited for is whole and named.
    name = (run / "last_checkpoint").read_text().strip()
    state = load_weights_file(run / name)
    assert state["iteration"] == 0 and "model" in state
    assert not list(run.glob("*.tmp*")), "a temporary file was left behind"
