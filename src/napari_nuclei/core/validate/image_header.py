"""Image sizes from file headers: known before any pixel is decoded.

A file of a few hundred bytes can declare an image of billions of pixels; reading the
header first lets such files be refused, and files of the wrong size be reported,
without allocating their pixels.
"""

from __future__ import annotations

import struct
from pathlib import Path

_TIFF_SUFFIXES = (".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (every coding process), which carry the image size.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_shape(path: Path) -> tuple[int, ...] | None:
    """The array shape a file announces, or None when its header cannot tell.

    TIFF files give their first series' full shape (pages and channels included);
    PNG, BMP and JPEG give ``(height, width)``. Broken headers return None: the decoder
    then reports the file as it would any unreadable one.
    """
    suffix = path.suffix.lower()
    if suffix in _TIFF_SUFFIXES:
        return _tiff_shape(path)
    with open(path, "rb") as fh:
        head = fh.read(32)
        if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return height, width
        if head.startswith(b"BM") and len(head) >= 26:
            return _bmp_shape(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_shape(head + fh.read())
    return None


def _tiff_shape(path: Path) -> tuple[int, ...] | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return tuple(int(n) for n in tif.series[0].shape) if tif.series else None
    except Exception:  # tifffile raises many types for broken files; the decoder reports
        return None


def _bmp_shape(head: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(height), abs(width)  # negative height: rows stored top-down


def _jpeg_shape(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return height, width
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None
