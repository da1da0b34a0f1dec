"""A predicted slide's measurements: one nucleus' row, the table as CSV, GeoJSON for QuPath."""

import csv
import gzip
import json

import numpy as np
import pytest
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of, table_of

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.measurements import (
    export_geojson,
    export_table_csv,
    nucleus_row,
)


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    slide = make_slide(root / "case_01.tif")
    out = root / "out" / "case_01"
    drain(iter_predict_slide(BlobModel(), slide, out,
                             SlideOptions(overlap=32, outputs=OutputOptions(gzip=True))))
    return out


def test_a_nucleus_row_is_its_table_row(predicted):
    table = table_of(predicted)
    nucleus = int(labels_of(predicted)[labels_of(predicted) > 0][0])
    row = nucleus_row(predicted, nucleus)
    assert row["id"] == nucleus
    assert row["area_px"] == table.loc[nucleus].area_px
    assert nucleus_row(predicted, int(table.index.max()) + 1) is None


def test_the_table_exports_as_csv_and_the_nuclei_as_plain_geojson(predicted, tmp_path):
    table = table_of(predicted)
    assert export_table_csv(predicted, tmp_path / "t.csv") == len(table)
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["id"]) for r in rows] == list(table.index)
    assert np.allclose([float(r["area_px"]) for r in rows], table.area_px)
    assert (predicted / "nuclei.geojson.gz").is_file()  # gzipped output, plain export
    export_geojson(predicted, tmp_path / "n.geojson")
    exported = json.loads((tmp_path / "n.geojson").read_text())
    with gzip.open(predicted / "nuclei.geojson.gz", "rt") as fh:
        assert exported == json.load(fh)
    assert exported["type"] == "FeatureCollection"
    assert len(exported["features"]) == len(table)


def test_an_unfinished_output_gives_one_line(tmp_path):
    with pytest.raises(InputError):
        export_table_csv(tmp_path / "nothing", tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()
