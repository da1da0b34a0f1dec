"""A slide's levels served to a viewer without decoding on its thread: coarse at once,
the true pixels once a decoding thread has read them (no Qt)."""

import threading

import numpy as np
import pytest
from slide_helpers import make_slide

from napari_nuclei.core.slide.lazy import slide_layer_data
from napari_nuclei.core.slide.progressive import BLOCK
from napari_nuclei.core.slide.readers import open_slide


@pytest.fixture
def slide(tmp_path):
    return make_slide(tmp_path / "case.tif", size=2048)


def _levels(slide):
    levels, meta, kind = slide_layer_data(slide, progressive=True)
    assert kind == "image" and meta["multiscale"] and meta["rgb"]
    return levels


def _true(slide, *region):
    opened = open_slide(slide)
    try:
        return opened.read(0, *region)
    finally:
        opened.close()


def test_the_reading_thread_never_decodes_and_the_true_pixels_follow(slide, monkeypatch):
    truth = _true(slide, 900, 700, 700, 600)
    levels = _levels(slide)
    store = levels[0].store
    here, main = [], threading.current_thread()
    original = type(store.slide).read

    def recording(self, *args):
        if threading.current_thread() is main:
            here.append(args)
        return original(self, *args)

    monkeypatch.setattr(type(store.slide), "read", recording)
    told = threading.Event()
    store.listeners.append(told.set)
    view = (slice(700, 1300), slice(900, 1600))
    first = levels[0][view]
    assert first.shape == (600, 700, 3) and first.dtype == np.uint8
    assert here == []  # drawn from the coarsest level kept in memory
    assert told.wait(30)
    deadline = threading.Event()
    for _ in range(300):  # every block under the view decoded (told once or more)
        if np.array_equal(levels[0][view], truth):
            break
        deadline.wait(0.1)
    np.testing.assert_array_equal(levels[0][view], truth)
    assert here == []
    # The coarse stand-in was a resampling of the slide, not noise.
    assert abs(float(first.mean()) - float(truth.mean())) < 20


def test_levels_index_like_arrays(slide):
    levels = _levels(slide)
    top = levels[-1]
    whole = np.asarray(top)
    assert whole.shape == top.shape
    np.testing.assert_array_equal(top[3:9, 5:8, 1], whole[3:9, 5:8, 1])
    np.testing.assert_array_equal(top[4], whole[4:5][0])
    assert top[10:10].shape == (0, top.shape[1], 3)


def test_decoded_blocks_stay_within_the_budget_and_closing_stops_the_thread(slide):
    from napari_nuclei.core.slide.lazy import _OpenSlide
    from napari_nuclei.core.slide.progressive import progressive_pyramid

    budget = 3 * BLOCK * BLOCK * 3
    levels = progressive_pyramid(_OpenSlide(open_slide(slide)), budget=budget)  # closed with it
    store = levels[0].store
    told = threading.Event()
    store.listeners.append(told.set)
    for y in range(0, 2048, BLOCK):  # the whole of level 0 asked for, block by block
        levels[0][y:y + BLOCK, :]
    pause = threading.Event()  # never set: a pause between looks
    for _ in range(300):
        if store.decoded >= 16:
            break
        pause.wait(0.1)
    assert store.decoded >= 16
    assert store._bytes <= budget
    assert store.thread.is_alive()
    store.close()
    store.thread.join(30)
    assert not store.thread.is_alive()
