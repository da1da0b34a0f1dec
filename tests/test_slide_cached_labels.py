"""Slide labels served from memory: what the viewer reads while a job runs and once it
has finished is the labels on disk, read by a worker beforehand, never by the viewer."""

import numpy as np
import pytest
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.lazy import BlockCache, CachedPyramid, cached_labels_layer_data
from napari_nuclei.core.slide.live_labels import LiveLabels
from napari_nuclei.core.slide.region_job import predict_region_with


class Unreadable:
    """Stands for a level on disk that must not be read."""

    def __init__(self, like):
        self.shape, self.dtype = like.shape, like.dtype

    def __getitem__(self, key):
        raise AssertionError("read from disk")


def test_a_cached_level_reads_as_its_array_does():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 50, (2500, 2300)).astype(np.uint32)
    level0, level1 = CachedPyramid([base, base[::2, ::2]], block=1024).levels("t")
    assert level0.shape == base.shape and level1.shape == base[::2, ::2].shape
    for key in [(slice(None),), (slice(10, 2000), slice(5, 2299)), (5, 7), (-1, -1),
                (slice(None, None, 3), slice(7, 1500, 5)), (slice(100, 50),),
                (Ellipsis, 3, 4), (slice(-5, None), 2), (np.int64(3), slice(None)),
                (slice(2400, 3000), slice(0, 10)), (np.array([1, 5]), slice(None))]:
        np.testing.assert_array_equal(level0[key], base[key])
    np.testing.assert_array_equal(np.asarray(level1), base[::2, ::2])
    with pytest.raises(IndexError):
        level0[2500, 0]


def test_painted_pixels_reach_every_level_as_the_pyramid_rule_makes_them():
    base = np.zeros((3000, 3000), np.uint32)
    pyramid = CachedPyramid([base, base[::2, ::2], base[::4, ::4]], block=512)
    painted = base.copy()
    for y, x, h, w, value in ((101, 333, 300, 700, 7), (1023, 1, 900, 1200, 9)):
        painted[y : y + h, x : x + w] = value
        pyramid.paint(y, x, painted[y : y + h, x : x + w])
    for level, step in enumerate((1, 2, 4)):
        np.testing.assert_array_equal(np.asarray(pyramid.levels("p")[level]),
                                      painted[::step, ::step])


def test_background_painted_around_a_region_keeps_the_regions_blocks_in_memory():
    """A region's job marks the slide's other tiles painted, with nothing in them: those
    blocks stay served as background, and the region's blocks are not pushed out."""
    base = np.zeros((4096, 4096), np.uint32)
    region = np.zeros((512, 512), np.uint32)
    region[100:200, 100:200] = 5
    base[1024:1536, 1024:1536] = region
    pyramid = CachedPyramid([base, base[::2, ::2]], BlockCache(budget=3 * 512**2 * 4),
                            block=512)
    pyramid.painted = set()  # a live job's labels: blocks not painted are background
    pyramid.paint(1024, 1024, region)
    kept = {(0, 2, 2), (1, 1, 1)}
    assert all(key in pyramid.cache for key in kept)
    for y in range(0, 4096, 256):
        for x in range(0, 4096, 256):
            if not (1024 <= y < 1536 and 1024 <= x < 1536):
                pyramid.paint(y, x, np.zeros((256, 256), np.uint32))
    assert all(key in pyramid.cache for key in kept) and pyramid.painted == kept
    # Background painted over a block in memory still reaches it.
    pyramid.arrays = [Unreadable(a) for a in pyramid.arrays]
    pyramid.paint(1124, 1124, np.zeros((50, 50), np.uint32))
    base[1124:1174, 1124:1174] = 0
    for level, step in enumerate((1, 2)):
        np.testing.assert_array_equal(np.asarray(pyramid.levels("p")[level]),
                                      base[::step, ::step])


def test_the_least_recently_used_blocks_go_first_within_the_budget():
    cache = BlockCache(budget=3 * 1024)
    for key in "abcd":
        cache.put(key, np.zeros(256, np.uint32))
    assert "a" not in cache and all(key in cache for key in "bcd")
    cache.get("b")
    cache.put("e", np.zeros(256, np.uint32))
    assert "c" not in cache and "b" in cache and cache.bytes <= cache.budget


def test_live_labels_follow_the_job_and_match_its_finished_pyramid(tmp_path):
    slide = make_slide(tmp_path / "case_01.tif", size=768, seed=1)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="has no labels yet"):
        LiveLabels(out)
    live = []

    def on_report(report):
        if hasattr(report, "total") and report.tile >= 0:
            live[:] = live or [LiveLabels(out)]
            live[0].update()

    drain(predict_region_with(BlobModel(), slide, out), on_report)
    labels = live[0]
    levels, meta, kind = labels.layer_data()
    levels = levels if isinstance(levels, list) else [levels]
    assert kind == "labels" and tuple(meta["scale"]) == (0.25, 0.25)
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(np.asarray(level), labels_of(out, f"s{k}"))

    # The finished pyramid keeps the blocks the live labels read: shown, it reads
    # nothing from disk.
    (finished, _meta, _), pyramid = cached_labels_layer_data(out, (0, 0, 768, 768),
                                                             labels.pyramid)
    finished = finished if isinstance(finished, list) else [finished]
    pyramid.arrays = [Unreadable(a) for a in pyramid.arrays]
    for k, level in enumerate(finished):
        np.testing.assert_array_equal(np.asarray(level), labels_of(out, f"s{k}"))


def test_a_finished_pyramid_opened_afresh_is_read_into_memory_by_the_worker(tmp_path):
    slide = make_slide(tmp_path / "case_01.tif", size=768, seed=1)
    out = tmp_path / "out"
    drain(predict_region_with(BlobModel(), slide, out, (128, 128, 512, 512)))
    (levels, meta, _), pyramid = cached_labels_layer_data(out, (128, 128, 512, 512))
    expected = labels_of(out)
    pyramid.arrays = [Unreadable(a) for a in pyramid.arrays]
    level0 = levels[0] if isinstance(levels, list) else levels
    np.testing.assert_array_equal(level0[128:640, 128:640], expected[128:640, 128:640])
    assert meta["metadata"]["labels"].endswith("nuclei.ome.zarr")
