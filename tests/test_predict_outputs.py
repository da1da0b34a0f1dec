"""The predict -> outputs generator: one bad file is skipped and named, stacks refused."""

import dataclasses

import numpy as np
import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.export import image_entries
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.nucleus_classes import ClassSet
from napari_nuclei.core.predict.outputs import (
    ImagePredicted,
    ImageSkipped,
    ImageSource,
    PredictSettings,
    TileProgress,
    iter_predict_sources,
    single_plane,
)


def test_single_plane_accepts_2d_and_rgb_and_names_stacks():
    assert single_plane(np.zeros((5, 6)), "a").shape == (5, 6)
    assert single_plane(np.zeros((5, 6, 3)), "a").shape == (5, 6, 3)
    with pytest.raises(InputError, match=r"stack.tif: has shape \(4, 5, 6\).*choose one plane"):
        single_plane(np.zeros((4, 5, 6)), "stack.tif")


def test_a_bad_file_is_skipped_and_the_batch_goes_on(tiny_run, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    sources = [ImageSource("broken", broken),
               ImageSource("fluo_r1c1", SAMPLE_DATA / "test" / "fluo_r1c1.png"),
               ImageSource("stack", None, np.zeros((3, 32, 32), np.uint8))]
    reports = []
    assert drain(iter_predict_sources(tiny_run[0], sources), reports.append) == 1
    assert [type(r) for r in reports] == [ImageSkipped, ImagePredicted, ImageSkipped]
    assert "broken.png" in reports[0].problem and "choose one plane" in reports[2].problem
    predicted = reports[1].prediction
    entries = image_entries(1, predicted, 0.3)
    assert len(entries) == len(predicted.above(0.3)) and all(e["score"] >= 0.3
                                                             for e in entries)


class CountingModel:
    """Stands in for the network: finds nothing, counts the tiles it is given."""

    min_size_test = 256
    detections_per_image = 1000
    score_thresh = None
    weights = None
    device = "cpu"
    classes = ClassSet.default()

    def __init__(self):
        self.tiles = 0

    def resize_scale(self, height, width):
        return 256 / max(height, width)

    def detect_down_to(self, score):
        pass

    def infer_batch(self, images, resize=True):
        return [self.infer(image, resize) for image in images]

    def infer(self, bgr, resize=True):
        from napari_nuclei.core.models import RawDetections

        self.tiles += 1
        return RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                             np.zeros((0, 28, 28), np.float32), False)


def test_a_large_image_reports_each_tile_and_stops_at_the_next_one():
    from napari_nuclei.core.predict.tiles import regular_grid

    big = ImageSource("big", None, np.zeros((600, 700, 3), np.uint8))
    tiles = len(regular_grid(600, 700, 256, 64))
    model = CountingModel()
    reports = []
    drain(iter_predict_sources(model, [big], tile_size=256, overlap=64), reports.append)
    assert [(r.tile, r.tiles) for r in reports[:-1]] == [(i, tiles) for i in
                                                         range(1, tiles + 1)]
    assert all(isinstance(r, TileProgress) and r.name == "big" for r in reports[:-1])
    assert isinstance(reports[-1], ImagePredicted) and model.tiles == tiles > 4
    # Closing the generator (what Stop does) ends the prediction at the next tile.
    model = CountingModel()
    job = iter_predict_sources(model, [big, big], tile_size=256, overlap=64)
    assert next(job).tile == 1 and next(job).tile == 2
    job.close()
    assert model.tiles == 2


def test_prediction_settings_give_options_with_zero_meaning_the_runs_own():
    assert PredictSettings().options() == {"device": "auto"}
    assert PredictSettings(tile_size=512, max_dets=2000, device="cpu").options() == {
        "device": "cpu", "tile_size": 512, "max_dets": 2000}
    # Every field says what it does and when to change it, for the form built from it.
    assert all(len(f.metadata["tooltip"]) > 30 and f.metadata["label"]
               for f in dataclasses.fields(PredictSettings))
