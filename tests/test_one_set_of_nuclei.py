"""One set of nuclei: every output of a prediction describes the same ids and pixels.

Generated dense, overlapping detections (as Mask R-CNN gives them on crowded nuclei) are
shown at a threshold; the label image, the table, the measurements and the submission
made from them must agree nucleus by nucleus, pixel by pixel.
"""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from napari_nuclei.core.export import image_entries
from napari_nuclei.core.predict.instances import Prediction

SIZE = 48


@st.composite
def overlapping_detections(draw):
    n = draw(st.integers(0, 40))
    scores, crops = [], []
    for _ in range(n):
        h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
        top, left = draw(st.integers(0, SIZE - h)), draw(st.integers(0, SIZE - w))
        kind = draw(st.sampled_from(["box", "disk", "noise"]))
        if kind == "box":
            mask = np.ones((h, w), bool)
        elif kind == "disk":
            yy, xx = np.mgrid[:h, :w]
            mask = ((yy - (h - 1) / 2) / max(h / 2, 0.5)) ** 2 + (
                (xx - (w - 1) / 2) / max(w / 2, 0.5)) ** 2 <= 1.0
        else:
            seed = draw(st.integers(0, 2**16))
            mask = np.random.default_rng(seed).random((h, w)) < 0.6
        if not mask.any():
            mask[0, 0] = True
        scores.append(draw(st.floats(0.05, 1.0)))
        crops.append((top, left, mask))
    return Prediction.from_unsorted(SIZE, SIZE, scores, crops)


@settings(max_examples=200, deadline=None)
@given(prediction=overlapping_detections(), threshold=st.floats(0.0, 1.0))
def test_labels_table_and_submission_are_one_set(prediction, threshold):
    shown = prediction.above(threshold)
    labels = shown.labels()
    ids = np.arange(1, len(shown) + 1)
    # Every nucleus listed is in the label image, and nothing else is.
    assert set(np.unique(labels[labels > 0]).tolist()) == set(ids.tolist())
    table = shown.features()
    counts = np.bincount(labels.ravel(), minlength=len(shown) + 1)[1:]
    np.testing.assert_array_equal(table["label"], ids)
    np.testing.assert_array_equal(table["area"], counts)
    # Each nucleus' own mask is exactly its pixels in the label image.
    for index, (top, left, mask) in enumerate(shown.crops):
        own = np.zeros_like(labels, dtype=bool)
        own[top : top + mask.shape[0], left : left + mask.shape[1]] = mask
        np.testing.assert_array_equal(own, labels == index + 1)
    # The submission decodes to the same pixels, with the same scores.
    entries = image_entries(1, prediction, threshold)
    assert len(entries) == len(shown)
    for index, entry in enumerate(entries):
        decoded = mask_utils.decode(entry["segmentation"]).astype(bool)
        np.testing.assert_array_equal(decoded, labels == index + 1)
        assert abs(entry["score"] - float(shown.scores[index])) < 1e-6


@settings(max_examples=100, deadline=None)
@given(prediction=overlapping_detections())
def test_measurements_describe_the_label_image(prediction):
    from napari_nuclei.core.slide.measure import measure_prediction

    shown = prediction.above(0.3)
    labels = shown.labels()
    image = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    rows, features = measure_prediction(shown, image)
    counts = np.bincount(labels.ravel(), minlength=len(shown) + 1)
    assert [row["id"] for row in rows] == list(range(1, len(shown) + 1))
    assert [row["area_px"] for row in rows] == counts[1:].tolist()
    assert len(features) == len(shown)
    # Each outline is valid and encloses exactly the nucleus's pixels in the label image.
    for index, line in enumerate(features):
        geometry = shapely.from_geojson(line)
        assert shapely.is_valid(geometry)
        assert shapely.area(geometry) == counts[index + 1]
        inside = shapely.contains_xy(geometry, *np.nonzero(labels == index + 1)[::-1]
                                     + np.array(0.5))
        assert inside.all()


def test_a_nucleus_hidden_by_better_ones_is_dropped_and_the_ids_stay_dense():
    full = np.ones((6, 6), bool)
    prediction = Prediction.from_unsorted(
        20, 20, [0.9, 0.8, 0.7], [(0, 0, full), (1, 1, np.ones((3, 3), bool)),
                                  (10, 10, full)])
    shown = prediction.above(0.5)
    assert len(shown) == 2 and shown.scores.tolist() == [np.float32(0.9), np.float32(0.7)]
    labels = shown.labels()
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    assert shown.features()["area"].tolist() == [36, 36]
