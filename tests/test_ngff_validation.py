"""The slide labels are NGFF that other tools' validators and readers accept, in both
versions written (0.5 in zarr 3, the default; 0.4 in zarr 2)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import zarr
from ome_zarr_models import v04, v05
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide import outputs
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.ngff import ngff_attrs


def _predict(tmp_path_factory, ngff):
    folder = tmp_path_factory.mktemp(f"ngff{ngff}")
    slide = make_slide(folder / "case_11.tif", size=768, seed=1)
    result = drain(iter_predict_slide(BlobModel(min_area=8), slide, folder / "out",
                                      SlideOptions(ngff=ngff)))
    assert result.nuclei > 0
    return folder / "out" / "nuclei.ome.zarr"


@pytest.fixture(scope="module")
def labels_05(tmp_path_factory):
    return _predict(tmp_path_factory, "0.5")


@pytest.fixture(scope="module")
def labels_04(tmp_path_factory):
    return _predict(tmp_path_factory, "0.4")


def _ids(group) -> set[int]:
    return set(np.unique(group["s0"][:]).tolist()) - {0}


def test_the_labels_validate_as_an_ngff_0_5_image_label(labels_05):
    labels_group = zarr.open_group(str(labels_05), mode="r")
    model = v05.ImageLabel.from_zarr(labels_group)
    datasets = model.attributes.ome.multiscales[0].datasets
    assert [d.path for d in datasets] == ["s0", "s1"]
    for name in ("s0", "s1"):
        assert labels_group[name].metadata.dimension_names == ("y", "x")
    assert labels_group.attrs["ome"]["version"] == "0.5"
    assert labels_group.attrs["ome"]["image-label"]["version"] == "0.5"


def test_the_labels_validate_as_an_ngff_0_4_image_label(labels_04):
    labels_group = zarr.open_group(str(labels_04), mode="r")
    assert labels_group.metadata.zarr_format == 2
    assert not list(labels_04.rglob("zarr.json"))  # nothing of zarr 3 in the store
    model = v04.ImageLabel.from_zarr(labels_group)
    multiscale = model.attributes.multiscales[0]
    assert [d.path for d in multiscale.datasets] == ["s0", "s1"]
    assert multiscale.version == "0.4"
    assert model.attributes.image_label.version == "0.4"
    assert "ome" not in labels_group.attrs  # the 0.4 keys are the attributes themselves
    for name in ("s0", "s1"):
        metadata = labels_group[name].metadata
        assert metadata.zarr_format == 2 and metadata.dimension_separator == "/"
        # The one compressor Bio-Formats' zarr reader shares with zarr's defaults.
        assert metadata.compressor.codec_id == "blosc"
    scale = multiscale.datasets[0].coordinateTransformations[0].scale
    assert list(scale) == pytest.approx([0.25, 0.25])


def test_napari_ome_zarr_opens_0_5_labels_visible_in_their_colours(labels_05):
    from napari.layers import Labels
    from napari_ome_zarr import napari_get_reader

    path = str(labels_05)
    layers = napari_get_reader(path)(path)
    assert [kind for _, _, kind in layers] == ["labels"]
    data, meta, _ = layers[0]
    assert meta["visible"] is True
    colours = meta["colormap"]
    group = zarr.open_group(path, mode="r")
    # Every nucleus has its colour (the reader's colour map shows no others); the
    # background is transparent.
    assert set(colours) == _ids(group) | {0}
    assert colours[0][3] == 0 and all(c[3] == 1 for key, c in colours.items() if key)
    assert len({tuple(c) for key, c in colours.items() if key}) > len(colours) // 2
    # napari builds the layer from what the reader returned (it says that ids without a
    # colour would be transparent: there are none).
    with pytest.warns(UserWarning, match="did not provide a default color"):
        layer = Labels(data, **meta)
    assert layer.visible and layer.multiscale
    some = next(iter(_ids(group)))
    np.testing.assert_allclose(layer.colormap.map(some), colours[some])


def test_napari_ome_zarr_opens_0_4_labels_hidden_in_napari_colours(labels_04):
    # 0.4 validators require an omero window, which napari-ome-zarr would hand to the
    # Labels layer as contrast limits it refuses; without omero, napari-ome-zarr opens a
    # label image hidden: the store says so in its README section.
    from napari.layers import Labels
    from napari_ome_zarr import napari_get_reader

    path = str(labels_04)
    layers = napari_get_reader(path)(path)
    assert [kind for _, _, kind in layers] == ["labels"]
    data, meta, _ = layers[0]
    assert "colormap" not in meta and len(data) == 2
    layer = Labels(data, **meta)
    assert layer.multiscale


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_ome_zarr_reads_the_labels_without_looking_for_a_parent_image(
        version, labels_05, labels_04, caplog):
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    path = labels_05 if version == "0.5" else labels_04
    fmt = FormatV05() if version == "0.5" else FormatV04()
    with caplog.at_level(logging.WARNING, logger="ome_zarr"):
        nodes = list(Reader(parse_url(str(path), fmt=fmt))())
    assert [len(node.data) for node in nodes] == [2]
    assert not [r for r in caplog.records if r.name.startswith("ome_zarr")], caplog.text


def _store(path, ngff, labels, chunk=128):
    store = outputs.LabelsStore(path, *labels.shape, chunk, 0.5, "micrometer", ngff=ngff)
    for y in range(0, labels.shape[0], chunk):
        for x in range(0, labels.shape[1], chunk):
            store.write_block(y, x, labels[y : y + chunk, x : x + chunk])
    return store


def _blobs(n: int, side: int = 640) -> np.ndarray:
    labels = np.zeros((side, side), np.uint32)
    rng = np.random.default_rng(3)
    for k in range(n):
        y, x = rng.integers(0, side - 6, 2)
        labels[y : y + 5, x : x + 5] = 4096 * (k % 7) + k + 1
    return labels


def test_small_labels_list_a_colour_for_every_nucleus_even_without_a_pyramid(tmp_path):
    labels = _blobs(40, side=300)  # under two pyramid sides: one level
    store = _store(tmp_path / "nuclei.ome.zarr", "0.5", labels)
    assert store.finish() == 1
    group = zarr.open_group(str(tmp_path / "nuclei.ome.zarr"), mode="r")
    v05.ImageLabel.from_zarr(group)
    colours = ngff_attrs(group)["image-label"]["colors"]
    assert {c["label-value"] for c in colours} == _ids(group) | {0}
    assert ngff_attrs(group)["omero"]["channels"][0]["active"] is True


def test_labels_of_more_nuclei_than_the_colour_limit_list_none(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "MAX_COLOURED_NUCLEI", 10)
    store = _store(tmp_path / "nuclei.ome.zarr", "0.5", _blobs(40))
    assert store.finish() == 2
    group = zarr.open_group(str(tmp_path / "nuclei.ome.zarr"), mode="r")
    v05.ImageLabel.from_zarr(group)
    attrs = ngff_attrs(group)
    assert "colors" not in attrs["image-label"] and "omero" not in attrs


def test_a_store_keeps_its_version_when_reopened(tmp_path):
    # A job continued in another process reopens its labels without being told the
    # version again (the job folder made the store with it).
    labels = _blobs(30)
    path = tmp_path / "nuclei.ome.zarr"
    first = outputs.LabelsStore(path, *labels.shape, 128, 0.5, "micrometer", ngff="0.4")
    reopened = outputs.LabelsStore(path, *labels.shape, 128, 0.5, "micrometer")
    assert first.ngff == reopened.ngff == "0.4"
    for y in range(0, labels.shape[0], 128):
        for x in range(0, labels.shape[1], 128):
            store = first if x < 256 else reopened
            store.write_block(y, x, labels[y : y + 128, x : x + 128])
    reopened.finish()
    group = zarr.open_group(str(path), mode="r")
    v04.ImageLabel.from_zarr(group)
    np.testing.assert_array_equal(group["s0"][:], labels)
    np.testing.assert_array_equal(group["s1"][:], labels[::2, ::2])
    with pytest.raises(ValueError, match="holds NGFF 0.4 labels, not 0.5"):
        outputs.prepare_labels_store(path, "0.5")
