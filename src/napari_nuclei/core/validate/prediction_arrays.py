"""A saved session's ``predictions/<name>.npz`` files, read without pickles.

A prediction file declares its image size and the size of every mask crop; a file of a
kilobyte could ask for gigabytes, so every size is checked from the headers before
anything is decompressed or allocated.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .fields import InvalidValue, in_file
from .limits import check_pixels

PREDICTION_MEMBERS = ("size", "scores", "tops", "lefts", "shapes", "bits", "hit_cap")
# Mask crops are tight boxes of nuclei that seldom overlap; low-scoring duplicates
# overlap the nuclei they repeat. Their areas add up to a small multiple of the image,
# so a file declaring more than this many times its image's pixels is not a prediction.
MAX_CROP_COVER = 16
# Room for a .npy header (numpy refuses headers above 10,000 bytes by default).
_NPY_HEADER_BYTES = 10_240


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
