"""A slide's label image, table and GeoJSON describe one set of nuclei, pixel for pixel,
however densely the network's detections overlap."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import shapely.geometry
import torch
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.models import RawDetections
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions


class OverlappingModel(BlobModel):
    """Each dark blob twice: itself, and grown by ``grow`` pixels at another score, so
    that detections overlap their neighbours' as a network's dense detections do.

    Scores follow the blob's area only, so equal blobs tie (the id breaks the tie).
    """

    def __init__(self, grow: int, grown_first: bool):
        super().__init__(min_area=30)
        self.grow, self.grown_first = grow, grown_first

    def infer(self, bgr, resize=True):
        import cv2

        self.tiles_seen += 1
        height, width = bgr.shape[:2]
        dark = (bgr.mean(axis=2) < self.threshold).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=4)
        boxes, probs, scores = [], [], []
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < self.min_area:
                continue
            base = round(0.4 + 0.5 * min(1.0, area / 4000), 2)
            g = self.grow
            x0, y0 = max(0, x - g), max(0, y - g)
            x1, y1 = min(width, x + w + g), min(height, y + h + g)
            blob = labels[y0:y1, x0:x1] == i
            grown = ndimage.binary_dilation(blob, iterations=g) if g else blob
            for mask, box, score in (
                    (blob[y - y0 : y - y0 + h, x - x0 : x - x0 + w], (x, y, x + w, y + h), base),
                    (grown, (x0, y0, x1, y1),
                     base + (0.05 if self.grown_first else -0.05))):
                crop = torch.from_numpy(mask.astype(np.float32))
                probs.append(torch.nn.functional.interpolate(
                    crop[None, None], (48, 48), mode="bilinear", align_corners=False)[0, 0])
                boxes.append(box)
                scores.append(score)
        order = np.argsort(-np.asarray(scores), kind="stable")
        return RawDetections(
            np.asarray(boxes, np.float32).reshape(-1, 4)[order],
            np.asarray(scores, np.float32)[order],
            torch.stack(probs)[torch.as_tensor(order)] if probs else torch.zeros((0, 48, 48)),
            False)


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("dense") / "dense.tif", size=768, seed=1)


def _check_one_set(out) -> int:
    labels = np.asarray(zarr.open_group(str(out / "nuclei.ome.zarr"), mode="r")["s0"][:])
    table = pq.read_table(out / "nuclei.parquet").to_pydict()
    ids = np.asarray(table["id"], np.int64)
    label_ids, counts = np.unique(labels[labels > 0], return_counts=True)
    assert len(ids) == len(set(ids.tolist())), "an id appears twice in the table"
    assert sorted(ids.tolist()) == label_ids.tolist(), "table and labels list other nuclei"
    pixels = dict(zip(label_ids.tolist(), counts.tolist(), strict=True))
    centres = ndimage.center_of_mass(labels > 0, labels, label_ids)
    for row, nucleus in enumerate(ids.tolist()):
        assert table["area_px"][row] == pixels[nucleus]
        # Centroids are given in level-0 coordinates of pixel edges: a pixel's centre
        # is at +0.5.
        cy, cx = centres[label_ids.tolist().index(nucleus)]
        assert table["centroid_x_px"][row] == pytest.approx(cx + 0.5, abs=1e-6)
        assert table["centroid_y_px"][row] == pytest.approx(cy + 0.5, abs=1e-6)
    with gzip.open(out / "nuclei.geojson.gz", "rt", encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    assert len(features) == len(ids)
    for feature in features:
        nucleus = feature["properties"]["measurements"]["id"]
        outline = shapely.geometry.shape(feature["geometry"])
        assert outline.is_valid
        assert outline.area == pytest.approx(pixels[nucleus], abs=1e-6)
    return len(ids)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grow=st.integers(0, 6), grown_first=st.booleans(),
       tile=st.sampled_from([192, 256, 320]), overlap=st.sampled_from([48, 64, 96]))
def test_labels_table_and_geojson_are_one_set(slide, tmp_path_factory, grow, grown_first,
                                              tile, overlap):
    out = tmp_path_factory.mktemp("out")
    model = OverlappingModel(grow, grown_first)
    options = SlideOptions(tile_size=tile, overlap=overlap, tissue_mask=False,
                           outputs=OutputOptions(gzip=True))
    result = drain(iter_predict_slide(model, slide, out, options))
    assert result.nuclei == _check_one_set(out) > 0


def test_overlapping_detections_are_resolved_once(slide, tmp_path):
    """Grown copies overlap their neighbours: the table counts the label image's nuclei,
    not the network's detections."""
    model = OverlappingModel(grow=5, grown_first=True)
    result = drain(iter_predict_slide(
        model, slide, tmp_path / "o",
        SlideOptions(tile_size=256, overlap=64, tissue_mask=False,
                     outputs=OutputOptions(gzip=True))))
    counted = _check_one_set(tmp_path / "o")
    plain = drain(iter_predict_slide(
        BlobModel(), slide, tmp_path / "p",
        SlideOptions(tile_size=256, overlap=64, tissue_mask=False)))
    # Each blob is detected twice; the grown copy wins the blob's pixels, so the plain
    # view of every blob is hidden and the nuclei are as many as the blobs, not twice.
    assert counted == result.nuclei
    assert counted <= plain.nuclei + plain.nuclei // 10


def test_a_job_measured_by_an_earlier_version_is_not_continued(slide, tmp_path):
    out = tmp_path / "old"
    options = SlideOptions(tile_size=256, overlap=64, tissue_mask=False)
    drain(iter_predict_slide(BlobModel(), slide, out, options))
    plan_path = out / "job" / "job.json"
    plan = json.loads(plan_path.read_text())
    del plan["measured_on"]
    plan_path.write_text(json.dumps(plan))
    from napari_nuclei.core.errors import InputError

    with pytest.raises(InputError, match="made by an earlier version"):
        drain(iter_predict_slide(BlobModel(), slide, out, options))


def test_an_image_and_the_same_pixels_read_as_a_slide_give_the_same_nuclei(tmp_path):
    """Images in tiles and slides share one tiling and stitching: the same pixels give
    the same nuclei, pixel for pixel."""
    from PIL import Image
    from slide_helpers import he_tile

    from napari_nuclei.core.predict.predictor import predict_image

    image = he_tile()
    png = tmp_path / "tile.png"
    Image.fromarray(image).save(png)
    model = OverlappingModel(grow=3, grown_first=False)
    from_image = predict_image(model, image, tile_size=256, overlap=64).above(0.0).labels()
    drain(iter_predict_slide(model, png, tmp_path / "slide",
                             SlideOptions(tile_size=256, overlap=64, tissue_mask=False)))
    from_slide = np.asarray(zarr.open_group(str(tmp_path / "slide" / "nuclei.ome.zarr"),
                                            mode="r")["s0"][:])
    assert from_image.shape == from_slide.shape
    np.testing.assert_array_equal(from_image > 0, from_slide > 0)
    # The ids differ (an image numbers by score, a slide by tile); the nuclei do not.
    pairs = np.unique(np.stack([from_image[from_image > 0], from_slide[from_slide > 0]]),
                      axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1] > 100
