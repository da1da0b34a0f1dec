"""One-line messages to the user, each problem said once (no Qt).

A folder that is gone is found again by every step that looks into it: listing the Data
section's images, *Check*, reading each image's pixels. Said by each, one problem became
a pile of notifications. Here a problem about a file or folder is said once; nothing
more is said about it, or about anything inside it, until it is chosen again (or opened
without a problem), so the user reads one line per cause.
"""

from __future__ import annotations

from pathlib import Path

from psygnal import Signal

LEVELS = ("info", "warning", "error")


class Notices:
    """Says one-line messages through :attr:`said`, each problem once.

    The dock shows what is said as napari notifications; tests listen to it.
    """

    said = Signal(str, str)  # level ("info", "warning" or "error"), the line

    def __init__(self):
        self._told: list[Path] = []  # files and folders a problem was said about
        self._lines: set[str] = set()  # lines said about nothing in particular

    def _covered(self, about: Path) -> bool:
        return any(about == told or told in about.parents for told in self._told)

    def say(self, level: str, line: str, about: str | Path | None = None) -> bool:
        """Say ``line`` unless it was said already.

        Parameters
        ----------
        level : str
            ``info``, ``warning`` or ``error``.
        line : str
            One line: the file or folder and what is wrong with it.
        about : str or Path, optional
            The file or folder the line is about: once something was said about it, or
            about a folder holding it, nothing more is said about it.

        Returns
        -------
        bool
            Whether the line was said now.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        line = " ".join(str(line).split())
        if about is not None:
            about = Path(about).expanduser().absolute()
            if self._covered(about):
                return False
            self._told.append(about)
        elif line in self._lines:
            return False
        else:
            self._lines.add(line)
        self.said.emit(level, line)
        return True

    def error(self, line: str, about: str | Path | None = None) -> bool:
        """Say a problem (see :meth:`say`)."""
        return self.say("error", line, about)

    def warning(self, line: str, about: str | Path | None = None) -> bool:
        """Say a warning (see :meth:`say`)."""
        return self.say("warning", line, about)

    def forget(self, about: str | Path | None = None) -> None:
        """Let problems about ``about`` (and what is in it) be said again; with no
        argument, every problem (another session was opened)."""
        if about is None:
            self._told.clear()
            self._lines.clear()
            return
        about = Path(about).expanduser().absolute()
        self._told = [told for told in self._told
                      if told != about and about not in told.parents]
