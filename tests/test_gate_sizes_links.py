"""Slides refused by the size their header declares, and symbolic links in datasets.

A file of a few hundred kilobytes can declare a slide of a million pixels a side; it is
refused from its header, before a buffer of that size is asked for. Links in a dataset
may lead elsewhere inside it, never out of it, nowhere or round in a loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_masks, write_dsb_sample, write_png
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.slide import tissue
from napari_nuclei.core.slide.reader import SlideError, open_slide
from napari_nuclei.core.validate.limits import (
    DEFAULT_MAX_SLIDE_PIXELS,
    MAX_SLIDE_PIXELS_ENV,
    check_slide_pixels,
)

CLI = [sys.executable, "-m", "napari_nuclei.cli"]
MILLION = 1_000_000


def declared_tiff(path: Path, sizes, tile: int = 1024, mpp: float | None = None) -> Path:
    """A tiled TIFF whose levels declare ``sizes`` (``(width, height)``, level 0 first)
    while every tile of every level is the same stored tile: the file stays small
    whatever the sizes, and is complete (every tile is present and decodes). Levels are
    found as a pyramid when each is a half, a third or a quarter of the one before."""
    pixels = np.empty((tile, tile, 3), np.uint8)
    pixels[:] = (200, 120, 170)  # stained (saturated), and compressed to almost nothing
    pixels[: tile // 2] = 245  # and background
    with tifffile.TiffWriter(path, bigtiff=True) as tiff:
        for level in range(len(sizes)):
            extra = {}
            if mpp is not None:
                per_cm = 1e4 / (mpp * sizes[0][0] / sizes[level][0])
                extra = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
            tiff.write(pixels, tile=(tile, tile), photometric="rgb", compression="zlib",
                       subfiletype=0 if level == 0 else 1, metadata=None, **extra)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page, (width, height) in zip(tif.pages, sizes, strict=True):
            offset, count = page.dataoffsets[0], page.databytecounts[0]
            n = -(-width // tile) * -(-height // tile)
            page.tags["ImageWidth"].overwrite(width)
            page.tags["ImageLength"].overwrite(height)
            page.tags["TileOffsets"].overwrite([offset] * n)
            page.tags["TileByteCounts"].overwrite([count] * n)
    return path


def limited_python(code: str, memory_mb: int = 1024) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python whose address space is capped: asking for a buffer sized
    by a huge declared slide fails there with MemoryError instead of succeeding."""
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({memory_mb} << 20, {memory_mb} << 20))
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def million_slide(tmp_path_factory) -> Path:
    """A slide of well under a megabyte declaring 1,000,000 x 1,000,000 pixels."""
    path = tmp_path_factory.mktemp("huge") / "million.tif"
    declared_tiff(path, [(MILLION, MILLION)], tile=4096)
    assert path.stat().st_size < 2 << 20
    return path


# -- slides refused by their declared size -----------------------------------------------


