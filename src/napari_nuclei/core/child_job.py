"""Run a job generator in a spawned child process and relay its reports to the caller.

A GUI runs training and prediction this way: torch's threads, its garbage, its memory
(GPU memory included) and its crashes stay in the child, and the GUI's process stays
light and responsive. The child imports the job by name (``"package.module:function"``),
drains it and sends each report, then the result (or the error), through a pipe. Asking
it to stop sets an event the job checks between reports; jobs that take a ``stop``
argument (training) receive the event and finish their step with a checkpoint.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.1
LOG_TAIL_LINES = 6
# The child yields the processor to the process that started it: a viewer that draws
# (in software, with Mesa, its rasteriser threads) while the job uses every core would
# otherwise wait its turn, and stall. An idle viewer leaves the job every core.
CHILD_NICENESS = 10


class ChildJobFailed(Exception):
    """The child process raised, or died without a result; the message is one line."""


def _log_tail(log_path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if log_path is None or not Path(log_path).is_file():
        return ""
    text = Path(log_path).read_text(encoding="utf-8", errors="replace").strip()
    return " | ".join(text.splitlines()[-lines:])


def _stop_when_orphaned(stop) -> None:
    """Ask the job to stop (training: with a checkpoint) if the parent process dies."""
    import os
    import threading

    parent = os.getppid()

    def watch():
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def _yield_processor() -> None:
    """Lower this process's scheduling priority by :data:`CHILD_NICENESS`."""
    import os

    if hasattr(os, "nice"):  # POSIX; elsewhere the child keeps its priority
        try:
            os.nice(CHILD_NICENESS)
        except OSError:
            pass  # not permitted here: the job still runs, at the usual priority


def _child_main(target: str, kwargs: dict, connection, stop, log_path, pass_stop: bool):
    """Body of the child process: drain the job, sending reports, result or error."""
    import faulthandler
    import importlib
    import os
    import sys
    import warnings

    if log_path is not None:
        # Crashes (faulthandler) and tracebacks go to a file the parent can show.
        log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        os.dup2(log.fileno(), 2)
        sys.stderr = log
        faulthandler.enable(log)
        # Libraries' deprecation notes would crowd out the lines that name a crash.
        for category in (DeprecationWarning, FutureWarning, UserWarning):
            warnings.filterwarnings("ignore", category=category)
    _stop_when_orphaned(stop)
    _yield_processor()
    module_name, function_name = target.split(":")
    job = getattr(importlib.import_module(module_name), function_name)(
        **kwargs, **({"stop": stop} if pass_stop else {}))
    try:
        while True:
            report = next(job)
            connection.send(("report", report))
            if stop.is_set() and not pass_stop:
                job.close()
                connection.send(("result", None))
                return
    except StopIteration as finished:
        connection.send(("result", finished.value))
    except BaseException as exc:  # reported to the parent, which shows one line
        import traceback

        traceback.print_exc()
        try:
            connection.send(("error", exc))
        except Exception:  # an exception that does not pickle goes as its text
            connection.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        connection.close()


class ChildJob:
    """A job generator running in a spawned child process.

    Parameters
    ----------
    target : str
        ``"package.module:function"``; the function returns a generator of picklable
        reports and a picklable result.
    kwargs : dict
        Its keyword arguments (picklable).
    log_path : Path, optional
        File the child's standard error (tracebacks, crash dumps) is appended to; its
        last lines name the cause when the child dies.
    pass_stop : bool
        Give the job the stop event as its ``stop`` argument (it stops by itself, say
        after writing a checkpoint); otherwise the job is closed at its next report.
    """

    def __init__(self, target: str, kwargs: dict, log_path: Path | None = None,
                 pass_stop: bool = False):
        context = multiprocessing.get_context("spawn")
        self.log_path = Path(log_path) if log_path else None
        self._stop = context.Event()
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child_main, args=(target, kwargs, sender, self._stop, self.log_path,
                                      pass_stop),
            name=f"napari-nuclei {target.rsplit(':', 1)[-1]}",
            # Not a daemon: training starts data-loading processes of its own.
            daemon=False)
        self._sender = sender
        # The relay thread and the GUI thread both wait on the process: one at a time, or
        # the one that did not reap it would take it for alive.
        self._lock = threading.Lock()

    def start(self) -> ChildJob:
        """Start the child process."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._process.start()
        self._sender.close()  # the child holds the only writer: EOF when it dies
        return self

    def stop(self) -> None:
        """Ask the job to stop at its next report (training: with a checkpoint)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def is_alive(self) -> bool:
        with self._lock:
            return self._process.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the child to end; True when it has."""
        with self._lock:
            self._process.join(timeout)
            return not self._process.is_alive()

    def kill(self) -> None:
        """End the child at once (its last checkpoint stays)."""
        with self._lock:
            if self._process.is_alive():
                self._process.kill()
                self._process.join()

    def reports(self) -> Generator[Any, None, Any]:
        """Yield the job's reports as they arrive; return its result.

        Raises
        ------
        Exception
            The job's own error (re-raised here), or :class:`ChildJobFailed` when the
            child died without a result (with the last lines of its log).
        """
        while True:
            if not self._receiver.poll(POLL_SECONDS):
                if self.is_alive():
                    continue
                if not self._receiver.poll(0):
                    break
            try:
                kind, payload = self._receiver.recv()
            except EOFError:
                break
            if kind == "report":
                yield payload
            elif kind == "result":
                self.join()
                return payload
            else:
                self.join()
                raise payload
        self.join()
        tail = _log_tail(self.log_path)
        raise ChildJobFailed(f"the {self._process.name} process ended unexpectedly "
                             f"(exit code {self._process.exitcode})"
                             + (f": {tail}" if tail else ""))
