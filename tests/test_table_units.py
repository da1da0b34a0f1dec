"""Nucleus tables carry their units: µm columns whenever a pixel size is known, and the
Parquet schema says what the numbers are."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from slide_helpers import BlobModel, make_slide

from conftest import disk
from napari_nuclei.cli_commands.predict import _write_measurements
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.core.slide.engine import iter_predict_slide
from napari_nuclei.core.slide.measure import measure_prediction
from napari_nuclei.core.slide.outputs import table_metadata


def _prediction():
    shape = (60, 80)
    first, second = disk(shape, (20, 20), 8), disk(shape, (40, 60), 5)
    return Prediction.from_unsorted(60, 80, [0.9, 0.8], [(12, 12, first[12:29, 12:29]),
                                                         (35, 55, second[35:46, 55:66])])


@pytest.mark.parametrize("mpp", [0.5, None])
def test_micron_columns_follow_the_pixel_size(mpp):
    image = np.full((60, 80, 3), 200, np.uint8)
    rows, _ = measure_prediction(_prediction(), image, mpp)
    for row in rows:
        for name in ("perimeter", "major_axis", "minor_axis", "centroid_x"):
            px, um = row[f"{name}_px"], row[f"{name}_um"]
            assert (um == pytest.approx(px * mpp)) if mpp else np.isnan(um)
        assert (row["area_um2"] == pytest.approx(row["area_px"] * mpp**2)) if mpp \
            else np.isnan(row["area_um2"])


def test_an_image_table_says_its_pixel_size_units_and_stain_vectors(tmp_path):
    image = np.full((60, 80, 3), 200, np.uint8)
    rows, _ = measure_prediction(_prediction(), image, 0.5)
    path = tmp_path / "nuclei.parquet"
    _write_measurements(path, [("tile", rows)], table_metadata(0.5, "he", "runs/x/m.pth"))
    facts = json.loads(pq.read_schema(path).metadata[b"napari_nuclei"])
    assert facts["mpp"] == 0.5 and facts["model"] == "runs/x/m.pth"
    assert facts["stain_vectors"]["hematoxylin"] == [0.65111, 0.70119, 0.29049]
    assert "µm" in facts["length_unit"] and facts["napari_nuclei_version"]


def test_a_slide_table_says_its_pixel_size_and_model(tmp_path):
    slide = make_slide(tmp_path / "case_09.tif", size=768, seed=1)
    result = drain(iter_predict_slide(BlobModel(min_area=8), slide, tmp_path / "out"))
    table = pq.read_table(tmp_path / "out" / "nuclei.parquet")
    assert table.num_rows == result.nuclei > 0
    facts = json.loads(table.schema.metadata[b"napari_nuclei"])
    assert facts["mpp"] == pytest.approx(0.25) and facts["stain"] == "he"
    frame = table.to_pandas()
    assert frame.perimeter_um.to_numpy() == pytest.approx(frame.perimeter_px * 0.25)
