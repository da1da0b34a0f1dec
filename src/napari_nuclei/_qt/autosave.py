"""Autosave of the session's corrected images, shortly after the last edit, in a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, QTimer, Signal

from .workers import start_job

if TYPE_CHECKING:
    from ..session import Session

AUTOSAVE_DELAY_MS = 1500


class Autosaver(QObject):
    """Saves the session (its images, their corrections and its slides) into the
    session's output folder.

    ``schedule()`` (re)starts a short timer; when it fires, a snapshot of the session is
    written by a worker, one save at a time. The save due is a pending save of the
    session's job registry, and the save running one of its jobs: ``flush()`` (closing
    napari) begins it at once in a worker, ``save_now()`` writes it before returning
    (napari tearing down).
    """

    KEY = "corrections"

    saved = Signal(str)  # one-line summary of an autosave

    def __init__(self, session: Session, before_save=None, parent=None):
        super().__init__(parent)
        self.session = session
        self._before_save = before_save  # counts strokes not counted yet
        self._saving = None
        self._job = None  # the running save's entry in the job registry
        self._again = False  # flushed while a save ran: save again once it ends
        self.failed = False  # the last save failed (said once until one succeeds)
        self.timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self.timer.timeout.connect(self._on_autosave_due)
        # The slides opened, their predictions and their window are the session's too.
        session.slides.changed.connect(self._on_slides_changed)

    def _on_slides_changed(self, what: str) -> None:
        # A restore has just read them from disk; a slide merely opened makes no session
        # folder of its own (one is made once something is predicted).
        if what != "restored" and (self.session.output_dir is not None
                                   or self.session.slides.outputs):
            self.schedule(restart=False)

    @property
    def running(self) -> bool:
        return self._saving is not None and self._saving.is_running

    def schedule(self, restart: bool = True) -> None:
        """Save shortly (``restart=False``: keep a save already due at its time)."""
        if restart or not self.timer.isActive():
            self.timer.start()
        self.session.jobs.pending(self.KEY, self.flush, self.save_now)

    def flush(self) -> None:
        """Begin the save due at once, in a worker (after the one running, if any)."""
        self.timer.stop()
        if self._before_save is not None:
            self._before_save()
        if self._saving is not None:
            self._again = True
        else:
            self._begin()

    def _on_autosave_due(self) -> None:
        if self._saving is not None:  # one save at a time; try again shortly
            self.timer.start()
            return
        self._begin()

    def _begin(self) -> None:
        from ..session.actions import save_session, session_snapshot
        from ..session.jobs import SAVE

        self.session.jobs.begun(self.KEY)
        if not self.session.needs_saving() and not self.session.images:
            return
        state = session_snapshot(self.session)
        self._job = self.session.jobs.started(SAVE, "session")
        self._saving = start_job(save_session, state, on_return=self._on_saved,
                                 on_error=self._on_save_failed,
                                 on_finish=self._on_save_finished)

    def _on_save_failed(self, exc: BaseException) -> None:
        """One line, about the output folder (not a temporary file): said once until
        a save there succeeds again."""
        folder = self.session.output_folder()
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
        else:
            from .workers import one_line

            reason = one_line(exc)
        self.session.notices.error(f"{folder}: the session could not be saved ({reason}); "
                                   "its corrections stay unsaved until it can be",
                                   about=folder)
        self.failed = True

    def _on_saved(self, saved) -> None:
        from ..session.actions import apply_saved

        apply_saved(self.session, saved)
        if self.failed:  # saved again: a later failure is news
            self.failed = False
            self.session.notices.forget(self.session.output_folder())
        if saved.stale:  # images were replaced meanwhile: save what is shown now
            self.schedule()
        if saved.corrections:
            names = ", ".join(name for name, _, _ in saved.corrections)
            self.saved.emit(f"Saved corrections of {names} in "
                            f"{saved.corrections[0][1].parent}")

    def _on_save_finished(self) -> None:
        job, self._saving = self._job, None
        if self._again:  # begun before this one ends: the registry is never idle between
            self._again = False
            self._begin()
        self.session.jobs.ended(job)

    def save_now(self) -> None:
        """Save pending corrections, new predictions and the session at once (closing
        napari or the dock)."""
        from ..core.errors import InputError
        from ..session.actions import save_session, session_snapshot

        self.timer.stop()
        self.session.jobs.begun(self.KEY)
        if self._before_save is not None:
            self._before_save()
        # A save still running in a worker ends first: the session saves one at a time.
        if self.session.needs_saving():
            try:
                saved = save_session(session_snapshot(self.session))
            except (OSError, InputError) as exc:
                self._on_save_failed(exc)  # closing asks before the corrections are lost
                return
            self._on_saved(saved)
