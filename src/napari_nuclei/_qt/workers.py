"""Run core jobs in napari thread workers; turn their errors into one-line notifications."""

from __future__ import annotations

from collections.abc import Callable


def notify_error(exc: BaseException) -> None:
    """Show an error as a napari notification: bad input as its own one-line message."""
    from napari.utils.notifications import show_error

    from ..core.engine import engine_error_line
    from ..core.errors import InputError

    if isinstance(exc, InputError):
        show_error(str(exc))
    elif line := engine_error_line(exc):  # a missing engine piece: say how to install it
        show_error(line)
    else:
        show_error(f"{type(exc).__name__}: {exc}")


def open_chosen_dataset(path, say, what: str):
    """Open the dataset of a folder chosen in the Data section.

    Parameters
    ----------
    path : Path or None
        The folder, or None when none was chosen.
    say : callable
        Shows a one-line hint in the calling section (``label.setText``).
    what : str
        Which folder, for the hint ("training", "test").

    Returns
    -------
    Dataset or None
        None when no folder was chosen or it could not be opened (then a notification
        names the file and the problem).
    """
    from ..core.dataset import open_dataset

    if path is None:
        say(f"Choose a {what} folder in the Data section first.")
        return None
    try:
        return open_dataset(path)
    except Exception as exc:  # shown as a notification, never raised into Qt
        notify_error(exc)
        return None


def start_job(function: Callable, *args, on_yield=None, on_return=None, on_finish=None,
              progress: dict | None = None, **kwargs):
    """Start ``function(*args, **kwargs)`` (a generator or plain function) in a worker.

    Parameters
    ----------
    function : callable
        A core job.
    on_yield, on_return, on_finish : callable, optional
        Connected to the worker's ``yielded``, ``returned`` and ``finished`` signals
        (called on the GUI thread).
    progress : dict, optional
        napari progress bar options (``total``, ``desc``) for the activity dock.

    Returns
    -------
    napari.qt.threading.WorkerBase
        The started worker.
    """
    from napari.qt.threading import create_worker

    # Errors go to notify_error (below), not re-raised as a traceback on the GUI thread.
    options = {"_start_thread": False, "_ignore_errors": True}
    if progress:
        options["_progress"] = progress
    worker = create_worker(function, *args, **kwargs, **options)
    if on_yield is not None:
        worker.yielded.connect(on_yield)
    if on_return is not None:
        worker.returned.connect(on_return)
    if on_finish is not None:
        worker.finished.connect(on_finish)
    worker.errored.connect(notify_error)
    worker.start()
    return worker
