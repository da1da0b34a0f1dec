"""Slides a user should not have handed in: refused with one line when opened, or read
the same way in every tile."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_nuclei.core.slide.pixels import PixelProblem, conversion_of, spatial_index
from napari_nuclei.core.slide.reader import SlideError, open_slide

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(("name", "array", "kwargs", "fragment"), [
    ("two.tif", RNG.integers(0, 255, (64, 64, 2), dtype=np.uint8),
     {"photometric": "minisblack", "planarconfig": "contig"}, "holds 2 channels per pixel"),
    ("five.tif", RNG.integers(0, 255, (64, 64, 5), dtype=np.uint8),
     {"photometric": "minisblack", "planarconfig": "contig"}, "holds 5 channels per pixel"),
    ("planes.tif", RNG.integers(0, 255, (5, 64, 64), dtype=np.uint8),
     {"photometric": "minisblack"}, "stack of 5 planes along axis Q"),
    ("series.tif", RNG.integers(0, 255, (2, 3, 1, 32, 32), dtype=np.uint8),
     {"imagej": True, "metadata": {"axes": "TZCYX"}}, "stack of 2 planes along axis T"),
    ("mask.tif", RNG.random((64, 64)) > 0.5, {}, "1-bit pixels"),
    ("nan.tif", np.full((64, 64, 3), np.nan, np.float32), {"photometric": "rgb"},
     "NaN or infinite"),
    ("empty.tif", np.zeros((0, 0, 3), np.uint8), {}, "holds no pixels"),
])
def test_pixels_that_are_no_stained_image_are_refused(tmp_path, name, array, kwargs,
                                                      fragment):
    path = tmp_path / name
    with pytest.warns(UserWarning) if array.size == 0 else _nothing():
        tifffile.imwrite(path, array, **kwargs)
    with pytest.raises(SlideError, match=fragment) as refused_slide:
        open_slide(path)
    assert str(path) in str(refused_slide.value)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_sixteen_bit_slide_is_scaled_the_same_in_every_tile(tmp_path):
    # A bright left half and a dim right half: stretched tile by tile, the dim half would
    # be brightened to full contrast and the seam between tiles would show.
    image = np.zeros((256, 512, 3), np.uint16)
    image[:, :256] = RNG.integers(20000, 60000, (256, 256, 3))
    image[:, 256:] = RNG.integers(1000, 3000, (256, 256, 3))
    path = tmp_path / "sixteen.tif"
    tifffile.imwrite(path, image, photometric="rgb", tile=(128, 128))
    with open_slide(path) as slide:
        whole = slide.read(0, 0, 0, 512, 256)
        dim_alone = slide.read(0, 256, 0, 256, 256)
    np.testing.assert_array_equal(dim_alone, whole[:, 256:])
    assert dim_alone.max() < 30 < whole[:, :256].mean()


def test_palette_slide_is_read_in_its_colours(tmp_path):
    indices = np.tile(np.arange(4, dtype=np.uint8), (32, 8))
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :4] = np.array([[65535, 0, 0, 65535], [0, 65535, 0, 65535],
                                [0, 0, 65535, 0]])
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, indices, photometric="palette", colormap=colormap)
    with open_slide(path) as slide:
        rgb = slide.read(0, 0, 0, 4, 1)[0]
    np.testing.assert_array_equal(rgb, [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]])


def test_conversion_rules():
    with pytest.raises(PixelProblem, match="complex"):
        conversion_of(np.complex64, 1, sample=lambda: np.zeros((2, 2), np.complex64))
    with pytest.raises(PixelProblem, match="holds 2 channels"):
        conversion_of(np.uint8, 2)
    grey = conversion_of(np.uint8, 1)  # 8-bit: no sample is read
    assert grey(np.full((2, 3), 7, np.uint8)).shape == (2, 3, 3)
    floats = conversion_of(np.float32, 1, sample=lambda: np.linspace(0, 1, 1000))
    # A NaN met later, in a tile the sample did not see, becomes the low end, not garbage.
    converted = floats(np.array([[np.nan, 0.5, 2.0]], np.float32))
    assert converted[0, :, 0].tolist() == [0, 128, 255]
    assert spatial_index("CYX", (3, 8, 8)) == ((slice(None),) * 3, "cyx")
    assert spatial_index("TCZYX", (1, 3, 1, 8, 8))[1] == "cyx"


def test_declared_size_beyond_the_stored_tiles_is_refused(tmp_path):
    path = tmp_path / "claims_more.tif"
    tifffile.imwrite(path, RNG.integers(0, 255, (256, 256, 3), dtype=np.uint8),
                     photometric="rgb", tile=(128, 128))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["ImageWidth"].overwrite(200_000)
        tif.pages[0].tags["ImageLength"].overwrite(200_000)
    with pytest.raises(SlideError, match="declares 200000x200000 pixels in 2442969 tiles "
                       "but the file holds 4: it is truncated or damaged"):
        open_slide(path)


def test_undecodable_tile_is_named_by_its_own_position(tmp_path):
    image = RNG.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)
    path = tmp_path / "damaged.tif"
    tifffile.imwrite(path, image, photometric="rgb", tile=(128, 128), compression="jpeg")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:  # row 6, column 6 of the 8x8 tiles
        offset, count = tif.pages[0].dataoffsets[54], tif.pages[0].databytecounts[54]
    data[offset : offset + count] = b"\x00" * count
    path.write_bytes(bytes(data))
    with open_slide(path) as slide:
        slide.read(0, 0, 0, 700, 700)
        # A region starting two tiles before the damaged one.
        with pytest.raises(SlideError, match=r"the tile at x=768, y=768 \(level 0\) cannot"):
            slide.read(0, 600, 600, 300, 300)
