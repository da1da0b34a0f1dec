"""What the session is doing in the background: its running jobs and its saves not yet
written (no Qt).

Every section registers here what it starts (training, folder prediction, slide region
prediction, write-backs of slide windows, autosaves) and every save it has scheduled but
not begun. Closing napari walks this one registry: it asks each job to stop the way that
keeps its work (training writes a checkpoint, a slide job keeps its finished tiles and
resumes), writes each pending save at once, and closes when nothing is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psygnal import Signal

# Kinds of job, as they are named to the user.
TRAINING = "training"
PREDICTION = "prediction"
SLIDE = "slide prediction"
WRITE_BACK = "write-back"
SAVE = "save"


@dataclass(eq=False)
class Job:
    """A job the session runs in the background.

    Attributes
    ----------
    kind : str
        What it is (:data:`TRAINING`, :data:`PREDICTION`, :data:`SLIDE`, ...).
    name : str
        Which one (a run folder, a slide region), for messages.
    stop : callable or None
        Asks it to stop, keeping its work; None for a job that is let finish (a save,
        a write-back: both are short, and stopping them half-way would lose work).
    kill : callable or None
        Ends it at once, for a job that did not stop in time (what it saved stays).
    """

    kind: str
    name: str
    stop: Callable[[], None] | None = None
    kill: Callable[[], None] | None = None


@dataclass(eq=False)
class PendingSave:
    """A save that is due but not begun (an autosave waiting for the brush to rest).

    Attributes
    ----------
    key : str
        One pending save per key: scheduling it again replaces it.
    flush : callable
        Begins the save at once, in the background (registering its job).
    flush_now : callable
        Writes it before returning, for a close that cannot wait (napari tearing down).
    """

    key: str
    flush: Callable[[], None]
    flush_now: Callable[[], None]


class Jobs:
    """The registry of the session's running jobs and pending saves.

    ``changed`` fires whenever a job starts or ends or a save becomes due or is written.
    """

    changed = Signal()

    def __init__(self):
        self._running: list[Job] = []
        self._pending: dict[str, PendingSave] = {}

    # -- jobs ---------------------------------------------------------------------------
    def started(self, kind: str, name: str, stop: Callable[[], None] | None = None,
                kill: Callable[[], None] | None = None) -> Job:
        """Register a job that has just started; returns its entry for :meth:`ended`."""
        job = Job(kind, name, stop, kill)
        self._running.append(job)
        self.changed.emit()
        return job

    def ended(self, job: Job | None) -> None:
        """A job has ended (finished, stopped or failed); unknown entries are ignored."""
        if job is not None and job in self._running:
            self._running.remove(job)
            self.changed.emit()

    @property
    def running(self) -> list[Job]:
        """The jobs running now, oldest first."""
        return list(self._running)

    def running_of(self, kind: str) -> list[Job]:
        """The jobs of one kind running now."""
        return [job for job in self._running if job.kind == kind]

    # -- pending saves ------------------------------------------------------------------
    def pending(self, key: str, flush: Callable[[], None],
                flush_now: Callable[[], None]) -> None:
        """A save is due (see :class:`PendingSave`)."""
        fresh = key not in self._pending
        self._pending[key] = PendingSave(key, flush, flush_now)
        if fresh:
            self.changed.emit()

    def begun(self, key: str) -> None:
        """A pending save has begun (or is no longer needed)."""
        if self._pending.pop(key, None) is not None:
            self.changed.emit()

    @property
    def pending_saves(self) -> list[PendingSave]:
        return list(self._pending.values())

    # -- the whole ----------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Nothing runs and nothing waits to be saved."""
        return not self._running and not self._pending

    def flush(self) -> None:
        """Begin every pending save now."""
        for save in self.pending_saves:
            self.begun(save.key)
            save.flush()

    def stop_all(self) -> None:
        """Ask every job that can stop to stop, keeping its work."""
        for job in self.running:
            if job.stop is not None:
                job.stop()

    def wind_down(self) -> None:
        """Write the pending saves and stop the jobs (closing): :attr:`idle` once they
        have all ended."""
        self.flush()
        self.stop_all()

    def kill_overdue(self) -> list[Job]:
        """End at once the jobs that did not stop when asked; returns them."""
        killed = [job for job in self.running if job.stop is not None
                  and job.kill is not None]
        for job in killed:
            job.kill()
        return killed

    def finish_now(self) -> None:
        """For a close that cannot wait: ask every job to stop and write every pending
        save before returning (jobs are not waited for: a training run writes its
        checkpoint by itself, a slide job keeps its finished tiles)."""
        self.stop_all()
        for save in self.pending_saves:
            self.begun(save.key)
            save.flush_now()
