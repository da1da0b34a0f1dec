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
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from ..errors import DatasetError
from . import fields
from .fields import InvalidValue, describe, in_file
from .json_input import load_json
from .limits import check_pixels
from .paths import relative_name

SESSION_NAME = "session.json"
VERSION = 1
FOLDER_FIELDS = ("train_dir", "test_dir", "gt_dir", "run_dir", "checkpoint")
IMAGE_KEYS = ("name", "image_path", "score_thresh", "prediction", "labels")
# A dock session holds the images someone predicted and corrected by hand: hundreds,
# rarely thousands. Ten thousand keeps restoring (and the autosave that rewrites every
# entry) to seconds, where a file of 200,000 entries would take minutes.
MAX_SESSION_IMAGES = 10_000
# Slides opened in one session, and regions predicted on one slide: a person opens a few
# slides and predicts tens of regions of each; these caps keep a hostile file small.
MAX_SESSION_SLIDES = 1_000
MAX_SLIDE_OUTPUTS = 10_000
SLIDE_KEYS = ("slide", "outputs", "window")
# Level-0 coordinates: slides are at most a few hundred thousand pixels a side.
MAX_SLIDE_COORDINATE = 2**31 - 1
# Entries with ordinary paths take a few hundred bytes, so a session of
# MAX_SESSION_IMAGES stays far below this; a larger file is refused before parsing.
MAX_SESSION_BYTES = 64 * 2**20
# Longest path the kernel accepts (PATH_MAX); longer ones can only be hostile.
MAX_PATH_CHARS = 4096
# The longest file or folder name common file systems allow (NAME_MAX), in bytes.
MAX_COMPONENT_BYTES = 255
# ``<name>.npz`` and ``<name>.tif`` must fit a file name of 255 bytes (NAME_MAX).
MAX_NAME_BYTES = 255 - len(".npz")

PREDICTION_MEMBERS = ("size", "scores", "tops", "lefts", "shapes", "bits", "hit_cap")
# Mask crops are tight boxes of nuclei that seldom overlap; low-scoring duplicates
# overlap the nuclei they repeat. Their areas add up to a small multiple of the image,
# so a file declaring more than this many times its image's pixels is not a prediction.
MAX_CROP_COVER = 16
# Room for a .npy header (numpy refuses headers above 10,000 bytes by default).
_NPY_HEADER_BYTES = 10_240


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


def plain_name(value, name: str = "name") -> str:
    """A plain file name: no folder separator, not ``.`` or ``..``, no control character.

    Raises
    ------
    InvalidValue
        Saying what is wrong with ``value``.
    """
    value = fields.text(value, name)
    shown = value if len(value) <= 60 else value[:57] + "..."
    if any(_breaks_lines(c) for c in value):
        raise InvalidValue(f"{name} {shown!r} holds control characters")
    # Both separators: a session written on one system is restored on another.
    if "/" in value or "\\" in value or PureWindowsPath(value).drive:
        raise InvalidValue(f"{name} {shown!r} is a path; it must be a plain file name")
    if value in (".", ".."):
        raise InvalidValue(f"{name} {shown!r} is not a file name")
    try:
        size = len(os.fsencode(value))
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} {shown!r} is not a valid file name here") from None
    if size > MAX_NAME_BYTES:
        raise InvalidValue(f"{name} is {size} bytes long, longer than the {MAX_NAME_BYTES} "
                           "a file name allows")
    return value


def _breaks_lines(char: str) -> bool:
    # Names are shown in one-line messages: C0 and C1 controls, DEL, line separators.
    return ord(char) < 32 or 127 <= ord(char) < 160 or char in "\u2028\u2029"


def file_inside(folder: Path, value, name: str) -> Path:
    """``folder / value`` for a relative name that stays inside ``folder`` and passes
    through no symbolic link (a link could lead anywhere, now or once the folder is
    copied).

    Raises
    ------
    InvalidValue
        For a wrong type, an absolute or escaping name, or a link on the way.
    """
    # The length first: the messages below quote the value.
    if isinstance(value, str) and len(value) > MAX_PATH_CHARS:
        raise InvalidValue(f"{name} is {len(value):,} characters long, longer than any path")
    value = relative_name(value, name)
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if not parts:
        raise InvalidValue(f"{name} {value!r} names no file")
    if "\\" in value or ".." in parts or PureWindowsPath(value).drive:
        raise InvalidValue(f"{name} {value!r} must name a file below the session folder "
                           "with '/' separators and no '..'")
    if any(len(os.fsencode(part)) > MAX_COMPONENT_BYTES for part in parts):
        raise InvalidValue(f"{name} {value[:60]!r}… has a part longer than "
                           f"{MAX_COMPONENT_BYTES} bytes: no file system holds such a file")
    # Relative, without '..' and through no link: the name cannot lead out of the folder,
    # so no path needs resolving (os.path on strings: sessions list thousands of names).
    current = os.fspath(folder)
    for part in parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise InvalidValue(f"{name} {value!r} passes through the symbolic link "
                               f"{part!r}; session files must be real files")
    return Path(folder, *parts)


