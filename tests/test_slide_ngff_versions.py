"""Slide jobs in NGFF 0.4 (zarr 2) as in 0.5: the version is part of the job, its labels
open, follow the tiles, are corrected in windows and written back in the same version."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr_models import v04, v05
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of, table_of

from napari_nuclei.core.errors import InputError, OptionError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import SlideOptions, TileDone, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.lazy import labels_layer_data
from napari_nuclei.core.slide.live_labels import (
    LivePyramid,
    live_labels_layer_data,
    remove_live_levels,
)
from napari_nuclei.core.slide.ngff import ngff_attrs
from napari_nuclei.core.slide.window import pull_window, write_back

REGION = (256, 256, 400, 300)  # x, y, width, height in level-0 pixels


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("slides") / "case_01.tif")


def _options(ngff, **kwargs):
    return SlideOptions(overlap=32, outputs=OutputOptions(csv=True), ngff=ngff, **kwargs)


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


def test_a_0_4_job_is_opened_corrected_and_written_back_in_0_4(slide, tmp_path):
    out = tmp_path / "case_01"
    live = None
    for report in iter_predict_slide(BlobModel(), slide, out, _options("0.4")):
        if isinstance(report, TileDone):
            live = live or LivePyramid(out)
            live.update()
            levels, meta, _ = live_labels_layer_data(out)
            assert [level.shape for level in levels] == [(1024, 1024), (512, 512),
                                                         (256, 256)]
    # The job's own live levels are zarr 3 whatever the version: only the job reads them.
    remove_live_levels(out)
    assert _store(out).metadata.zarr_format == 2
    levels, meta, kind = labels_layer_data(out)
    assert kind == "labels" and len(levels) == 3 and meta["scale"] == (0.25, 0.25)
    assert meta["units"] == ("micrometer", "micrometer")

    before = labels_of(out)
    window = pull_window(out, *REGION)
    labels, removed = _edit(window)
    result = write_back(window, labels)
    assert result.removed == [removed] and len(result.added) == 1

    store = _store(out)
    assert store.metadata.zarr_format == 2
    assert not list((out / "nuclei.ome.zarr").rglob("zarr.json"))
    model = v04.ImageLabel.from_zarr(store)
    assert model.attributes.multiscales[0].version == "0.4"
    assert "ome" not in store.attrs
    after = labels_of(out)
    x, y, w, h = REGION
    np.testing.assert_array_equal(after[y : y + h, x : x + w], result.labels)
    outside = np.ones(after.shape, bool)
    outside[y : y + h, x : x + w] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    for k, level in enumerate(("s1", "s2"), start=1):
        np.testing.assert_array_equal(labels_of(out, level), after[:: 2**k, :: 2**k])
    assert set(table_of(out).index) == set(np.unique(after).tolist()) - {0}
    # A second window of the corrected output opens as the first did.
    assert pull_window(out, *REGION).labels.shape == (h, w)


def test_a_0_5_write_back_gives_the_nuclei_it_adds_their_colours(slide, tmp_path):
    from napari_ome_zarr import napari_get_reader

    out = tmp_path / "case_01"
    drain(iter_predict_slide(BlobModel(), slide, out, _options("0.5")))
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


def test_the_ngff_version_is_part_of_the_job(slide, tmp_path):
    out = tmp_path / "case_01"
    drain(iter_predict_slide(BlobModel(), slide, out, _options("0.5", tissue_mask=False,
                                                               tile_size=512)))
    with pytest.raises(InputError, match=r"other settings \(NGFF version\).*--overwrite"):
        drain(iter_predict_slide(BlobModel(), slide, out,
                                 _options("0.4", tissue_mask=False, tile_size=512)))
    assert _store(out).metadata.zarr_format == 3  # nothing was changed
    drain(iter_predict_slide(BlobModel(), slide, out,
                             _options("0.4", tissue_mask=False, tile_size=512,
                                      overwrite=True)))
    assert _store(out).metadata.zarr_format == 2
    assert not list((out / "nuclei.ome.zarr").rglob("zarr.json"))
    v04.ImageLabel.from_zarr(_store(out))


def test_the_ngff_option_is_a_choice_of_the_two_versions(tmp_path, capsys):
    from napari_nuclei import cli
    from napari_nuclei.cli_commands import predict_slide

    def options(*extra):
        args = cli.build_parser().parse_args(
            ["predict-slide", str(tmp_path / "a.tif"), "--model", str(tmp_path), "-o",
             str(tmp_path / "out"), *extra])
        return predict_slide._options(args)

    assert options().ngff == "0.5"
    assert options("--ngff", "0.4").ngff == "0.4"
    with pytest.raises(SystemExit):
        options("--ngff", "0.3")
    assert "invalid choice: '0.3'" in capsys.readouterr().err
    with pytest.raises(OptionError, match="ngff: must be one of 0.5, 0.4"):
        SlideOptions(ngff="0.6")
