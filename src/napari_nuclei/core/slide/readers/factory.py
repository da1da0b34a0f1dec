"""Open a slide with the first reader that understands it, whatever the format, and
check it before any region is read: the blocks each level is stored in against the image
limit, and, from a sample of its pixels, how every region becomes RGB."""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from ...validate.limits import max_pixels
from ..pixels import PixelProblem, conversion_of
from .base import Slide, SlideError
from .openslide import OpenSlideReader
from .tiffslide import TiffSlideReader

SUPPORTED = ("pyramidal TIFF/OME-TIFF, Aperio SVS, Hamamatsu NDPI, Leica SCN and other "
             "formats tiffslide reads; other OpenSlide formats (MIRAX, Ventana, ...) when "
             "openslide-python is installed; OME-Zarr image folders; plain TIFF, PNG or JPEG")
_PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def open_slide(path: str | Path, backend: str = "auto") -> Slide:
    """Open a slide for lazy reading.

    Parameters
    ----------
    path : str or Path
        A slide file, an OME-Zarr folder, or a plain TIFF/PNG/JPEG image.
    backend : str
        ``auto`` (tiffslide, then OpenSlide, then the plain readers), ``tiffslide``,
        ``openslide``, ``ome-zarr`` or ``image``.

    Returns
    -------
    Slide

    Raises
    ------
    SlideError
        When the path does not exist or is not a slide any reader understands.
    """
    from ..array_slides import open_ome_zarr, open_plain_image, open_plain_tiff

    path = Path(path).expanduser()
    if not path.exists():
        raise SlideError(path, "no such slide file or folder")
    suffix = path.suffix.lower()
    openers = []
    if path.is_dir() or backend == "ome-zarr":
        if not ((path / "zarr.json").exists() or (path / ".zattrs").exists()):
            raise SlideError(path, f"is a folder but not an OME-Zarr image; supported: "
                             f"{SUPPORTED}")
        openers = [open_ome_zarr]
    elif backend in ("auto", "image") and suffix in _PLAIN_SUFFIXES:
        openers = [open_plain_image]
    elif backend == "auto":
        openers = [TiffSlideReader, OpenSlideReader, open_plain_tiff]
    else:
        openers = {"tiffslide": [TiffSlideReader], "openslide": [OpenSlideReader],
                   "image": [open_plain_tiff]}[backend]
    for opener in openers:
        try:
            slide = opener(path)
        except ImportError:
            continue  # an optional reader that is not installed
        except InputError:
            raise
        except PixelProblem as exc:
            raise SlideError(path, str(exc)) from None
        except Exception:  # each library raises its own types for foreign files
            continue
        if slide.width > 0 and slide.height > 0:
            _check_blocks(slide)
            return _with_conversion(slide)
        slide.close()
    raise SlideError(path, f"is not a slide or image that can be read; supported: {SUPPORTED}")


def _check_blocks(slide: Slide) -> None:
    """Refuse a slide with a level stored in blocks larger than the image limit: reading
    any part of such a level decodes a whole block (a one-strip TIFF: the whole level).

    The smallest level is checked first: the overview is read from it or a larger one.
    """
    limit = max_pixels()
    blocks = slide.block_sizes()
    smallest = len(slide.levels) - 1
    for level in (smallest, *range(smallest)):
        if level >= len(blocks) or blocks[level] is None:
            continue
        size = slide.levels[level]
        width, height = min(blocks[level][0], size.width), min(blocks[level][1], size.height)
        if width * height <= limit:
            continue
        blocks_of = ("in one block" if (width, height) == (size.width, size.height)
                     else f"in blocks of {width}x{height} pixels")
        slide.close()
        if level == smallest:
            problem = (f"its smallest level, {level} ({size.width}x{size.height} pixels), is "
                       f"stored {blocks_of} decoded whole: too large to hold as an overview "
                       f"(the image limit is {limit:,} pixels; raise it with --max-pixels)")
        else:
            problem = (f"level {level} ({size.width}x{size.height} pixels) is stored "
                       f"{blocks_of} decoded whole: reading any part of it holds more than "
                       f"the image limit of {limit:,} pixels (raise it with --max-pixels)")
        raise SlideError(slide.path, problem)


def _with_conversion(slide: Slide) -> Slide:
    """Decide, from a sample of its pixels, how every region of the slide becomes RGB."""
    try:
        slide.conversion = conversion_of(*slide.stored(), slide.palette(), slide.sample)
    except PixelProblem as exc:
        slide.close()
        raise SlideError(slide.path, str(exc)) from None
    except BaseException:
        slide.close()
        raise
    return slide
