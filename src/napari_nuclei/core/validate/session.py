"""Saved dock sessions: ``session.json`` and its ``predictions/<name>.npz`` files.

A session folder is handed from one person to another like any dataset, so it is
checked like one. ``session.json`` names files that are read when the session is
restored and written when it is saved again: an image name such as ``../../x`` would
make the next save write outside the folder, and a prediction path leading out of it
(absolute, ``..`` or through a symbolic link) would be read. A prediction file declares
its image size and the size of every mask crop; a file of a kilobyte could ask for
gigabytes, so every size is checked before anything is allocated.

A session also lists the slides it opened (``slides``, optional): each slide's file
(any path: it is only read), the output folders of its predicted regions with their
level-0 rectangles, and the region of the window being corrected. Output folders are
read and written when the session is restored (labels, table, autosaved edits), so they
must lie inside the session folder and be reached through no link, as prediction files
must.

A damaged document (not JSON, not an object, another version, more images than
:data:`MAX_SESSION_IMAGES`) is refused as a whole with one line; a damaged image or
slide entry is skipped and named in one line while the sound entries are restored.

This module checks the document and its images; names and paths are checked by
:mod:`.session_paths`, the slides by :mod:`.session_slides`, and the prediction files
are read by :mod:`.prediction_arrays` (their names are importable from here too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError
from . import fields
from .fields import InvalidValue, describe, in_file
from .json_input import load_json
from .prediction_arrays import (  # noqa: F401  (the session's files, read from here too)
    PREDICTION_MEMBERS,
    PredictionArrays,
    read_prediction_arrays,
)
from .session_paths import file_inside, optional_path, plain_name
from .session_slides import (  # noqa: F401
    MAX_SESSION_SLIDES,
    MAX_SLIDE_OUTPUTS,
    SLIDE_KEYS,
    SlideEntry,
    check_slide_entry,
    check_slides,
    slide_region,
)

SESSION_NAME = "session.json"
VERSION = 1
FOLDER_FIELDS = ("train_dir", "test_dir", "gt_dir", "run_dir", "checkpoint")
IMAGE_KEYS = ("name", "image_path", "score_thresh", "prediction", "labels")
# A dock session holds the images someone predicted and corrected by hand: hundreds,
# rarely thousands. Ten thousand keeps restoring (and the autosave that rewrites every
# entry) to seconds, where a file of 200,000 entries would take minutes.
MAX_SESSION_IMAGES = 10_000
# Entries with ordinary paths take a few hundred bytes, so a session of
# MAX_SESSION_IMAGES stays far below this; a larger file is refused before parsing.
MAX_SESSION_BYTES = 64 * 2**20


@dataclass(frozen=True)
class SessionEntry:
    """One image of a checked ``session.json``.

    Attributes
    ----------
    name : str
        A plain file name (no folder, no ``..``), unique in the session.
    image_path : Path or None
        The image's own file, wherever it is (it is only read, never written).
    score_thresh : float
        Threshold in [0, 1] the labels were shown at.
    prediction : Path
        The ``.npz`` file, inside the session folder, reached through no link.
    labels : Path or None
        The corrected label image, inside the session folder, reached through no link.
    """

    name: str
    image_path: Path | None
    score_thresh: float
    prediction: Path
    labels: Path | None


@dataclass(frozen=True)
class CheckedSession:
    """A ``session.json`` that passed the gate.

    Attributes
    ----------
    fields : dict
        ``FOLDER_FIELDS`` as ``Path`` or None, and ``score_thresh`` as a float.
    entries : list of SessionEntry
        The sound image entries, in file order.
    skipped : list of str
        One line per damaged entry, naming the file, the entry and the problem.
    slides : list of SlideEntry
        The sound slide entries, in file order (the last is the one open).
    """

    fields: dict
    entries: list[SessionEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    slides: list[SlideEntry] = field(default_factory=list)


def _threshold(value, name: str) -> float:
    # fields.number tests finiteness as a float: an integer of hundreds of digits (valid
    # JSON) would overflow that conversion, so integers are judged here first.
    if type(value) is int and not 0 <= value <= 1:
        raise InvalidValue(f"{name} is an integer outside [0, 1]")
    return float(fields.number(value, name, minimum=0, maximum=1))


def _entry_label(number: int, entry) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    if isinstance(name, str) and name:
        shown = name if len(name) <= 60 else name[:57] + "..."
        return f"image {number} ({shown!r})"
    return f"image {number}"


def check_entry(entry, folder: Path) -> SessionEntry:
    """Check one image entry of ``session.json``.

    Raises
    ------
    InvalidValue
        For a missing key or a value of the wrong type, range or place.
    """
    fields.obj(entry, "image entry")
    fields.required(entry, ("name", "score_thresh", "prediction"))
    name = plain_name(entry["name"])
    labels = entry.get("labels")
    return SessionEntry(
        name,
        optional_path(entry.get("image_path"), "image_path"),
        _threshold(entry["score_thresh"], "score_thresh"),
        file_inside(folder, entry["prediction"], "prediction"),
        None if labels is None else file_inside(folder, labels, "labels"),
    )


def check_session(document, path: Path, folder: Path | None = None,
                  strict: bool = False) -> CheckedSession:
    """Check a parsed ``session.json``: the document as a whole, then entry by entry.

    Parameters
    ----------
    document : object
        What :func:`~.json_input.load_json` returned.
    path : Path
        The file, named in messages.
    folder : Path, optional
        The session folder that relative file names are resolved in (``path``'s).
    strict : bool
        Refuse the document at its first damaged entry instead of skipping it (for
        the writer, which must never write an entry the reader would skip).

    Returns
    -------
    CheckedSession
        Folder fields, the sound entries and one line per skipped entry.

    Raises
    ------
    DatasetError
        When the document as a whole is not a session of this version (or, with
        ``strict``, when any entry is damaged).
    """
    path = Path(path)
    folder = path.parent if folder is None else Path(folder)
    if not isinstance(document, dict):
        raise DatasetError(path, f"is not a saved session: expected a JSON object, not "
                           f"{describe(document)}")
    with in_file(path):
        fields.required(document, ("version", "score_thresh", "images"))
        version = fields.integer(document["version"], "version")
        if version != VERSION:
            raise InvalidValue(f"session version {version} cannot be read here (this "
                               f"napari-nuclei reads version {VERSION})")
        checked = {key: optional_path(document.get(key), key) for key in FOLDER_FIELDS}
        checked["score_thresh"] = _threshold(document["score_thresh"], "score_thresh")
        images = fields.array(document["images"], "images")
        if len(images) > MAX_SESSION_IMAGES:
            raise InvalidValue(f"lists {len(images):,} images, more than the "
                               f"{MAX_SESSION_IMAGES:,} a session may hold")
    session = CheckedSession(checked)
    seen: set[str] = set()
    for number, entry in enumerate(images):
        try:
            with in_file(path, _entry_label(number, entry)):
                image = check_entry(entry, folder)
                if image.name in seen:
                    raise InvalidValue(f"name {image.name!r} appears twice; the first "
                                       "entry is kept")
        except DatasetError as exc:
            if strict:
                raise
            session.skipped.append(str(exc))
            continue
        seen.add(image.name)
        session.entries.append(image)
    slides, skipped = check_slides(document, path, folder, strict)
    session.slides.extend(slides)
    session.skipped.extend(skipped)
    return session


def read_session_file(folder: Path) -> CheckedSession:
    """Read and check ``session.json`` of a session folder.

    Raises
    ------
    DatasetError
        When the folder holds no session, or the file cannot be read or is not one.
    """
    folder = Path(folder)
    path = folder / SESSION_NAME
    if path.is_symlink():
        raise DatasetError(path, "is a symbolic link; a session file must be a real file")
    if not path.is_file():
        raise DatasetError(folder, f"holds no saved session (no {SESSION_NAME})")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    if size > MAX_SESSION_BYTES:
        raise DatasetError(path, f"is {size:,} bytes, larger than any session of "
                           f"{MAX_SESSION_IMAGES:,} images (limit {MAX_SESSION_BYTES:,} "
                           "bytes)")
    return check_session(load_json(path), path, folder)
