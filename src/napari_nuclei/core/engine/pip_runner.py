"""pip, run for this interpreter: its output lines as they come, and its note on conflicts
among installed packages folded into one line."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence

from .install_report import EngineInstallError
from .status import python_command

# Runs ``pip <args>`` in the running environment and yields its output lines.
PipRunner = Callable[[Sequence[str]], Iterator[str]]
# pip's closing note on conflicts among installed packages, and its lines naming them.
_RESOLVER_NOTE = "ERROR: pip's dependency resolver does not currently take into account"
_CONFLICT = re.compile(r"^\S+ \S+ (requires|has requirement) ")


def run_pip(args: Sequence[str]) -> Iterator[str]:
    """Run ``python -m pip <args>`` for this interpreter, yielding its output lines.

    Closing the iterator stops pip. Raises :class:`EngineInstallError` (with pip's last
    lines) when pip fails.
    """
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    tail: list[str] = []
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail = (tail + [line])[-3:]
                yield line
        process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait()
        process.stdout.close()
    if process.returncode != 0:
        raise EngineInstallError(f"pip {args[0]} failed (exit {process.returncode}): "
                                 + " | ".join(tail))


def without_resolver_notes(lines: Iterator[str], conflicts: list[str]) -> Iterator[str]:
    """pip's output without its note on conflicts among installed packages; the
    conflicting lines go to ``conflicts`` (shown once, as one line, by the caller)."""
    in_note = False
    try:
        for line in lines:
            if line.startswith(_RESOLVER_NOTE):
                in_note = True
            elif in_note and _CONFLICT.match(line):
                conflicts.append(line)
            else:
                in_note = False
                yield line
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()  # stopping the job stops pip


def conflicts_line(conflicts: list[str]) -> str:
    shown = "; ".join(line.rstrip(".") for line in conflicts[:3])
    more = f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else ""
    return (f"note: pip reports requirements of installed packages it left unmet: {shown}"
            f"{more} (all of them: {python_command()} -m pip check)")
