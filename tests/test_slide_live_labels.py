"""A slide's labels while its job runs: the live coarse levels follow the painted tiles."""

import numpy as np
import pytest
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.slide.engine import TileDone
from napari_nuclei.core.slide.job import JOB
from napari_nuclei.core.slide.live_labels import LIVE_NAME, live_labels_layer_data
from napari_nuclei.core.slide.region_job import predict_region_with


def test_live_levels_follow_every_painted_tile_and_give_way_to_the_final_pyramid(tmp_path):
    import zarr

    slide = make_slide(tmp_path / "case_01.tif")
    out = tmp_path / "out" / "case_01"
    with pytest.raises(InputError, match="no labels yet"):
        live_labels_layer_data(out)
    steps = predict_region_with(BlobModel(), slide, out)
    checked = filled = 0
    while True:
        try:
            report = next(steps)
        except StopIteration:
            break
        if not isinstance(report, TileDone):
            continue
        levels, meta, kind = live_labels_layer_data(out, checked)
        assert kind == "labels" and meta["multiscale"] and meta["scale"] == (0.25, 0.25)
        base = zarr.open_array(str(out / "nuclei.ome.zarr" / "s0"), mode="r")[:]
        assert [lv.shape for lv in levels] == [(1024, 1024), (512, 512), (256, 256)]
        # Each coarse level is level 0 taken every 2**k pixels, as the final pyramid is.
        for k, level in enumerate(levels):
            assert np.array_equal(np.asarray(level), base[:: 2**k, :: 2**k])
        filled += bool(base.any())
        checked += 1
    assert checked > 3 and 0 < filled < checked  # seen empty first, then filling in
    assert not (out / JOB / LIVE_NAME).exists()  # finished: the final pyramid replaces it
    for k in (1, 2):
        assert np.array_equal(labels_of(out, f"s{k}"), labels_of(out)[:: 2**k, :: 2**k])