def test_slide_declaring_more_than_the_limit_is_refused_before_any_allocation(million_slide):
    # Opened and then given an overview, as a prediction does: with 1 GiB of address
    # space, a 5.7 GiB strip of the level would fail as MemoryError.
    result = limited_python(f"""
        from napari_nuclei.core.errors import InputError
        from napari_nuclei.core.slide.reader import open_slide
        from napari_nuclei.core.slide.tissue import make_overview
        try:
            slide = open_slide({str(million_slide)!r})
            make_overview(slide, slide.mpp)
        except InputError as exc:
            print(exc)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{million_slide}: declares 1000000x1000000 pixels (width x height) at level 0, "
        f"more than the slide limit of {DEFAULT_MAX_SLIDE_PIXELS:,} pixels (raise it with "
        f"--max-slide-pixels or {MAX_SLIDE_PIXELS_ENV})"]
    assert "MemoryError" not in result.stdout + result.stderr


def test_napari_open_path_gets_the_same_line(million_slide):
    from napari_nuclei.core.slide.lazy import slide_layer_data

    with pytest.raises(SlideError, match=r"declares 1000000x1000000 pixels .* slide limit"):
        slide_layer_data(million_slide)


def test_every_reader_refuses_the_declared_size(million_slide):
    for backend in ("auto", "tiffslide", "image"):
        with pytest.raises(SlideError, match="more than the slide limit") as refused:
            open_slide(million_slide, backend)
        assert str(million_slide) in str(refused.value)


def test_predict_slide_refuses_with_one_line_exit_2_and_writes_nothing(tmp_path,
                                                                      million_slide):
    out = tmp_path / "out"
    model = tmp_path / "model"
    model.mkdir()
    result = subprocess.run([*CLI, "predict-slide", str(million_slide), "--model",
                             str(model), "-o", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(million_slide) in lines[0]
    assert "declares 1000000x1000000 pixels" in lines[0]
    assert f"slide limit of {DEFAULT_MAX_SLIDE_PIXELS:,} pixels" in lines[0]
    assert not out.exists()
    # Raised on the command line, the limit lets the slide through to the next check.
    result = subprocess.run([*CLI, "predict-slide", str(million_slide), "--model",
                             str(model), "-o", str(out), "--max-slide-pixels",
                             str(MILLION * MILLION)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "slide limit" not in result.stderr and str(model) in result.stderr
    assert not out.exists()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(1000, 12_000), step=st.integers(-2, 2))
def test_declared_size_is_refused_exactly_above_the_limit(tmp_path_factory, height, step):
    limit = 54_321_987
    width = max(1, limit // height + step)
    path = declared_tiff(tmp_path_factory.mktemp("around") / "slide.tif", [(width, height)])
    with mock.patch.dict(os.environ, {MAX_SLIDE_PIXELS_ENV: str(limit)}):
        if width * height > limit:
            with pytest.raises(SlideError, match=f"declares {width}x{height} pixels .* "
                               f"limit of {limit:,} pixels"):
                open_slide(path)
        else:
            with open_slide(path) as slide:
                assert (slide.width, slide.height) == (width, height)


@given(width=st.integers(1, 10**7), height=st.integers(1, 10**7))
def test_default_slide_limit_is_200000_squared(width, height):
    if width * height > 200_000 * 200_000:
        with pytest.raises(ValueError, match="slide limit"):
            check_slide_pixels(width, height)
    else:
        check_slide_pixels(width, height)


def test_overview_of_a_large_allowed_slide_reads_a_small_level_in_blocks(tmp_path,
                                                                        monkeypatch):
    import tracemalloc

    sizes = [(150_000, 120_000), (37_500, 30_000), (9_375, 7_500), (2_344, 1_875),
             (586, 469)]
    path = declared_tiff(tmp_path / "large.tif", sizes, mpp=0.25)
    reads = []
    with open_slide(path) as slide:
        assert [(lv.width, lv.height) for lv in slide.levels] == sizes
        real_read = slide.read
        monkeypatch.setattr(slide, "read", lambda level, x, y, w, h: (
            reads.append((level, w, h)) or real_read(level, x, y, w, h)))
        tracemalloc.start()
        try:
            overview = tissue.make_overview(slide, slide.mpp)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # 8 µm per pixel (32 level-0 pixels) would make 17.6 megapixels: a little coarser,
    # read from level 2 (downsample 16), the smallest level that fine, and no other.
    assert {level for level, _, _ in reads} == {2}
    pixels = overview.rgb.shape[0] * overview.rgb.shape[1]
    assert 0.99 < pixels / tissue.MAX_OVERVIEW_PIXELS <= 1.001  # rounded to whole pixels
    assert 0.4 < overview.tissue.mean() < 0.6
    assert max(w * h for _, w, h in reads) <= 2048 * 8192
    assert peak < 400 << 20


def test_overview_size_is_bounded_from_the_declared_size():
    class Declared:  # only the declared size is looked at
        def __init__(self, width, height):
            self.width, self.height = width, height

    for width, height, mpp in [(200_000, 200_000, 0.25), (200_000, 200_000, None),
                               (40_000_000_000 // 1000, 1000, 0.1), (100_000, 60_000, 0.25)]:
        downsample = tissue.overview_downsample(Declared(width, height), mpp)
        pixels = round(width / downsample) * round(height / downsample)
        assert pixels <= tissue.MAX_OVERVIEW_PIXELS * 1.001
    # An ordinary slide keeps 8 µm per overview pixel.
    assert tissue.overview_downsample(Declared(100_000, 60_000), 0.25) == 32


def test_wide_level_is_read_in_blocks_that_give_the_whole_picture(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (20, 625, 3), dtype=np.uint8).repeat(32, 0).repeat(32, 1)
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, image, photometric="rgb", tile=(256, 256), metadata=None)
    widths = []
    with open_slide(path) as slide:
        real_read = slide.read
        monkeypatch.setattr(slide, "read", lambda level, x, y, w, h: (
            widths.append(w) or real_read(level, x, y, w, h)))
        rgb, downsample = tissue.read_overview(slide, 32.0)
    assert downsample == 32 and max(widths) <= 8192 < image.shape[1]
    np.testing.assert_array_equal(rgb, image[::32, ::32])


# -- declared sizes that the stored data does not hold -----------------------------------


def test_level_in_one_block_larger_than_the_image_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "one_strip.tif"
    tifffile.imwrite(path, np.full((300, 400, 3), 200, np.uint8), photometric="rgb",
                     metadata=None)  # uncompressed: a single strip
    monkeypatch.setenv("NAPARI_NUCLEI_MAX_PIXELS", "10000")
    with pytest.raises(SlideError) as refused:
        open_slide(path)
    assert str(refused.value) == (
        f"{path}: its smallest level, 0 (400x300 pixels), is stored in one block decoded "
        "whole: too large to hold as an overview (the image limit is 10,000 pixels; raise "
        "it with --max-pixels)")


def test_larger_level_in_big_strips_is_refused_by_name(tmp_path, monkeypatch):
    path = tmp_path / "strips.tif"
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(np.full((512, 512, 3), 200, np.uint8), photometric="rgb",
                   rowsperstrip=256, metadata=None)
        tiff.write(np.full((256, 256, 3), 200, np.uint8), photometric="rgb",
                   rowsperstrip=64, subfiletype=1, metadata=None)
    monkeypatch.setenv("NAPARI_NUCLEI_MAX_PIXELS", "200000")
    with open_slide(path) as slide:
        assert len(slide.levels) == 2
    monkeypatch.setenv("NAPARI_NUCLEI_MAX_PIXELS", "100000")
    with pytest.raises(SlideError, match=r"level 0 \(512x512 pixels\) is stored in blocks "
                       r"of 512x256 pixels decoded whole: reading any part of it holds "
                       r"more than the image limit of 100,000 pixels"):
        open_slide(path)


def test_truncated_slide_is_refused_as_truncated(tmp_path):
    path = tmp_path / "cut.tif"
    rng = np.random.default_rng(4)
    tifffile.imwrite(path, rng.integers(0, 255, (512, 512, 3), dtype=np.uint8),
                     photometric="rgb", tile=(128, 128), compression="zlib", metadata=None)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        last = int(np.argmax(np.add(page.dataoffsets, page.databytecounts)))
        end = page.dataoffsets[last] + page.databytecounts[last]
    size = end - 100
    os.truncate(path, size)
    x, y = (last % 4) * 128, (last // 4) * 128
    with pytest.raises(SlideError) as refused:
        open_slide(path)
    assert str(refused.value) == (
        f"{path}: the data of the tile at x={x}, y={y} (level 0) runs to byte {end:,} but "
        f"the file ends at byte {size:,}: it is truncated")


def test_slide_whose_tiles_hold_no_data_is_refused(tmp_path):
    path = tmp_path / "hollow.tif"
    tifffile.imwrite(path, np.zeros((512, 512, 3), np.uint8), photometric="rgb",
                     tile=(256, 256), compression="zlib", metadata=None)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["TileByteCounts"].overwrite([0] * 4)
    with pytest.raises(SlideError, match="level 0 declares 512x512 pixels in 4 tiles but "
                       "none of them holds data"):
        open_slide(path)


# -- symbolic links in datasets ----------------------------------------------------------


@pytest.fixture
def linked_dsb(tmp_path) -> Path:
    """A DSB dataset of two samples beside a file outside it."""
    root = tmp_path / "dsb"
    for number, name in enumerate(("a", "b")):
        write_dsb_sample(root / "train", name, np.full((16, 16), 40 * number, np.uint8),
                         make_masks((16, 16), 2, seed=number))
    write_png(tmp_path / "outside.png", np.zeros((16, 16), np.uint8))
    return root


def _replace_with_link(path: Path, target) -> Path:
    path.unlink()
    path.symlink_to(target)
    return path


def test_sample_image_linked_outside_the_dataset_is_refused(linked_dsb):
    image = _replace_with_link(linked_dsb / "train" / "b" / "images" / "b.png",
                               "../../../../outside.png")
    with pytest.raises(DatasetError) as refused:
        open_dataset(linked_dsb)
    assert str(refused.value) == (
        f"{image}: is a symbolic link to {linked_dsb.parent / 'outside.png'}, outside the "
        f"dataset folder {linked_dsb}: link only to files inside it, or copy them in")


def test_sample_folder_linked_outside_the_dataset_is_refused(linked_dsb, tmp_path):
    write_dsb_sample(tmp_path / "elsewhere", "c", np.zeros((16, 16), np.uint8), [])
    link = linked_dsb / "train" / "c"
    link.symlink_to(tmp_path / "elsewhere" / "c")
    with pytest.raises(DatasetError, match="outside the dataset folder") as refused:
        open_dataset(linked_dsb)
    assert str(refused.value).startswith(f"{link}: is a symbolic link to ")


@pytest.mark.parametrize("where", ["image", "mask", "sample", "masks folder"])
def test_link_loops_are_refused_as_loops(linked_dsb, where):
    sample = linked_dsb / "train" / "b"
    if where == "image":
        link = _replace_with_link(sample / "images" / "b.png", "b.png")
        problem = "is a symbolic link to itself (a loop, never a file)"
    elif where == "mask":  # two links leading to each other: the first listed is named
        (sample / "masks" / "m009.png").symlink_to("m010.png")
        (sample / "masks" / "m010.png").symlink_to("m009.png")
        link = next(p for p in (sample / "masks").iterdir() if p.name >= "m009")
        other = sample / "masks" / ({"m009.png", "m010.png"} - {link.name}).pop()
        problem = (f"is a symbolic link loop: it leads to {other}, which leads back round "
                   "and never to a file")
    elif where == "sample":
        link = linked_dsb / "train" / "c"
        link.symlink_to("c")
        problem = "is a symbolic link to itself (a loop, never a file)"
    else:
        for mask in (sample / "masks").iterdir():
            mask.unlink()
        (sample / "masks").rmdir()
        link = sample / "masks"
        link.symlink_to("masks")
        problem = "is a symbolic link to itself (a loop, never a file)"
    with pytest.raises(DatasetError) as refused:
        open_dataset(linked_dsb)
    assert str(refused.value) == f"{link}: {problem}"


@pytest.mark.parametrize("where", ["image", "mask"])
def test_dangling_links_are_refused_as_dangling(linked_dsb, where):
    sample = linked_dsb / "train" / "a"
    if where == "image":
        link = _replace_with_link(sample / "images" / "a.png", "gone.png")
        target = sample / "images" / "gone.png"
    else:
        link = sample / "masks" / "m003.png"
        link.symlink_to("../../b/masks/gone.png")
        target = linked_dsb / "train" / "b" / "masks" / "gone.png"
    with pytest.raises(DatasetError) as refused:
        open_dataset(linked_dsb)
    assert str(refused.value) == (f"{link}: is a symbolic link to {target}, which does not "
                                  "exist (a dangling link)")


def test_links_inside_the_dataset_keep_working(linked_dsb):
    store = linked_dsb / "store"
    write_dsb_sample(store, "c", np.full((16, 16), 90, np.uint8), make_masks((16, 16), 3))
    (linked_dsb / "train" / "c").symlink_to("../store/c")  # a sample folder
    b = linked_dsb / "train" / "b"
    _replace_with_link(b / "images" / "b.png", "../../a/images/a.png")  # an image
    (b / "masks" / "m003.png").symlink_to("../../a/masks/m001.png")  # a mask
    dataset = open_dataset(linked_dsb)
    assert [(r.name, len(r.mask_paths)) for r in dataset.records] == [
        ("a", 2), ("b", 3), ("c", 3)]
    assert dataset.records[2].file_name == "train/c/images/c.png"
    # Opened through a link to the dataset itself, the same.
    alias = linked_dsb.parent / "alias"
    alias.symlink_to(linked_dsb)
    assert len(open_dataset(alias)) == 3


def test_test_ids_naming_a_link_loop_name_the_entry_and_the_loop(test_folder):
    link = test_folder / "x.png"
    _replace_with_link(link, "x.png")
    with pytest.raises(DatasetError) as refused:
        open_dataset(test_folder)
    assert str(refused.value) == (
        f"{test_folder / 'test_img_ids.json'}: entry 1: file_name 'x.png': {link} is a "
        "symbolic link to itself (a loop, never a file)")
