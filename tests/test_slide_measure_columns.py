"""The nucleus table's columns and GeoJSON lines, measured for a whole tile at once, pinned
to a plain per-nucleus computation (scikit-image regionprops, OpenCV on each crop alone)."""

import json
import math

import cv2
import numpy as np
import pytest
import shapely
from skimage.measure import regionprops

from napari_nuclei.core.slide.measure import (
    NUCLEUS_CLASS,
    Scale,
    feature_lines,
    measure_nuclei,
    table_columns,
    table_rows,
)
from napari_nuclei.core.slide.outputs import table_schema, write_features_part, write_table_part


def _masks() -> list[np.ndarray]:
    """Crops of many kinds: wavy ellipses, a ring with a hole, two parts, a one-pixel
    neck, a line, single pixels, a full box, a tall one."""
    yy, xx = np.mgrid[:40, :50]
    masks = [((yy - 20) / a) ** 2 + ((xx - 25) / b) ** 2 + 0.2 * np.sin(xx / 3) <= 1
             for a, b in ((12, 17), (6, 19), (15, 15))]
    ring = np.zeros((21, 21), bool)
    ring[((yy[:21, :21] - 10) ** 2 + (xx[:21, :21] - 10) ** 2) <= 100] = True
    ring[((yy[:21, :21] - 10) ** 2 + (xx[:21, :21] - 10) ** 2) <= 16] = False
    two = np.zeros((9, 20), bool)
    two[1:8, 0:7] = True
    two[2:5, 12:20] = True  # a second, smaller part
    neck = np.zeros((7, 13), bool)
    neck[:, :6] = True
    neck[:, 7:] = True
    neck[3, 6] = True  # joined by one pixel: a self-touching outline
    diagonal = np.eye(6, dtype=bool)
    line = np.ones((1, 9), bool)
    rng = np.random.default_rng(3)
    blobs = [rng.random((h, w)) < 0.7 for h, w in ((12, 15), (30, 8), (5, 5))]
    for blob in blobs:  # tight crops, as the engine keeps them
        blob[0, :] |= blob[1, :] | True
        blob[:, 0] |= True
    return [*masks, ring, two, neck, diagonal, line, np.ones((1, 1), bool),
            np.ones((2, 1), bool), np.ones((4, 6), bool), np.ones((120, 3), bool), *blobs]


def _tile(masks, seed=0):
    """Nuclei placed on a tile (some overlapping, as detections do) and the tile's pixels."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    nuclei, pixels = [], []
    for k, mask in enumerate(masks):
        top = int(rng.integers(0, 300 - mask.shape[0]))
        left = int(rng.integers(0, 400 - mask.shape[1]))
        nuclei.append((1000 + k, float(rng.random()), top, left, mask))
        pixels.append(rgb[top : top + mask.shape[0], left : left + mask.shape[1]])
    return nuclei, pixels


def _qupath_densities(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel hematoxylin and eosin OD, written out from the definition: channel OD
    log10(255 / max(I, 1)), unmixed by the unit H&E-default vectors and their residual."""
    h = np.array([0.65111, 0.70119, 0.29049])
    e = np.array([0.2159, 0.8012, 0.5581])
    h, e = h / np.linalg.norm(h), e / np.linalg.norm(e)
    r = np.cross(h, e)
    stains = np.stack([h, e, r / np.linalg.norm(r)])  # OD = C @ stains
    od = np.log10(255.0 / np.maximum(rgb.astype(np.float64), 1.0))
    return np.linalg.solve(stains.T, od.T).T[:, :2]


def test_stain_densities_recover_what_made_the_pixel():
    from napari_nuclei.core.slide.measure import stain_densities

    h = np.array([0.65111, 0.70119, 0.29049]) / np.linalg.norm([0.65111, 0.70119, 0.29049])
    e = np.array([0.2159, 0.8012, 0.5581]) / np.linalg.norm([0.2159, 0.8012, 0.5581])
    for c_h, c_e in [(0.5, 0.0), (0.0, 0.3), (0.4, 0.2), (1.2, 0.1)]:
        pixel = np.round(255 * 10 ** -(c_h * h + c_e * e)).astype(np.uint8)
        assert stain_densities(pixel) == pytest.approx([c_h, c_e], abs=0.01)
    assert stain_densities(np.array([255, 255, 255])).tolist() == [0.0, 0.0]
    # A dark nucleus pixel: densities of order 0.5, not rgb2hed's hundredths.
    assert stain_densities(np.array([60, 40, 150]))[0] > 0.4


def _hull_pixels(mask: np.ndarray) -> int:
    """Pixels of the convex hull through the pixel centres, for one crop alone."""
    pixels = mask.astype(np.uint8)
    hull = np.zeros_like(pixels)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(pixels)), 1)
    return int(hull.sum())


@pytest.mark.parametrize(("factor", "mpp", "stain"), [(1.0, 0.25, "he"), (0.5, None, "he"),
                                                      (2.0, 0.5, "intensity")])
