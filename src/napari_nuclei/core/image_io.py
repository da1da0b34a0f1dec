"""Read images, nucleus masks and label images with one clear error per bad file.

Conventions
-----------
- Images come back as ``(H, W)`` grayscale or ``(H, W, 3)`` RGB in their stored dtype
  (8- or 16-bit); an alpha channel is dropped.
- Masks come back as ``(H, W)`` boolean arrays: **any non-zero value in any colour
  channel is foreground**, so 0/255, 0/1, 16-bit, RGB-saved and anti-aliased masks all
  work. An alpha channel only counts where it varies (an opaque one says nothing).
- Label images come back as ``(H, W)`` int32, 0 for background.
- Before any pixel is decoded, the size the file's header declares is checked against
  the pixel limit (:func:`~napari_nuclei.core.validate.max_pixels`), so a small file
  declaring a huge image is refused instead of exhausting memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DatasetError
from .validate import InvalidValue, check_pixels, max_pixels
from .validate.image_header import declared_shape

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_image_file(path: Path) -> bool:
    """Return True for a visible file with an image suffix (``.DS_Store`` and notes are not)."""
    return (
        path.is_file()
        and not path.name.startswith(".")
        and path.suffix.lower() in IMAGE_SUFFIXES
    )


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def _spatial(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """``(height, width)`` of an array shape as :func:`_decode` will return it."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 3:
        if shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):  # channel-first
            return shape[1], shape[2]
        if shape[2] in (1, 2, 3, 4):  # channel-last
            return shape[0], shape[1]
    return None  # a stack of pages: decoded, then refused as not 2D


def _checked_header(path: Path) -> tuple[int, int] | None:
    """The image size its header declares, refused above the pixel limit."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        shape = declared_shape(path)
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    if shape is None:
        return None
    size = _spatial(shape)
    try:
        if size is not None:
            check_pixels(*size)
        if int(np.prod(shape, dtype=object)) > 4 * max_pixels():
            raise InvalidValue(f"holds an array of shape {shape}, more values than the "
                               f"limit of {max_pixels():,} pixels allows (raise it with "
                               "--max-pixels)")
    except InvalidValue as exc:
        raise DatasetError(path, str(exc)) from None
    return size


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header when it can tell.

    Raises
    ------
    DatasetError
        For a missing or unreadable file, or one above the pixel limit.
    """
    path = Path(path)
    size = _checked_header(path)
    return size if size is not None else _decode(path).shape[:2]


def _decode(path: Path) -> np.ndarray:
    """Decode any supported file to an array in its stored dtype and channels."""
    import cv2

    _checked_header(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        import tifffile

        try:
            array = tifffile.imread(path)
        except Exception as exc:  # tifffile raises many types for broken files
            raise DatasetError(path, f"unreadable TIFF ({exc})") from None
    else:
        # imdecode on bytes (not imread) so that non-ASCII paths work too.
        data = np.fromfile(path, dtype=np.uint8)
        if data.size == 0:
            raise DatasetError(path, "empty file (0 bytes)")
        if path.suffix.lower() == ".png":
            if bytes(data[:8]) != _PNG_SIGNATURE:
                raise DatasetError(path, "not a PNG file (wrong signature)")
            if not _png_is_complete(data):
                raise DatasetError(path, "truncated PNG (the file ends before its IEND chunk)")
        array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if array is None:
            raise DatasetError(path, "unreadable image (not a valid PNG/JPEG/BMP)")
        if array.ndim == 3 and array.shape[2] >= 3:
            # OpenCV decodes to BGR(A); keep RGB order like every other reader.
            array = array[..., [2, 1, 0]] if array.shape[2] == 3 else array[..., [2, 1, 0, 3]]
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channel-first TIFF
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise DatasetError(path, f"expected a 2D image, got an array of shape {array.shape}")
    try:  # formats whose header could not be read are checked once decoded
        check_pixels(*array.shape[:2])
    except InvalidValue as exc:
        raise DatasetError(path, str(exc)) from None
    return array


def _png_is_complete(data: np.ndarray) -> bool:
    """A PNG written to the end finishes with an IEND chunk; a cut-off copy does not.

    libpng decodes truncated files partially and only prints a warning, so check the
    12-byte trailer (length 0, ``IEND``, CRC) ourselves.
    """
    return data.size >= 20 and bytes(data[-12:-4]) == b"\x00\x00\x00\x00IEND"


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as grayscale ``(H, W)`` or RGB ``(H, W, 3)``, dropping alpha.

    Parameters
    ----------
    path : str or Path
        PNG, TIFF, JPEG or BMP file, 8- or 16-bit.

    Returns
    -------
    numpy.ndarray
        The pixels in their stored dtype.

    Raises
    ------
    DatasetError
        If the file is missing, unreadable, truncated or not a 2D image.
    """
    path = Path(path)
    array = _decode(path)
    if array.ndim == 3:
        if array.shape[2] == 4:
            array = array[..., :3]
        elif array.shape[2] == 2:  # gray + alpha
            array = array[..., 0]
        elif array.shape[2] != 3:
            raise DatasetError(path, f"unsupported number of channels: {array.shape[2]}")
    return np.ascontiguousarray(array)


def read_mask(path: str | Path) -> np.ndarray:
    """Read one nucleus mask as a boolean array; any non-zero value is foreground.

    The colour (or gray) channels decide; an alpha channel is ignored when it is the
    same everywhere (an opaque RGBA mask would otherwise be all foreground). Where alpha
    varies it marks painted pixels: foreground is colour and alpha both non-zero, or
    alpha alone when the colour is blank everywhere (black shapes on transparency).

    Parameters
    ----------
    path : str or Path
        A mask image (0/255, 0/1, 16-bit, RGB(A)-saved or anti-aliased).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool.
    """
    array = _decode(Path(path))
    if array.ndim == 2:
        return array != 0
    if array.shape[2] not in (2, 4):
        return array.any(axis=2)
    colour = array[..., :-1].any(axis=2)
    alpha = array[..., -1]
    if alpha.min() == alpha.max():
        return colour
    return colour & (alpha != 0) if colour.any() else alpha != 0


def read_labels(path: str | Path) -> np.ndarray:
    """Read an instance label image: 0 is background, each other value one nucleus.

    Parameters
    ----------
    path : str or Path
        Single-channel integer TIFF or PNG.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int32.

    Raises
    ------
    DatasetError
        For multi-channel, floating-point or negative labels.
    """
    path = Path(path)
    array = _decode(path)
    if array.ndim != 2:
        raise DatasetError(path, f"a label image must be single-channel, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if (np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array))
                and np.all(np.abs(array) <= np.iinfo(np.int32).max)
                and np.all(np.mod(array, 1) == 0)):
            array = array.astype(np.int64)
        else:
            raise DatasetError(path, f"a label image must hold integers, got {array.dtype}")
    if array.size and array.min() < 0:
        raise DatasetError(path, "a label image must not hold negative values")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise DatasetError(path, "label values exceed the int32 range")
    return array.astype(np.int32, copy=False)