def _optional_path(value, name: str) -> Path | None:
    """A path string (any folder: it is only read) or null; empty means null."""
    if value is None or value == "":
        return None
    value = fields.text(value, name)
    if len(value) > MAX_PATH_CHARS:
        raise InvalidValue(f"{name} is {len(value):,} characters long, longer than any path")
    if any(_breaks_lines(c) for c in value):
        raise InvalidValue(f"{name} {value[:60]!r} holds control characters")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} {value[:60]!r} is not a valid path here") from None
    return Path(value)


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
        _optional_path(entry.get("image_path"), "image_path"),
        _threshold(entry["score_thresh"], "score_thresh"),
        file_inside(folder, entry["prediction"], "prediction"),
        None if labels is None else file_inside(folder, labels, "labels"),
    )


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
    slide = _optional_path(entry["slide"], "slide")
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


def _check_slides(document, path: Path, folder: Path, session: CheckedSession,
                  strict: bool) -> None:
    with in_file(path):
        slides = fields.array(document.get("slides", []), "slides")
        if len(slides) > MAX_SESSION_SLIDES:
            raise InvalidValue(f"lists {len(slides):,} slides, more than the "
                               f"{MAX_SESSION_SLIDES:,} a session may hold")
    for number, entry in enumerate(slides):
        try:
            with in_file(path, f"slide {number}"):
                session.slides.append(check_slide_entry(entry, folder))
        except DatasetError as exc:
            if strict:
                raise
            session.skipped.append(str(exc))


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
        checked = {key: _optional_path(document.get(key), key) for key in FOLDER_FIELDS}
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
    _check_slides(document, path, folder, session, strict)
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


# -- predictions/<name>.npz ---------------------------------------------------------------
@dataclass(frozen=True)
class PredictionArrays:
    """The checked content of a prediction file.

    Attributes
    ----------
    height, width : int
        The image size.
    scores : numpy.ndarray
        ``(N,)`` float32, finite, in [0, 1].
    crops : list of tuple
        ``(top, left, mask)`` per nucleus, each mask a bool array inside the image.
    hit_cap : bool
        The network returned as many detections as its cap.
    """

    height: int
    width: int
    scores: np.ndarray
    crops: list
    hit_cap: bool


_KINDS = {"size": "iu", "scores": "f", "tops": "iu", "lefts": "iu", "shapes": "iu",
          "bits": "u", "hit_cap": "biu"}
# unpackbits takes bytes only.
_ITEMSIZE = {"bits": 1}


def _npy_header(archive: zipfile.ZipFile, member: str, limit: int):
    """Shape and dtype a member declares, read from its header alone.

    ``limit`` bounds the member's declared uncompressed size, so that neither a zip
    bomb nor a header announcing a huge array is ever decompressed or allocated.
    """
    try:
        info = archive.getinfo(f"{member}.npy")
    except KeyError:
        raise InvalidValue(f"lacks the array {member!r}") from None
    if info.file_size > _NPY_HEADER_BYTES + limit:
        raise InvalidValue(f"array {member!r} unpacks to {info.file_size:,} bytes, more "
                           "than its image allows")
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise InvalidValue(f"array {member!r} is in .npy format {version}, which "
                               "napari-nuclei does not write")
    if (dtype.hasobject or dtype.names is not None or dtype.shape != ()
            or dtype.kind not in _KINDS[member] or dtype.itemsize > _ITEMSIZE.get(member, 8)):
        raise InvalidValue(f"array {member!r} holds {dtype}, not the numbers it should")
    if math.prod(shape) * dtype.itemsize > limit:
        raise InvalidValue(f"array {member!r} declares {shape}, more than its image allows")
    return info, tuple(int(n) for n in shape)


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _check_shape(member: str, shape: tuple, wanted: tuple) -> None:
    if shape != wanted:
        raise InvalidValue(f"array {member!r} has shape {shape}, not {wanted}")


def _within(values: np.ndarray, low: int, high: int, what: str) -> None:
    # Compared in the stored dtype, so unsigned values beyond int64 are not wrapped.
    if values.size and (values.min() < low or values.max() > high):
        raise InvalidValue(f"{what} reach outside [{low}, {high}]")