def test_columns_equal_regionprops_of_each_nucleus(factor, mpp, stain):
    nuclei, pixels = _tile(_masks())
    columns, outlines = measure_nuclei(nuclei, pixels, Scale(factor, mpp), stain)
    assert list(columns) == list(table_columns(stain)) and len(outlines) == len(nuclei)
    assert columns["id"].dtype == np.uint32
    assert all(columns[name].dtype == np.float64 for name in table_columns(stain)[1:])
    for k, (nucleus_id, score, top, left, mask) in enumerate(nuclei):
        props = regionprops(mask.astype(np.uint8))[0]
        row = {name: values[k] for name, values in columns.items()}
        assert row["id"] == nucleus_id and row["score"] == score
        cy, cx = props.centroid
        expected = {
            "centroid_x_px": (left + cx + 0.5) / factor,
            "centroid_y_px": (top + cy + 0.5) / factor,
            "bbox_x_px": left / factor, "bbox_y_px": top / factor,
            "bbox_w_px": mask.shape[1] / factor, "bbox_h_px": mask.shape[0] / factor,
            "area_px": props.area / factor**2,
            "perimeter_px": props.perimeter / factor,
            "major_axis_px": props.axis_major_length / factor,
            "minor_axis_px": props.axis_minor_length / factor,
        }
        for name, value in expected.items():
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-9), (k, name)
        assert row["eccentricity"] == pytest.approx(props.eccentricity, abs=1e-6), k
        assert row["solidity"] == mask.sum() / _hull_pixels(mask), k
        assert row["solidity"] == pytest.approx(props.solidity, abs=0.35 if mask.sum() < 20
                                                else 0.05), k
        if mpp:
            assert row["centroid_x_um"] == pytest.approx(expected["centroid_x_px"] * mpp)
            assert row["area_um2"] == pytest.approx(expected["area_px"] * mpp**2)
        else:
            assert math.isnan(row["centroid_y_um"]) and math.isnan(row["area_um2"])
        under = pixels[k][mask]
        if stain == "he":
            means = _qupath_densities(under).mean(axis=0)
            assert [row["hematoxylin_od"], row["eosin_od"]] == pytest.approx(means, rel=1e-9)
        else:
            assert ([row["intensity_r"], row["intensity_g"], row["intensity_b"]]
                    == pytest.approx(under.mean(axis=0), rel=1e-12))


def _pixel_squares(mask: np.ndarray, top: int, left: int, factor: float):
    """The union of a crop's pixels as unit squares, one square at a time: what QuPath
    counts as the nucleus's area."""
    ys, xs = np.nonzero(mask)
    squares = [shapely.box((left + x) / factor, (top + y) / factor, (left + x + 1) / factor,
                           (top + y + 1) / factor) for y, x in zip(ys, xs, strict=True)]
    return shapely.union_all(squares)


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_outlines_and_geojson_lines_match_each_crop_alone(factor, tmp_path):
    masks = _masks()
    nuclei, pixels = _tile(masks, seed=1)
    columns, outlines = measure_nuclei(nuclei, pixels, Scale(factor, None), "he")
    lines = feature_lines(columns, outlines)
    write_features_part(tmp_path / "part.geojsonl", lines)
    written = (tmp_path / "part.geojsonl").read_text("utf-8").splitlines()
    assert written == lines
    rows = table_rows(columns)
    kinds = {"Polygon": 0, "MultiPolygon": 0}
    for k, (line, row, (_, _, top, left, mask)) in enumerate(zip(written, rows, nuclei,
                                                                 strict=True)):
        feature = json.loads(line)
        # The same text as json.dumps of the feature dict, unknown (NaN) values left out.
        expected = {"type": "Feature", "geometry": feature["geometry"],
                    "properties": {"objectType": "detection", "classification": NUCLEUS_CLASS,
                                   "measurements": {name: value for name, value in row.items()
                                                    if not (isinstance(value, float)
                                                            and math.isnan(value))}}}
        assert line == json.dumps(expected, separators=(",", ":")), k
        assert "centroid_x_um" not in feature["properties"]["measurements"]
        geometry = shapely.geometry.shape(feature["geometry"])
        kinds[geometry.geom_type] += 1
        # Valid for GEOS (as JTS, QuPath's), on pixel edges: the area is the pixel count.
        assert geometry.is_valid, k
        assert geometry.area == pytest.approx(row["area_px"], rel=1e-12), k
        assert geometry.equals(_pixel_squares(mask, top, left, factor)), k
        for polygon in shapely.get_parts(geometry):
            assert shapely.is_ccw(polygon.exterior) and not any(
                shapely.is_ccw(ring) for ring in polygon.interiors), k
    assert kinds["Polygon"] >= 7 and kinds["MultiPolygon"] >= 1
    ring = next(k for k, m in enumerate(masks) if m.shape == (21, 21))
    assert len(json.loads(outlines[ring])["coordinates"]) == 2  # the hole is kept
    neck = next(k for k, m in enumerate(masks) if m.shape == (7, 13))
    assert shapely.from_geojson(outlines[neck]).is_valid  # a one-pixel neck too


def test_table_part_from_columns_reads_back(tmp_path):
    import pyarrow as pa

    nuclei, pixels = _tile(_masks()[:4])
    columns, _ = measure_nuclei(nuclei, pixels, Scale(1.0, 0.25), "he")
    write_table_part(tmp_path / "part.arrow", columns, "he")
    with pa.memory_map(str(tmp_path / "part.arrow")) as source:
        table = pa.ipc.open_file(source).read_all()
    assert table.schema == table_schema("he")
    assert table.to_pylist() == table_rows(columns)
    empty, outlines = measure_nuclei([], [], Scale(1.0, None), "intensity")
    assert outlines == [] and all(len(v) == 0 for v in empty.values())
    write_table_part(tmp_path / "empty.arrow", empty, "intensity")
    with pa.memory_map(str(tmp_path / "empty.arrow")) as source:
        assert pa.ipc.open_file(source).read_all().num_rows == 0
    assert feature_lines(empty, outlines) == []
