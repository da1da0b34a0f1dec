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
