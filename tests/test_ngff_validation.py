"""The slide labels are NGFF that other tools' validators accept."""

from __future__ import annotations

import pytest
import zarr
from ome_zarr_models.v05 import ImageLabel
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import iter_predict_slide


@pytest.fixture(scope="module")
def labels_group(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ngff")
    slide = make_slide(folder / "case_11.tif", size=768, seed=1)
    result = drain(iter_predict_slide(BlobModel(min_area=8), slide, folder / "out"))
    assert result.nuclei > 0
    return zarr.open_group(str(folder / "out" / "nuclei.ome.zarr"), mode="r")


def test_the_labels_validate_as_an_ngff_0_5_image_label(labels_group):
    model = ImageLabel.from_zarr(labels_group)
    datasets = model.attributes.ome.multiscales[0].datasets
    assert [d.path for d in datasets] == ["s0", "s1"]
    for name in ("s0", "s1"):
        assert labels_group[name].metadata.dimension_names == ("y", "x")
