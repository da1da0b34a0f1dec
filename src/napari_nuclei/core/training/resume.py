"""Resuming a run: what it saved, read back from the folder it is in now, and what may
change when it continues."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, OptionError
from ..models.maskrcnn.presets import TrainSettings
from ..runs import SETTINGS_NAME, is_run_dir, load_run_facts

# Settings that may change when a run is resumed; any other change is refused by name.
RESUMABLE_CHANGES = ("max_iter", "checkpoint_period", "eval_period", "keep_checkpoints",
                     "device", "num_workers", "mpp")


def saved_path(run_dir: Path, value: str | None) -> Path | None:
    """A data path saved in a run folder: absolute, or relative to the folder itself."""
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (run_dir / path).resolve()


def read_run_facts(run_dir: Path) -> dict:
    """A run folder's ``settings.json``, checked; a damaged one is one line.

    Raises
    ------
    InputError
        When the folder is not a run, or its settings cannot be read or do not hold.
    """
    if not is_run_dir(run_dir):
        raise InputError(run_dir, "is not a training run folder (no settings.json)")
    try:
        facts = load_run_facts(run_dir)
        if not isinstance(facts, dict) or not isinstance(facts.get("data"), str):
            raise ValueError("no data folder recorded")
        TrainSettings.from_json(facts).validate()
    except (InputError, ValueError, TypeError) as exc:
        why = exc.problem if isinstance(exc, InputError) else str(exc)
        raise InputError(run_dir / SETTINGS_NAME, f"is damaged ({why}); the run cannot be "
                         "resumed: start a new run from its last checkpoint with --weights "
                         f"{run_dir}") from None
    return facts


def done_iterations(checkpoint: Path | None) -> int:
    """Iterations a checkpoint holds (0 when there is none)."""
    if checkpoint is None:
        return 0
    from ..safe_load import load_weights_file

    return int(load_weights_file(checkpoint, mmap=True).get("iteration", -1)) + 1


def apply_resume_changes(
    settings: TrainSettings, changes: dict, done: int
) -> TrainSettings:
    """The run's settings with the changes a resume may make; other changes are refused.

    Parameters
    ----------
    settings : TrainSettings
        What the run saved.
    changes : dict
        Settings given with the resume (None: not given).
    done : int
        Iterations the run has done; an extended run must go beyond them.

    Raises
    ------
    OptionError
        Naming the first setting that cannot change, or a length the run has passed.
    """
    refused = sorted(k for k, v in changes.items() if v is not None
                     and k not in RESUMABLE_CHANGES and getattr(settings, k, v) != v)
    if refused:
        raise OptionError(refused[0], "cannot change when a run is resumed (it would no "
                          "longer be the same run): start a new run, e.g. with --weights "
                          "RUN_DIR to start from this one")
    wanted = {k: v for k, v in changes.items() if k in RESUMABLE_CHANGES and v is not None}
    updated = settings.replace(**wanted).validate()
    if "max_iter" in wanted and updated.max_iter <= done:
        raise OptionError("max_iter", f"must be more than the {done} iterations the run "
                          "has done")
    return updated
