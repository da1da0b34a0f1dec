"""Fluorescence slides (signal on a dark background) have their tissue found too."""

from __future__ import annotations

import numpy as np
import pytest
from slide_helpers import BlobModel

from conftest import SAMPLE_DATA
from napari_nuclei.core.image_io import read_image
from napari_nuclei.core.jobs import Notice, drain
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.reader import open_slide
from napari_nuclei.core.slide.synthetic import write_test_slide
from napari_nuclei.core.slide.tissue import detect_tissue, make_overview, slide_kind


@pytest.fixture(scope="module")
def fluorescence_slide(tmp_path_factory):
    """A 2,048² pyramid of the bundled confocal nuclei planes, blank blocks black."""
    plane = read_image(SAMPLE_DATA / "test" / "fluo_r1c1.png")
    plane = plane if plane.ndim == 2 else plane[..., 0]
    if plane.dtype != np.uint8:
        plane = (plane / max(1, plane.max()) * 255).astype(np.uint8)
    rgb = np.repeat(plane[:, :, None], 3, axis=2)
    return write_test_slide(tmp_path_factory.mktemp("fluo") / "confocal.tif", rgb, 2048,
                            blank_fraction=0.4, seed=5, block=512, background=0)


def test_a_dark_overview_is_told_apart_from_a_brightfield_one(fluorescence_slide):
    with open_slide(fluorescence_slide) as slide:
        overview = make_overview(slide, slide.mpp)
    assert slide_kind(overview.rgb) == "fluorescence"
    assert slide_kind(255 - overview.rgb) == "brightfield"


def test_fluorescence_tissue_covers_the_signal_blocks_only(fluorescence_slide):
    with open_slide(fluorescence_slide) as slide:
        auto = make_overview(slide, slide.mpp, "auto")
        brightfield = make_overview(slide, slide.mpp, "brightfield")
        everything = make_overview(slide, slide.mpp, "none")
    signal = auto.rgb.max(axis=2) > 40
    assert auto.tissue[signal].mean() > 0.99  # every bright nucleus is on tissue
    assert 0.2 < auto.tissue.mean() < 0.9  # the black blocks are background
    assert brightfield.tissue.mean() < 0.05  # saturation sees nothing on grey signal
    assert everything.tissue.all()
    assert np.array_equal(detect_tissue(auto.rgb, "fluorescence"), auto.tissue)


def _notices(slide, out, tissue):
    notices = []
    result = drain(iter_predict_slide(BlobModel(min_area=8), slide, out,
                                      SlideOptions(tissue_mask=tissue)),
                   lambda report: notices.append(report) if isinstance(report, Notice)
                   else None)
    return result, [n.message for n in notices if n.level == "warning"]


def test_a_job_that_skips_nearly_everything_says_so_and_names_the_option(
        fluorescence_slide, tmp_path):
    result, warnings = _notices(fluorescence_slide, tmp_path / "bf", "brightfield")
    assert any("--tissue fluorescence" in w for w in warnings), warnings
    skipped_all = result.predicted
    result, warnings = _notices(fluorescence_slide, tmp_path / "auto", "auto")
    assert not any("tissue" in w for w in warnings), warnings
    assert result.predicted > max(skipped_all, 0.3 * result.tiles)
