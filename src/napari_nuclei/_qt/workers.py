"""Run core jobs in napari thread workers; turn their errors into one-line notifications."""

from __future__ import annotations

from collections.abc import Callable


def one_line(exc: BaseException) -> str:
    """An error as one line: bad input as its own message, a missing engine piece with how
    to install it, others with their type."""
    from ..core.child_job import ChildJobFailed
    from ..core.engine import engine_error_line
    from ..core.errors import InputError

    if isinstance(exc, InputError | ChildJobFailed):
        text = str(exc)
    elif line := engine_error_line(exc):
        text = line
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def notify_error(exc: BaseException) -> None:
    """Show an error once, as a one-line napari notification (never a traceback)."""
    from napari.utils.notifications import show_error

    show_error(one_line(exc))


def show_notice(level: str, line: str) -> None:
    """Show a line the session's notices say as a napari notification of its level."""
    from napari.utils.notifications import show_error, show_info, show_warning

    {"info": show_info, "warning": show_warning, "error": show_error}[level](line)


def relay(job):
    """Yield a :class:`~napari_nuclei.core.child_job.ChildJob`'s reports in a worker
    thread; return its result."""
    return (yield from job.reports())


def prepared_relay(job, score_thresh: float):
    """Relay a prediction :class:`~napari_nuclei.core.child_job.ChildJob`'s reports in a
    worker thread, each with its prediction made ready to show (see
    :func:`napari_nuclei.session.actions.iter_prepared`)."""
    from ..session.actions import iter_prepared

    return (yield from iter_prepared(job.reports(), score_thresh))


def open_chosen_dataset(path, say, what: str, notices=None):
    """Open the dataset of a folder chosen in the Data section.

    Parameters
    ----------
    path : Path or None
        The folder, or None when none was chosen.
    say : callable
        Shows a one-line hint in the calling section (``label.setText``).
    what : str
        Which folder, for the hint ("training", "test").
    notices : Notices, optional
        The session's notices: the problem is said there, once per folder (the Data
        section may have said it already, when the folder was chosen).

    Returns
    -------
    Dataset or None
        None when no folder was chosen or it could not be opened (then the hint and a
        notification name the file and the problem).
    """
    from ..core.dataset import open_dataset

    if path is None:
        say(f"Choose a {what} folder in the Data section first.")
        return None
    try:
        dataset = open_dataset(path)
    except Exception as exc:  # shown as a notification, never raised into Qt
        say(one_line(exc))
        if notices is not None:
            notices.error(one_line(exc), about=path)
        else:
            notify_error(exc)
        return None
    if notices is not None:
        notices.forget(path)  # sound now: a later problem with it is news
    return dataset


def start_job(function: Callable, *args, on_yield=None, on_return=None, on_finish=None,
              on_error=None, progress: dict | None = None, **kwargs):
    """Start ``function(*args, **kwargs)`` (a generator or plain function) in a worker.

    Parameters
    ----------
    function : callable
        A core job.
    on_yield, on_return, on_finish : callable, optional
        Connected to the worker's ``yielded``, ``returned`` and ``finished`` signals
        (called on the GUI thread).
    on_error : callable, optional
        Called with the error instead of showing it as a notification. Either way the
        error is handled here, so it is shown once and never re-raised into Qt.
    progress : dict, optional
        napari progress bar options (``total``, ``desc``) for the activity dock.

    Returns
    -------
    napari.qt.threading.WorkerBase
        The started worker.
    """
    from napari.qt.threading import create_worker

    # The error handler goes in at creation: otherwise superqt re-raises the error into
    # Qt's event loop, and it is shown twice, with a traceback.
    connect = {"errored": on_error or notify_error}
    for signal, handler in (("yielded", on_yield), ("returned", on_return),
                            ("finished", on_finish)):
        if handler is not None:
            connect[signal] = handler
    options = {"_start_thread": False, "_connect": connect}
    if progress:
        options["_progress"] = progress
    worker = create_worker(function, *args, **kwargs, **options)
    worker.start()
    return worker
