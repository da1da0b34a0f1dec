"""The engine's state for its users: what was found (:class:`EngineStatus`, from
:mod:`.status`) and the verdict of using it (:class:`EngineCheck`, from :mod:`.check`),
each saying what is wrong and how to fix it in one line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .location import EngineLocation

CLI_INSTALL = "napari-nuclei install-engine (or Install in napari-nuclei's dock)"


@dataclass(frozen=True)
class EngineCheck:
    """The verdict of using the engine in a fresh interpreter (see :mod:`.check`).

    Attributes
    ----------
    ok : bool
        torch, torchvision and detectron2 imported and a tiny Mask R-CNN ran.
    cause : str
        What went wrong, in one line ("" when ok).
    fix : str or None
        What to do about it; None: run the installer (it reinstalls detectron2's code).
    culprit : str
        The piece at fault: ``"torch"``, ``"torchvision"``, ``"detectron2"``,
        ``"requirement"`` (a package detectron2 imports), ``"check"`` (the check itself
        did not finish) or ``""`` when ok.
    versions : dict
        What the check imported: torch, torchvision and detectron2 versions.
    seconds : float
        How long the check took when it ran.
    cached : bool
        The verdict was read from the cache: nothing ran this time.
    """

    ok: bool
    cause: str = ""
    fix: str | None = None
    culprit: str = ""
    versions: dict = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def line(self, how: str = CLI_INSTALL) -> str:
        """The cause and its fix, as one line ("" when ok)."""
        if self.ok:
            return ""
        return f"{self.cause}; {self.fix or f'reinstall it with: {how}'}"


@dataclass(frozen=True)
class EngineStatus:
    """The engine as this process sees it.

    Attributes
    ----------
    torch_problem : str or None
        One line with the fix when torch is missing or too old.
    detectron2_dir : Path or None
        The ``detectron2`` package folder this process would import, if any.
    source : str
        ``"napari-nuclei"`` (installed by ``napari-nuclei install-engine``), ``"own"``
        (another installation, such as a source build) or ``"missing"``.
    installed_not_on_path : bool
        The installer's folder holds detectron2 but this process started before it was
        registered (the next start picks it up).
    missing_requirements : tuple of str
        Runtime requirements not installed in an accepted version.
    location : EngineLocation
        Where the installer puts detectron2.
    check : EngineCheck or None
        The verdict of using the engine; None until it has been checked (see
        :func:`napari_nuclei.core.engine.verify_engine`).
    """

    torch_problem: str | None
    detectron2_dir: Path | None
    source: str
    installed_not_on_path: bool
    missing_requirements: tuple[str, ...]
    location: EngineLocation
    check: EngineCheck | None = None

    @property
    def complete(self) -> bool:
        """Every piece is installed, as far as package metadata tells."""
        return (self.torch_problem is None and self.detectron2_dir is not None
                and not self.missing_requirements)

    @property
    def ready(self) -> bool:
        """Complete, and checked by using it: a tiny Mask R-CNN ran in a new interpreter."""
        return self.complete and self.check is not None and self.check.ok

    def installer_can_fix(self) -> bool:
        """Whether the installer has something to do: detectron2 or its requirements are
        missing, or the detectron2 it installed is broken."""
        if self.detectron2_dir is None or self.missing_requirements:
            return True
        return (self.check is not None and not self.check.ok
                and self.check.culprit == "detectron2" and self.source == "napari-nuclei")

    def problems(self, how: str = CLI_INSTALL) -> list[str]:
        """One line per missing piece, each saying how to fix it (empty when ready).

        Parameters
        ----------
        how : str
            How to run the installer, where it is shown (the command line, the dock).
        """
        lines = [self.torch_problem] if self.torch_problem else []
        if self.detectron2_dir is None:
            lines.append(f"detectron2 is not installed; install it with: {how}")
        if self.missing_requirements:
            lines.append(f"detectron2 needs {', '.join(self.missing_requirements)}; install "
                         f"them with: {how}")
        if self.complete and self.check is not None and not self.check.ok:
            lines.append(self.check.line(how))
        return lines

    def origin(self) -> str:
        """Where detectron2 comes from, in words."""
        if self.source == "napari-nuclei":
            return f"{self.detectron2_dir} (installed by napari-nuclei install-engine)"
        if self.source == "own":
            return f"{self.detectron2_dir} (an installation of your own)"
        if self.installed_not_on_path:
            return (f"installed in {self.location.folder}, importable after restarting this "
                    "program")
        return "not installed"
