"""QuPath GeoJSON handed in as training data: any file is read or refused in one line."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.qupath_input import nucleus_crop
from napari_nuclei.core.validate.geojson import QuPathNucleus, read_qupath_nuclei

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["type", "features", "geometry", "coordinates", "properties",
                         "objectType", "classification", "name", "nucleusGeometry"]),
        inner, max_size=5),
    max_leaves=30)
_polygon_type = st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString"])


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_json, kind=_polygon_type)
def test_any_document_is_read_or_refused_in_one_line(tmp_path, document, kind):
    feature = {"type": "Feature", "geometry": {"type": kind, "coordinates": document},
               "properties": {"objectType": "detection"}}
    for content in (document, [feature]):
        path = tmp_path / "x.geojson"
        path.write_text(json.dumps(content))
        try:
            nuclei = read_qupath_nuclei(path)
        except DatasetError as exc:
            assert "\n" not in str(exc) and "x.geojson" in str(exc)
        else:
            for nucleus in nuclei:
                crop = nucleus_crop(nucleus, 32, 32)
                assert crop is None or crop[2].any()


@given(x=st.floats(-50, 80), y=st.floats(-50, 80), w=st.integers(1, 40), h=st.integers(1, 40))
def test_a_pixel_edge_rectangle_covers_exactly_its_pixels(x, y, w, h):
    x0, y0 = int(x), int(y)
    ring = ((x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h), (x0, y0))
    crop = nucleus_crop(QuPathNucleus(((ring,),), None), 40, 40)
    expected = np.zeros((40, 40), bool)
    expected[max(y0, 0) : max(0, y0 + h), max(x0, 0) : max(0, x0 + w)] = True
    if crop is None:
        assert not expected.any()
    else:
        top, left, mask = crop
        found = np.zeros((40, 40), bool)
        found[top : top + mask.shape[0], left : left + mask.shape[1]] = mask
        np.testing.assert_array_equal(found, expected)
