"""A run folder as a transaction: one writer at a time, checkpoints that load, bounded disk.

- :func:`hold_run_folder` takes the folder's lock (an OS file lock, released by the kernel
  when the owner dies, so a killed run never leaves a stale lock), removes the lock file
  when the run ends (finished, stopped or failed: a finished run folder holds only the
  run) and, for a new run, removes the folder again when preparing it fails, so no empty
  folder blocks the next try.
- :func:`repair_checkpoint_tag` points ``last_checkpoint`` at the newest checkpoint that
  loads, for runs killed mid-write or damaged by hand.
- :func:`prune_checkpoints` keeps the newest periodic checkpoints, the best one by
  validation AP, the one ``last_checkpoint`` names and the final model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputError, WeightsError
from ..folder_lock import lock_file, lock_owner, record_owner
from ..runs import (
    FINAL_CHECKPOINT,
    LAST_CHECKPOINT,
    checkpoints_newest_first,
    periodic_checkpoints,
    tagged_checkpoint,
)
from .reports import checkpoint_rows

LOCK_NAME = ".train.lock"


class RunFolderBusy(InputError):
    """Another process is writing to the run folder."""


def _same_file(fh, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fh`` (the holder before may have
    removed it after this process opened it)."""
    try:
        here, there = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _take_lock(lock_path: Path):
    """Open and lock ``lock_path``; the open file, or None when someone holds it.

    The holder removes the file when it is done. A process that opened the file just
    before that would lock a file no longer in the folder, beside a newcomer locking a
    new one: so the lock counts only while the path still names the locked file, and
    is taken again on the new file otherwise.
    """
    while True:
        fh = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 (the caller closes it)
        if not lock_file(fh):
            fh.close()
            return None
        if _same_file(fh, lock_path):
            return fh
        fh.close()


def _release_lock(fh, lock_path: Path) -> None:
    """Remove the lock file while still holding it, then let go: whoever opens the path
    afterwards makes a new file (see :func:`_take_lock`)."""
    with contextlib.suppress(OSError):
        if _same_file(fh, lock_path):
            lock_path.unlink()
    fh.close()
    # Windows cannot remove a file that is open: try once more now that it is closed.
    with contextlib.suppress(OSError):
        if lock_path.exists() and os.name == "nt":
            lock_path.unlink()


@contextlib.contextmanager
def hold_run_folder(run_dir: str | Path, new: bool) -> Iterator[Path]:
    """Be the only writer of a run folder for the duration of the block.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (created when missing).
    new : bool
        A new run: when the block fails before ``settings.json`` is written, a folder
        this call created is removed again.

    Yields
    ------
    Path
        The resolved run folder.

    Raises
    ------
    RunFolderBusy
        When another process holds the folder (its PID and host are named).

    Notes
    -----
    The lock file, ``.train.lock``, is there only while the run is: it is removed when the
    block ends, however it ends. A run killed outright leaves it behind, unlocked; the
    next run takes it over.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / LOCK_NAME
    fh = _take_lock(lock_path)
    if fh is None:
        raise RunFolderBusy(run_dir, f"is in use by {lock_owner(lock_path)}: wait for it to "
                            "finish or stop it first")
    try:
        record_owner(fh)
        completed = False
        try:
            yield run_dir
            completed = True
        finally:
            prepared = (run_dir / "settings.json").is_file()
            if new and created and not completed and not prepared:
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        _release_lock(fh, lock_path)


def repair_checkpoint_tag(run_dir: Path) -> tuple[Path | None, str]:
    """Make ``last_checkpoint`` name the newest checkpoint that loads.

    Parameters
    ----------
    run_dir : Path
        A run folder about to be resumed.

    Returns
    -------
    tuple
        The checkpoint to resume from (None when the run has none yet) and a warning
        for the user (empty when the folder was in order).

    Raises
    ------
    WeightsError
        When checkpoints exist but none of them loads.
    """
    from ..models.maskrcnn.weights import inspect_weights

    tagged = tagged_checkpoint(run_dir)
    candidates = ([tagged] if tagged else []) + [
        p for p in checkpoints_newest_first(run_dir) if p != tagged]
    damaged = []
    for candidate in candidates:
        try:
            inspect_weights(candidate)
        except WeightsError as exc:
            damaged.append(f"{candidate.name} ({exc.problem})")
            continue
        if candidate == tagged:
            return candidate, ""
        with atomic_path(run_dir / LAST_CHECKPOINT) as tmp:
            tmp.write_text(candidate.name, encoding="utf-8")
        why = (f"damaged: {'; '.join(damaged)}" if damaged
               else "missing or naming no file")
        return candidate, f"{LAST_CHECKPOINT} was {why}; resuming from {candidate.name}"
    if damaged:
        raise WeightsError(run_dir, f"no checkpoint loads: {'; '.join(damaged)}")
    return None, ""


def prune_checkpoints(run_dir: Path, keep: int) -> list[Path]:
    """Delete periodic checkpoints beyond the newest ``keep`` (0 keeps all).

    The best checkpoint by validation mask AP, the one ``last_checkpoint`` names and
    ``model_final.pth`` always stay.

    Returns
    -------
    list of Path
        The files deleted.
    """
    if keep <= 0:
        return []
    periodic = periodic_checkpoints(run_dir)
    kept = set(periodic[-keep:])
    # Ties (all zero early in a run) go to the newest, which is kept anyway.
    scored = [(ap, order, path) for order, (path, ap) in enumerate(checkpoint_rows(run_dir))
              if ap is not None]
    if scored:
        kept.add(max(scored)[2])
    tagged = tagged_checkpoint(run_dir)
    if tagged is not None:
        kept.add(tagged)
    deleted = []
    for path in periodic:
        if path not in kept and path.name != FINAL_CHECKPOINT:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted.append(path)
    return deleted


def folder_size(run_dir: Path) -> int:
    """Bytes held by the files of a run folder."""
    return sum(p.stat().st_size for p in Path(run_dir).rglob("*") if p.is_file())
