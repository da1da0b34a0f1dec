"""Slide labels corrected in windows keep what lets NGFF readers show them."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr_models import v05
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.ngff import ngff_attrs
from napari_nuclei.core.slide.window import pull_window, write_back

REGION = (256, 256, 400, 300)  # x, y, width, height in level-0 pixels


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("slides") / "case_01.tif")


def _store(out):
    return zarr.open_group(str(out / "nuclei.ome.zarr"), mode="r")


def _edit(window):
    """Remove one whole nucleus and paint a new one on the background."""
    labels = window.labels.copy()
    removed = min(set(np.unique(labels).tolist()) - {0} - window.cut_ids)
    labels[labels == removed] = 0
    empty = np.argwhere(labels[20:-20, 20:-20] == 0)[0] + 20
    labels[empty[0] - 3 : empty[0] + 4, empty[1] - 3 : empty[1] + 4] = 1
    return labels, removed


def test_a_0_5_write_back_gives_the_nuclei_it_adds_their_colours(slide, tmp_path):
    from napari_ome_zarr import napari_get_reader

    out = tmp_path / "case_01"
    drain(iter_predict_slide(BlobModel(), slide, out,
                             SlideOptions(overlap=32, outputs=OutputOptions(csv=True))))
    window = pull_window(out, *REGION)
    labels, removed = _edit(window)
    added = write_back(window, labels).added[0]
    store = _store(out)
    v05.ImageLabel.from_zarr(store)
    listed = {c["label-value"] for c in ngff_attrs(store)["image-label"]["colors"]}
    assert added in listed and set(np.unique(labels_of(out)).tolist()) <= listed
    path = str(out / "nuclei.ome.zarr")
    _, meta, _ = napari_get_reader(path)(path)[0]
    assert meta["visible"] is True and added in meta["colormap"]
