"""The model contract: what prediction asks of a model, and the registry of model kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from slide_helpers import BlobModel
from slide_jobs_for_child import SlowBlobModel
from test_predict import OracleModel
from test_predict_outputs import CountingModel

from napari_nuclei.core.errors import OptionError
from napari_nuclei.core.models import (
    DEFAULT_KIND,
    NucleiModelProtocol,
    RawDetections,
    base,
    load_model,
    model_kinds,
    model_loader,
    register_model_kind,
)


@pytest.mark.parametrize("stand_in", [
    BlobModel(), SlowBlobModel(), OracleModel(np.zeros((8, 8), np.int32)), CountingModel(),
], ids=lambda model: type(model).__name__)
def test_the_stand_in_models_keep_the_contract(stand_in):
    assert isinstance(stand_in, NucleiModelProtocol)


def test_an_object_missing_part_of_the_contract_does_not_keep_it():
    class NoCap:
        min_size_test = 256
        score_thresh = weights = None
        device = "cpu"

        def resize_scale(self, height, width):
            return 1.0

        def infer(self, bgr, resize=True):
            return None

        def infer_batch(self, images, resize=True):
            return []

        def detect_down_to(self, score):
            pass

    assert not isinstance(NoCap(), NucleiModelProtocol)


@pytest.mark.slow
def test_the_tiny_mask_rcnn_keeps_the_contract_and_gives_one_class(tiny_run):
    from conftest import SAMPLE_DATA
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.normalize import to_model_input

    torch.set_num_threads(1)
    model = load_model(tiny_run[0], device="cpu", score_thresh=0.0)
    assert isinstance(model, NucleiModelProtocol)
    assert model.device == "cpu" and model.weights.parent == tiny_run[0]
    image = to_model_input(read_image(SAMPLE_DATA / "test" / "he_tile_1000.png"))
    raw = model.infer(image[:256, :256], resize=False)
    assert len(raw.scores) > 0
    assert raw.classes.dtype == np.int64 and not raw.classes.any()
    np.testing.assert_array_equal(raw.class_probs, np.ones((len(raw.scores), 1)))


def test_detections_default_to_one_class_of_probability_one():
    scores = np.asarray([0.9, 0.4], np.float32)
    raw = RawDetections(np.zeros((2, 4), np.float32), scores, torch.zeros((2, 28, 28)), False)
    np.testing.assert_array_equal(raw.classes, [0, 0])
    assert raw.class_probs.shape == (2, 1) and raw.class_probs.dtype == np.float32
    np.testing.assert_array_equal(raw.class_probs[:, 0], [1.0, 1.0])
    assert raw.class_probability(1) == 1.0
    empty = RawDetections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          torch.zeros((0, 28, 28)), False)
    assert empty.classes.shape == (0,) and empty.class_probs.shape == (0, 1)
    given = RawDetections(np.zeros((2, 4), np.float32), scores, torch.zeros((2, 28, 28)),
                          False, classes=np.asarray([1, 0]),
                          class_probs=np.asarray([[0.05, 0.9], [0.4, 0.3]], np.float32))
    np.testing.assert_array_equal(given.classes, [1, 0])
    assert given.class_probs.shape == (2, 2)
    assert given.class_probability(0) == pytest.approx(0.9)
    unsure = RawDetections(np.zeros((2, 4), np.float32), scores, torch.zeros((2, 28, 28)),
                           False, classes=np.asarray([2, 0]))
    assert unsure.class_probs.shape == (2, 3)
    assert unsure.class_probability(0) == unsure.class_probability(1) == 1.0


@pytest.fixture
def kinds(monkeypatch):
    """The registry, restored after the test."""
    monkeypatch.setattr(base, "_KINDS", dict(base._KINDS))


def test_mask_rcnn_is_the_registered_default_kind():
    from napari_nuclei.core.models.maskrcnn import load_maskrcnn

    assert DEFAULT_KIND == "maskrcnn" and model_kinds()[0] == DEFAULT_KIND
    assert model_loader() is load_maskrcnn


def test_a_registered_kind_is_loaded_by_name(kinds, tmp_path):
    seen = []

    @register_model_kind("blobs")
    def load_blobs(model, threshold=110):
        seen.append((model, threshold))
        return BlobModel(threshold)

    assert "blobs" in model_kinds() and model_loader("blobs") is load_blobs
    loaded = load_model(tmp_path, threshold=90, kind="blobs")
    assert isinstance(loaded, BlobModel) and loaded.threshold == 90
    assert seen == [(tmp_path, 90)]
    # Registering the same loader again changes nothing; another one under the name fails.
    register_model_kind("blobs")(load_blobs)
    with pytest.raises(ValueError, match="registered already"):
        register_model_kind("blobs")(lambda model: BlobModel())


def test_an_unknown_kind_is_an_option_error_naming_the_kinds(kinds, tmp_path):
    with pytest.raises(OptionError, match="must be one of maskrcnn") as caught:
        load_model(tmp_path, kind="unet")
    assert caught.value.option == "model_kind"


@pytest.mark.slow
def test_prediction_builds_the_chunked_mask_head_and_chunks_change_nothing(tiny_run):
    from conftest import SAMPLE_DATA
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.models.maskrcnn.config import build_config
    from napari_nuclei.core.models.maskrcnn.presets import preset_settings
    from napari_nuclei.core.models.maskrcnn.roi_heads import (
        MASK_HEAD_CHUNK,
        ChunkedMaskROIHeads,
    )
    from napari_nuclei.core.normalize import to_model_input

    torch.set_num_threads(1)
    # Training builds detectron2's own heads; prediction selects the chunked ones.
    cfg = build_config(preset_settings("tiny"), tiny_run[0], device="cpu")
    assert cfg.MODEL.ROI_HEADS.NAME == "StandardROIHeads"
    model = load_model(tiny_run[0], device="cpu", score_thresh=0.0, max_dets=250)
    heads = model.model.roi_heads
    assert type(heads) is ChunkedMaskROIHeads
    assert model.cfg.MODEL.ROI_HEADS.NAME == "ChunkedMaskROIHeads"
    image = to_model_input(read_image(SAMPLE_DATA / "test" / "he_tile_1000.png"))
    tiles = [np.ascontiguousarray(image[:384, :384]),
             np.ascontiguousarray(image[300:684, 500:884])]
    chunked = model.infer_batch(tiles, resize=False)
    heads.mask_chunk = 10_000
    whole = model.infer_batch(tiles, resize=False)
    for one, other in zip(chunked, whole, strict=True):
        assert len(one.scores) > MASK_HEAD_CHUNK
        np.testing.assert_array_equal(one.boxes, other.boxes)
        np.testing.assert_array_equal(one.scores, other.scores)
        np.testing.assert_allclose(one.mask_probs.numpy(), other.mask_probs.numpy(),
                                   atol=1e-5)
