"""Errors that are shown to the user as one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: the message names the offending file and what is wrong with it.

    Parameters
    ----------
    path : str or Path
        The file or folder at fault.
    problem : str
        What is wrong, in words a biologist can act on.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Keep (path, problem) when the error crosses a process boundary.
        return type(self), (self.path, self.problem)


class DatasetError(InputError):
    """Bad input data (images, masks, label images, annotation files)."""


class WeightsError(InputError):
    """A model weights file or run folder that cannot be used."""


class OptionError(ValueError):
    """A setting or command-line option with a value that cannot work.

    Parameters
    ----------
    option : str
        The setting's name (``max_iter``); the CLI shows its flag instead (``--iters``).
    problem : str
        What is wrong and what would work.
    """

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")

    def __reduce__(self):
        return type(self), (self.option, self.problem)