def _check_arrays(archive: zipfile.ZipFile, size: tuple[int, int] | None) -> PredictionArrays:
    info, shape = _npy_header(archive, "size", 64)
    _check_shape("size", shape, (2,))
    declared = _read(archive, info)
    _within(declared, 1, 2**31 - 1, "image height and width")
    height, width = (int(v) for v in declared)
    check_pixels(height, width, "declared image")
    if size is not None and (height, width) != tuple(size):
        raise InvalidValue(f"is of a {height}x{width} image, not of the {size[0]}x{size[1]} "
                           "image it belongs to")
    pixels = height * width
    # No nucleus count above one per pixel, no array above a few bytes per pixel.
    count_limit = 8 * pixels
    headers = {"hit_cap": _npy_header(archive, "hit_cap", 8),
               "bits": _npy_header(archive, "bits", MAX_CROP_COVER * pixels // 8 + 1)}
    for member in ("scores", "tops", "lefts"):
        headers[member] = _npy_header(archive, member, count_limit)
    headers["shapes"] = _npy_header(archive, "shapes", 2 * count_limit)
    for member in ("scores", "bits"):
        if len(headers[member][1]) != 1:
            raise InvalidValue(f"array {member!r} has shape {headers[member][1]}, not one "
                               "dimension")
    count = headers["scores"][1][0]
    for member in ("tops", "lefts"):
        _check_shape(member, headers[member][1], (count,))
    _check_shape("shapes", headers["shapes"][1], (count, 2))
    _check_shape("hit_cap", headers["hit_cap"][1], ())

    hit_cap = _read(archive, headers["hit_cap"][0])
    _within(hit_cap.reshape(1), 0, 1, "hit_cap")
    scores = _read(archive, headers["scores"][0])
    if scores.size and not (np.all(np.isfinite(scores)) and scores.min() >= 0
                            and scores.max() <= 1):
        raise InvalidValue("scores must be finite numbers in [0, 1]")
    tops, lefts = (_read(archive, headers[m][0]) for m in ("tops", "lefts"))
    shapes = _read(archive, headers["shapes"][0])
    _within(tops, 0, height, "crop tops")
    _within(lefts, 0, width, "crop lefts")
    _within(shapes[:, 0], 0, height, "crop heights")
    _within(shapes[:, 1], 0, width, "crop widths")
    tops, lefts, shapes = (a.astype(np.int64) for a in (tops, lefts, shapes))
    if np.any(tops + shapes[:, 0] > height) or np.any(lefts + shapes[:, 1] > width):
        raise InvalidValue(f"a mask crop reaches outside the {height}x{width} image")
    areas = shapes[:, 0] * shapes[:, 1]
    total = int(areas.sum())
    if total > MAX_CROP_COVER * pixels:
        raise InvalidValue(f"mask crops cover {total:,} pixels, more than {MAX_CROP_COVER} "
                           f"times the {height}x{width} image")
    if headers["bits"][1][0] != (total + 7) // 8:
        raise InvalidValue(f"holds {headers['bits'][1][0]:,} bytes of mask bits; its crops "
                           f"need {(total + 7) // 8:,}")
    bits = _read(archive, headers["bits"][0])
    # unpackbits gives 0/1 bytes: viewed as bool without a second copy.
    flat = np.unpackbits(bits, count=total).view(bool)
    ends = np.cumsum(areas)
    crops = [(int(top), int(left), flat[end - h * w : end].reshape(h, w))
             for top, left, (h, w), end in zip(tops, lefts, shapes.tolist(), ends.tolist(),
                                               strict=True)]
    return PredictionArrays(height, width, scores.astype(np.float32), crops,
                            bool(hit_cap))


def read_prediction_arrays(path: Path, size: tuple[int, int] | None = None
                           ) -> PredictionArrays:
    """Read a prediction file (``.npz``, no pickle), every declared size checked first.

    Parameters
    ----------
    path : Path
        The file; a symbolic link is refused.
    size : tuple of int, optional
        ``(height, width)`` of the image it belongs to, when known.

    Returns
    -------
    PredictionArrays
        Image size, scores, mask crops and the cap flag.

    Raises
    ------
    DatasetError
        Naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise DatasetError(path, "no such file") from None
    except OSError as exc:
        problem = ("is a symbolic link; session files must be real files"
                   if path.is_symlink() else f"cannot be read ({exc.strerror or exc})")
        raise DatasetError(path, problem) from None
    try:
        with open(fd, "rb") as fh, zipfile.ZipFile(fh) as archive, in_file(path):
            return _check_arrays(archive, size)
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError(path, "is too large to load into memory") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError,
            KeyError, NotImplementedError, RecursionError) as exc:
        # BadZipFile: not a zip or a CRC mismatch; ValueError and TypeError: a broken
        # .npy header or data cut short; NotImplementedError: a compression zipfile
        # cannot undo.
        raise DatasetError(path, f"is not a saved prediction ({exc})") from None
