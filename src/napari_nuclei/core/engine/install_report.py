"""What the engine installation tells its caller: a line per step while it runs
(:class:`EngineStep`), how it ended (:class:`EngineInstallResult`) or why it failed
(:class:`EngineInstallError`)."""

from __future__ import annotations

from dataclasses import dataclass

from .state import EngineStatus


class EngineInstallError(Exception):
    """The installation failed; the message says which step and why, in one line.

    Not a RuntimeError: napari's workers take those for a deleted worker and drop them.
    """


@dataclass(frozen=True)
class EngineStep:
    """A progress line of the installation.

    Attributes
    ----------
    step : int
        The step this line belongs to (1-based).
    total : int
        Steps in all.
    message : str
        What is happening (a step's title or a line of pip's output).
    detail : bool
        True for a line of pip's output, False for a step's title.
    """

    step: int
    total: int
    message: str
    detail: bool = False


@dataclass(frozen=True)
class EngineInstallResult:
    """How the installation ended.

    Attributes
    ----------
    status : EngineStatus
        The engine as this process sees it now.
    changed : bool
        Whether anything was installed or registered.
    restart_needed : bool
        The engine is installed, but this process cannot import it (a package it had
        already imported was replaced): restart the program to use it.
    """

    status: EngineStatus
    changed: bool
    restart_needed: bool

    @property
    def ready(self) -> bool:
        return self.status.ready and not self.restart_needed

    def summary(self) -> str:
        """One line: ready, restart needed, or what is still missing."""
        if self.restart_needed:
            return "The engine is installed; restart napari (or the command) to use it."
        if self.ready:
            return f"The engine is ready: detectron2 from {self.status.origin()}."
        return " · ".join(self.status.problems())
