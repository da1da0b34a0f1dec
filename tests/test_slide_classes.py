"""A slide predicted by a model of several classes: every output names each nucleus'
class, the same in the table, the GeoJSON and the summary, and a window written back
keeps the classes of the nuclei it did not touch."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.jobs import drain
from napari_nuclei.core.models import RawDetections
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.summary import write_summary

CLASSES = ClassSet.from_names(["lymphocyte", "tumor"])
LARGE = 400  # blob pixels from which the stand-in calls a nucleus a tumour nucleus


class ClassBlobModel(BlobModel):
    """The blob stand-in, calling large blobs ``tumor`` and small ones ``lymphocyte``,
    with a class probability that grows with the distance from the size boundary."""

    classes = CLASSES

    def infer(self, bgr, resize=True):
        raw = super().infer(bgr, resize)
        areas = np.asarray([float(m.sum()) for m in raw.mask_probs > 0.5]) * (
            (raw.boxes[:, 2] - raw.boxes[:, 0]) * (raw.boxes[:, 3] - raw.boxes[:, 1])
            / max(1, raw.mask_probs.shape[1] * raw.mask_probs.shape[2]))
        tumour = areas >= LARGE
        sure = np.clip(0.5 + np.abs(areas - LARGE) / (2 * LARGE), 0.5, 0.99)
        probs = np.stack([np.where(tumour, 1 - sure, sure), np.where(tumour, sure, 1 - sure)],
                         axis=1).astype(np.float32)
        return RawDetections(raw.boxes, raw.scores, raw.mask_probs, raw.hit_cap,
                             tumour.astype(np.int64), probs)


@pytest.fixture(scope="module")
def classed(tmp_path_factory):
    base = tmp_path_factory.mktemp("slide_classes")
    slide = make_slide(base / "s.tif", size=768, seed=2)
    out = base / "out"
    result = drain(iter_predict_slide(
        ClassBlobModel(), slide, out,
        SlideOptions(tile_size=256, overlap=64, tissue_mask=False,
                     outputs=OutputOptions(csv=True, gzip=True))))
    return base, slide, out, result


def test_table_geojson_and_summary_name_each_class(classed):
    base, _, out, result = classed
    table = pq.read_table(out / "nuclei.parquet").to_pydict()
    assert table["class"] and set(table["class"]) == {"lymphocyte", "tumor"}
    assert all(0.5 <= p <= 1.0 for p in table["class_probability"])
    labels = np.asarray(zarr.open_group(str(out / "nuclei.ome.zarr"), mode="r")["s0"][:])
    ids = np.asarray(table["id"])
    areas = np.bincount(labels.ravel())[ids]
    # The stand-in's rule holds on the painted nuclei (their own pixels may be a few
    # fewer than the detection's, where a better neighbour took some).
    big = areas >= LARGE + 60
    assert all(c == "tumor" for c, b in zip(table["class"], big, strict=True) if b)
    with gzip.open(out / "nuclei.geojson.gz", "rt") as fh:
        features = json.load(fh)["features"]
    by_id = {int(f["properties"]["measurements"]["id"]): f for f in features}
    for nucleus_id, name, probability in zip(ids, table["class"], table["class_probability"],
                                             strict=True):
        feature = by_id[int(nucleus_id)]
        assert feature["properties"]["classification"] == {
            "name": name, "color": list(CLASSES.classes[CLASSES.index_of_name(name)].color)}
        assert feature["properties"]["measurements"]["class_probability"] == pytest.approx(
            probability)
    assert result.nuclei_per_class == {name: table["class"].count(name)
                                       for name in CLASSES.names}
    summary = write_summary(base / "summary.csv", [result]).read_text().splitlines()
    assert summary[0].endswith(",nuclei_lymphocyte,nuclei_tumor")
    assert summary[1].endswith(f",{result.nuclei_per_class['lymphocyte']},"
                               f"{result.nuclei_per_class['tumor']}")


def test_a_one_class_model_writes_the_files_it_always_wrote(classed, tmp_path):
    _, slide, _, _ = classed
    result = drain(iter_predict_slide(BlobModel(), slide, tmp_path / "one",
                                      SlideOptions(tile_size=256, overlap=64,
                                                   tissue_mask=False)))
    table = pq.read_table(tmp_path / "one" / "nuclei.parquet")
    assert "class" not in table.column_names and "class_probability" not in table.column_names
    assert result.nuclei_per_class == {}
    features = json.loads((tmp_path / "one" / "nuclei.geojson").read_text())["features"]
    assert {f["properties"]["classification"]["name"] for f in features} == {"Nucleus"}


def test_a_window_written_back_keeps_classes_and_leaves_new_nuclei_unclassified(classed):
    from napari_nuclei.core.slide.window import pull_window, write_back

    _, _, out, _ = classed
    window = pull_window(out, 0, 0, 256, 256)
    labels = window.labels.copy()
    ids = [int(i) for i in np.unique(labels) if i]
    removed = ids[0]
    labels[labels == removed] = 0
    labels[230:240, 230:240] = labels.max() + 1  # drawn by hand
    result = write_back(window, labels)
    assert removed in result.removed and result.added
    table = pq.read_table(out / "nuclei.parquet").to_pydict()
    rows = dict(zip(table["id"], zip(table["class"], table["class_probability"],
                                     strict=True), strict=True))
    assert removed not in rows
    for nucleus_id in result.added:
        name, probability = rows[nucleus_id]
        assert name is None and np.isnan(probability)
    untouched = [i for i in ids[1:] if i not in result.changed]
    assert untouched and all(rows[i][0] in CLASSES.names for i in untouched)
    with gzip.open(out / "nuclei.geojson.gz", "rt") as fh:
        features = {int(f["properties"]["measurements"]["id"]): f
                    for f in json.load(fh)["features"]}
    assert all("classification" not in features[i]["properties"] for i in result.added)
