"""The slides part of a saved session (``slides``, optional): each slide's file (any
path: it is only read), the output folders of its predicted regions with their level-0
rectangles, and the region of the window being corrected. Output folders are read and
written when the session is restored, so they must lie inside the session folder and be
reached through no link."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from . import fields
from .fields import InvalidValue, describe, in_file
from .session_paths import file_inside, optional_path

# Slides opened in one session, and regions predicted on one slide: a person opens a few
# slides and predicts tens of regions of each; these caps keep a hostile file small.
MAX_SESSION_SLIDES = 1_000
MAX_SLIDE_OUTPUTS = 10_000
SLIDE_KEYS = ("slide", "outputs", "window")
# Level-0 coordinates: slides are at most a few hundred thousand pixels a side.
MAX_SLIDE_COORDINATE = 2**31 - 1


@dataclass(frozen=True)
class SlideEntry:
    """One slide of a checked ``session.json``.

    Attributes
    ----------
    slide : Path
        The slide file, wherever it is (it is only read, never written).
    outputs : tuple
        ``(output folder, (x, y, width, height))`` of each predicted region, oldest
        first: folders inside the session folder, reached through no link, each once.
    window : tuple or None
        ``(output folder, (x, y, width, height))`` of the window being corrected: one of
        the ``outputs`` folders.
    """

    slide: Path
    outputs: tuple = ()
    window: tuple | None = None


def slide_region(value, name: str = "region") -> tuple[int, int, int, int]:
    """A level-0 rectangle ``[x, y, width, height]`` of whole numbers, not empty.

    Raises
    ------
    InvalidValue
        For another type or length, a negative corner or an empty side.
    """
    if not isinstance(value, list) or len(value) != 4:
        raise InvalidValue(f"{name} must be a list [x, y, width, height], not "
                           f"{describe(value)}")
    x, y, width, height = (
        fields.integer(item, f"{name} {part}", minimum=0 if part in "xy" else 1,
                       maximum=MAX_SLIDE_COORDINATE)
        for part, item in zip(("x", "y", "width", "height"), value, strict=True))
    return x, y, width, height


def _slide_output(value, folder: Path, name: str) -> tuple[Path, tuple]:
    fields.obj(value, name)
    fields.required(value, ("folder", "region"))
    return (file_inside(folder, value["folder"], f"{name} folder"),
            slide_region(value["region"], f"{name} region"))


def check_slide_entry(entry, folder: Path) -> SlideEntry:
    """Check one slide entry of ``session.json``.

    Raises
    ------
    InvalidValue
        For a missing key or a value of the wrong type, range or place.
    """
    fields.obj(entry, "slide entry")
    fields.required(entry, ("slide",))
    unknown = sorted(set(entry) - set(SLIDE_KEYS))
    if unknown:
        raise InvalidValue(f"has keys this napari-nuclei does not know: "
                           f"{', '.join(unknown)[:80]}")
    slide = optional_path(entry["slide"], "slide")
    if slide is None:
        raise InvalidValue("slide is empty")
    listed = fields.array(entry.get("outputs", []), "outputs")
    if len(listed) > MAX_SLIDE_OUTPUTS:
        raise InvalidValue(f"lists {len(listed):,} predicted regions, more than the "
                           f"{MAX_SLIDE_OUTPUTS:,} a slide may hold")
    outputs, seen = [], set()
    for number, value in enumerate(listed):
        out_dir, region = _slide_output(value, folder, f"output {number}")
        if out_dir in seen:
            raise InvalidValue(f"output {number} folder {out_dir.name!r} appears twice")
        seen.add(out_dir)
        outputs.append((out_dir, region))
    window = entry.get("window")
    if window is not None:
        window = _slide_output(window, folder, "window")
        if window[0] not in seen:
            raise InvalidValue(f"window folder {window[0].name!r} is none of the slide's "
                               "outputs")
    return SlideEntry(slide, tuple(outputs), window)


def check_slides(document: dict, path: Path, folder: Path, strict: bool = False,
                 ) -> tuple[list[SlideEntry], list[str]]:
    """Check the ``slides`` of a parsed ``session.json``, entry by entry.

    Returns
    -------
    slides : list of SlideEntry
        The sound entries, in file order.
    skipped : list of str
        One line per damaged entry (none with ``strict``, which raises instead).

    Raises
    ------
    DatasetError
        When ``slides`` is not a list or lists too many, or (with ``strict``) at the
        first damaged entry.
    """
    with in_file(path):
        listed = fields.array(document.get("slides", []), "slides")
        if len(listed) > MAX_SESSION_SLIDES:
            raise InvalidValue(f"lists {len(listed):,} slides, more than the "
                               f"{MAX_SESSION_SLIDES:,} a session may hold")
    slides, skipped = [], []
    for number, entry in enumerate(listed):
        try:
            with in_file(path, f"slide {number}"):
                slides.append(check_slide_entry(entry, folder))
        except DatasetError as exc:
            if strict:
                raise
            skipped.append(str(exc))
    return slides, skipped
