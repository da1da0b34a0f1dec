"""A trained Mask R-CNN as a nuclei model: load it and run it without detectron2's pasting.

detectron2's ``DefaultPredictor`` pastes every 28x28 mask into a full-frame bitmap (N x H
x W bytes: 0.7 GB for 700 nuclei on a 1000x1000 image). :meth:`NucleiModel.infer` stops
before that step and returns boxes, scores and the small mask probabilities; the caller
pastes each mask only inside its own box (:mod:`napari_nuclei.core.predict.paste`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import WeightsError
from ...nucleus_classes import ClassSet
from ..base import RawDetections


class NucleiModel:
    """A detectron2 Mask R-CNN in evaluation mode, with the test-time settings of a run.

    Build it with :func:`load_model`.
    """

    def __init__(self, cfg, model, weights: Path, classes: ClassSet | None = None):
        self.cfg = cfg
        self.model = model
        self.weights = weights
        self.classes = classes or ClassSet.default()

    @property
    def device(self) -> str:
        """Where the network runs (``cpu`` or ``cuda``)."""
        return str(self.cfg.MODEL.DEVICE)

    @property
    def min_size_test(self) -> int:
        return int(self.cfg.INPUT.MIN_SIZE_TEST)

    @property
    def max_size_test(self) -> int:
        return int(self.cfg.INPUT.MAX_SIZE_TEST)

    @property
    def detections_per_image(self) -> int:
        return int(self.cfg.TEST.DETECTIONS_PER_IMAGE)

    @property
    def score_thresh(self) -> float:
        """The test-time score threshold of the run (or the override it was loaded with)."""
        return float(self.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)

    def detect_down_to(self, score: float) -> None:
        """Let the network return detections down to ``score``.

        Tiles are stitched from every detection the network returns, so results filtered
        afterwards (:meth:`Prediction.above`) at a threshold are the same whether they come
        from the command line or from the dock's score slider only when both stitch from
        the same floor.
        """
        self.model.roi_heads.box_predictor.test_score_thresh = float(score)

    def resize_scale(self, height: int, width: int) -> float:
        """The factor ``ResizeShortestEdge`` would scale an image of this size by."""
        short, long = min(height, width), max(height, width)
        return min(self.min_size_test / short, self.max_size_test / long)

    def infer(self, bgr: np.ndarray, resize: bool = True) -> RawDetections:
        """Run the network on a uint8 BGR image.

        Parameters
        ----------
        bgr : numpy.ndarray
            ``(H, W, 3)`` uint8 (see :func:`napari_nuclei.core.normalize.to_model_input`).
        resize : bool
            Resize to the run's test size first (``INPUT.MIN_SIZE_TEST``) as detectron2
            does; False feeds the pixels at their own scale (tiles of a large image).

        Returns
        -------
        RawDetections
        """
        return self.infer_batch([bgr], resize)[0]

    def infer_batch(self, images: Sequence[np.ndarray],
                    resize: bool = True) -> list[RawDetections]:
        """Run the network on several uint8 BGR images in one forward pass.

        detectron2 pads the images of a batch to the largest; normalisation layers see
        the padding, so images of one size give the same detections batched as one at a
        time, and images of different sizes may not.

        Parameters
        ----------
        images : sequence of numpy.ndarray
            ``(H, W, 3)`` uint8 each.
        resize : bool
            As :meth:`infer`.

        Returns
        -------
        list of RawDetections
        """
        import torch
        from detectron2.data import transforms as T

        inputs, scales = [], []
        for bgr in images:
            height, width = bgr.shape[:2]
            pixels = bgr
            if resize:
                resizer = T.ResizeShortestEdge([self.min_size_test] * 2, self.max_size_test)
                pixels = resizer.get_transform(bgr).apply_image(bgr)
            tensor = torch.as_tensor(np.ascontiguousarray(pixels.transpose(2, 0, 1)),
                                     dtype=torch.float32)
            inputs.append({"image": tensor.to(self.cfg.MODEL.DEVICE), "height": height,
                           "width": width})
            scales.append((height, width, width / pixels.shape[1], height / pixels.shape[0]))
        with torch.inference_mode():
            outs = self.model.inference(inputs, do_postprocess=False)
            return [self._raw(out, *scale) for out, scale in zip(outs, scales, strict=True)]

    def _raw(self, out, height: int, width: int, scale_x: float,
             scale_y: float) -> RawDetections:
        # As detectron2's detector_postprocess: boxes to image scale, clipped, none empty.
        boxes = out.pred_boxes.clone()
        boxes.scale(scale_x, scale_y)
        boxes.clip((height, width))
        keep = boxes.nonempty()
        return RawDetections(
            boxes=boxes.tensor[keep].float().cpu().numpy(),
            scores=out.scores[keep].float().cpu().numpy(),
            mask_probs=out.pred_masks[keep][:, 0].float().cpu().clone(),
            hit_cap=len(out) >= self.detections_per_image,
            classes=out.pred_classes[keep].cpu().numpy().astype(np.int64),
            class_probs=(out.class_probs[keep].float().cpu().numpy()
                         if out.has("class_probs") else None),
        )


def _config_for(model: Path, preset: str | None, device: str):
    """The config of a run folder (rebuilt from its checked ``settings.json``), or of a
    preset for a bare weights file, with the weights file and the classes.

    A bare file without ``preset`` is built as the preset whose network the file holds,
    when its parameter names tell (else the ``seed`` network).
    """
    from ...runs import last_checkpoint, read_run, run_config
    from .architecture import presets_for
    from .config import build_config
    from .presets import preset_settings
    from .weights import check_architecture, inspect_weights

    if model.is_dir():
        record = read_run(model)
        weights = last_checkpoint(model)
        if weights is None:
            raise WeightsError(model, "holds no checkpoint yet")
        return run_config(record, str(weights), device), weights, record.classes
    if model.suffix not in (".pth", ".pkl", ".pt"):
        raise WeightsError(model, "expected a run folder or a .pth or .pkl weights file")
    facts = inspect_weights(model)
    if preset is None:
        matching = presets_for(facts.architecture) if facts.architecture else []
        preset = matching[0] if matching else "seed"
    settings = preset_settings(preset, weights=str(model))
    check_architecture(model, facts, settings)
    # A bare file names no classes: they are numbered as its classifier counts them.
    count = facts.num_classes or 1
    classes = (ClassSet.default() if count == 1
               else ClassSet.from_names(f"class {i}" for i in range(1, count + 1)))
    cfg = build_config(settings, model.parent, str(model), facts.group_norm, device=device,
                       num_classes=count)
    return cfg, model, classes


def _check_test_options(min_size_test, score_thresh, max_dets) -> None:
    """Refuse test-time overrides that cannot work, before the model is built."""
    from ...errors import OptionError

    for name, value, low in (("test_size", min_size_test, 32),
                             ("max_dets", max_dets, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise OptionError(name, f"must be a whole number of at least {low} (got {value!r})")
    if score_thresh is not None and not (isinstance(score_thresh, (int, float))
                                         and 0.0 <= score_thresh <= 1.0):
        raise OptionError("score_thresh", f"must be between 0 and 1 (got {score_thresh!r})")


def load_model(
    model: str | Path,
    preset: str | None = None,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    min_size_test: int | None = None,
    score_thresh: float | None = None,
    max_dets: int | None = None,
) -> NucleiModel:
    """Load a model for prediction.

    Parameters
    ----------
    model : str or Path
        A training run folder (its ``settings.json`` and last checkpoint), or a weights
        file (``.pth``/``.pkl``), built with ``preset``'s architecture.
    preset : str, optional
        Architecture of a bare weights file (default ``seed``: X101-FPN).
    checkpoint : str or Path, optional
        A particular checkpoint of the run (a file name within the run folder, or a path),
        instead of the last.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    min_size_test, score_thresh, max_dets : optional
        Override the run's test-time input size, score threshold and detection cap.

    Returns
    -------
    NucleiModel

    Raises
    ------
    WeightsError
        When the folder or file cannot be used.
    """
    from detectron2.modeling import build_model

    from .architecture import describe_config
    from .checkpointer import NucleiCheckpointer
    from .config import resolve_device
    from .roi_heads import use_chunked_mask_head

    _check_test_options(min_size_test, score_thresh, max_dets)
    model = Path(model).expanduser()
    if not model.exists():
        raise WeightsError(model, "no such run folder or weights file")
    cfg, weights, classes = _config_for(model, preset, device)
    if checkpoint is not None:
        weights = Path(checkpoint)
        if not weights.is_file() and not weights.is_absolute():
            weights = model / checkpoint  # a file name within the run folder
        if not weights.is_file():
            raise WeightsError(weights, "checkpoint not found")
    cfg.defrost()
    cfg.MODEL.DEVICE = resolve_device(device)
    if min_size_test is not None:
        cfg.INPUT.MIN_SIZE_TEST = min_size_test
    if score_thresh is not None:
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_thresh
    if max_dets is not None:
        cfg.TEST.DETECTIONS_PER_IMAGE = max_dets
        topk = max(cfg.MODEL.RPN.POST_NMS_TOPK_TEST, 2 * max_dets)
        cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = topk
    cfg.MODEL.WEIGHTS = str(weights)
    use_chunked_mask_head(cfg)
    cfg.freeze()
    network = build_model(cfg)
    # Reads the file without running code from it; refuses another architecture.
    NucleiCheckpointer(network, architecture=describe_config(cfg)).load(str(weights))
    network.eval()
    if cfg.MODEL.DEVICE == "cpu":
        # NHWC convolutions are faster on CPU (about 1.2x on the backbone here).
        import torch

        network.to(memory_format=torch.channels_last)
    return NucleiModel(cfg, network, weights, classes)
