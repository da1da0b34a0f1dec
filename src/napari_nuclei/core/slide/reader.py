"""The slide readers, now in :mod:`.readers` (base, tiffslide, openslide, factory);
their names are importable from here too."""

from .readers import (  # noqa: F401
    PAD_VALUE,
    SUPPORTED,
    Level,
    OpenSlideReader,
    Slide,
    SlideError,
    TiffSlideReader,
    open_slide,
    positive_number,
)
