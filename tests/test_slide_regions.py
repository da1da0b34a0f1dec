"""Nuclei are kept by the regions themselves, at full resolution, not by the overview."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("regions") / "slide.tif", size=768, seed=1)


def _centroids(out):
    table = pq.read_table(out / "nuclei.parquet").to_pydict()
    return np.column_stack([table["centroid_x_px"], table["centroid_y_px"]])


def test_a_polygon_keeps_exactly_the_nuclei_whose_centroid_lies_in_it(slide, tmp_path):
    # A slanted triangle: its edges cross nuclei at every angle, and the overview (a few
    # level-0 pixels per pixel) cannot follow them.
    triangle = shapely.Polygon([(40, 60), (700, 180), (260, 720)])
    regions = tmp_path / "regions.geojson"
    regions.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"objectType": "annotation"},
         "geometry": shapely.geometry.mapping(triangle)}]}))
    options = {"tile_size": 256, "overlap": 64, "tissue_mask": False}
    drain(iter_predict_slide(BlobModel(), slide, tmp_path / "all", SlideOptions(**options)))
    drain(iter_predict_slide(BlobModel(), slide, tmp_path / "in",
                             SlideOptions(regions=regions, **options)))
    every, kept = _centroids(tmp_path / "all"), _centroids(tmp_path / "in")
    inside = shapely.intersects_xy(triangle, every[:, 0], every[:, 1])
    assert 20 < inside.sum() < len(every)
    assert shapely.intersects_xy(triangle, kept[:, 0], kept[:, 1]).all()
    # The same nuclei as the whole slide's that lie inside, none more, none fewer.
    expected = sorted(map(tuple, np.round(every[inside], 6)))
    assert sorted(map(tuple, np.round(kept, 6))) == expected


def test_a_rectangle_and_polygons_together_keep_what_lies_in_both(slide, tmp_path):
    square = shapely.box(100, 100, 600, 600)
    regions = tmp_path / "regions.geojson"
    regions.write_text(json.dumps({"type": "Feature", "geometry":
                                   shapely.geometry.mapping(square)}))
    drain(iter_predict_slide(BlobModel(), slide, tmp_path / "both", SlideOptions(
        tile_size=256, overlap=64, tissue_mask=False, regions=regions,
        region=(300, 0, 468, 768))))
    kept = _centroids(tmp_path / "both")
    both = shapely.box(300, 100, 600, 600)
    assert len(kept) > 5
    assert shapely.intersects_xy(both, kept[:, 0], kept[:, 1]).all()
