"""Open whole-slide images and read regions of them lazily, whatever the format.

Pyramidal TIFF, OME-TIFF, Aperio SVS, Hamamatsu NDPI and the other formats tiffslide
reads go through tiffslide; OpenSlide (an optional extra) takes what tiffslide cannot
read; OME-Zarr image folders and plain TIFF/PNG/JPEG files are read too. Every reader
returns RGB uint8 regions and reads only the tiles a region touches (plain PNG/JPEG files
cannot be read in parts and are decoded once).

Every slide is checked against its header before any pixel is read: the declared level-0
size against the slide limit, the size of the blocks each level is stored in (decoded
whole whatever part of them is read) against the image limit, and, for TIFF files, the
declared tiles against the bytes the file holds.

Modules: ``base`` (what every reader is), ``tiffslide`` and ``openslide`` (one reader a
library), ``factory`` (:func:`open_slide`, which picks the reader and checks the slide);
OME-Zarr folders and plain images are read by :mod:`..array_slides`.
"""

from .base import PAD_VALUE, Level, Slide, SlideError, positive_number
from .factory import SUPPORTED, open_slide
from .openslide import OpenSlideReader
from .tiffslide import TiffSlideReader

__all__ = [
    "PAD_VALUE",
    "SUPPORTED",
    "Level",
    "OpenSlideReader",
    "Slide",
    "SlideError",
    "TiffSlideReader",
    "open_slide",
    "positive_number",
]
