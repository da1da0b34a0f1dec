"""Stain vectors other than QuPath's "H&E default": given, used, recorded, keyed."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from PIL import Image
from slide_helpers import BlobModel, he_tile

from napari_nuclei.core.errors import InputError, OptionError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.measure import (
    HE_DEFAULT_VECTORS,
    check_stain_vectors,
    measure_prediction,
    stain_densities,
)

# Vectors as QuPath's "Estimate stain vectors" might give for a paler, bluer stain.
OTHER = (0.55, 0.75, 0.36, 0.25, 0.85, 0.46)


@pytest.mark.parametrize(("values", "problem"), [
    ((0.6, 0.7, 0.3), "wants six numbers"),
    ((0.6, 0.7, 0.3, 0.6, 0.7, float("nan")), "finite"),
    ((0.6, 0.7, -0.3, 0.2, 0.8, 0.5), "not negative"),
    ((0, 0, 0, 0.2, 0.8, 0.5), "is zero"),
    ((0.6, 0.7, 0.3, 1.2, 1.4, 0.6), "point the same way"),
])
def test_bad_stain_vectors_are_refused_by_name(values, problem):
    with pytest.raises(ValueError, match=problem):
        check_stain_vectors(values)
    with pytest.raises(OptionError, match=problem):
        SlideOptions(stain_vectors=values)


def test_the_cli_refuses_bad_vectors_in_one_line(tmp_path, capsys):
    from napari_nuclei.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["predict-slide", str(tmp_path / "slide.tif"), "--model", str(tmp_path),
              "-o", str(tmp_path / "out"), "--stain-vectors", "0.6,0.7,0.3,1.2,1.4,0.6"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--stain-vectors" in err[-1] and "point the same way" in err[-1]


def test_a_slide_is_measured_with_the_vectors_given(tmp_path):
    image = he_tile()
    png = tmp_path / "tile.png"
    Image.fromarray(image).save(png)
    options = {"tile_size": 256, "overlap": 64, "tissue_mask": False, "stain": "he"}
    drain(iter_predict_slide(BlobModel(), png, tmp_path / "other",
                             SlideOptions(stain_vectors=OTHER, **options)))
    table = pq.read_table(tmp_path / "other" / "nuclei.parquet")
    labels = np.asarray(zarr.open_group(str(tmp_path / "other" / "nuclei.ome.zarr"),
                                        mode="r")["s0"][:])
    vectors = (OTHER[:3], OTHER[3:])
    rows = table.to_pydict()
    assert len(rows["id"]) > 50
    for nucleus, hematoxylin, eosin in zip(rows["id"], rows["hematoxylin_od"],
                                           rows["eosin_od"], strict=True):
        expected = stain_densities(image[labels == nucleus], vectors).mean(axis=0)
        assert (hematoxylin, eosin) == pytest.approx(tuple(expected), abs=1e-9)
    facts = json.loads(table.schema.metadata[b"napari_nuclei"])
    assert facts["stain_vectors"]["hematoxylin"] == list(OTHER[:3])
    assert facts["stain_vectors"]["eosin"] == list(OTHER[3:])
    # The same job with the default vectors is another job: it is not reused.
    with pytest.raises(InputError, match="stain vectors"):
        drain(iter_predict_slide(BlobModel(), png, tmp_path / "other", SlideOptions(**options)))


def test_images_are_measured_with_the_vectors_given():
    image = he_tile()[:200, :200]
    mask = np.zeros((20, 20), bool)
    mask[4:16, 3:17] = True
    prediction = Prediction.from_unsorted(200, 200, [0.9], [(50, 60, mask)])
    default, _ = measure_prediction(prediction, image)
    other, _ = measure_prediction(prediction, image, vectors=(OTHER[:3], OTHER[3:]))
    pixels = image[50:70, 60:80][mask]
    assert default[0]["hematoxylin_od"] == pytest.approx(
        stain_densities(pixels, HE_DEFAULT_VECTORS).mean(axis=0)[0])
    assert other[0]["hematoxylin_od"] == pytest.approx(
        stain_densities(pixels, (OTHER[:3], OTHER[3:])).mean(axis=0)[0])
    assert other[0]["hematoxylin_od"] != pytest.approx(default[0]["hematoxylin_od"])
