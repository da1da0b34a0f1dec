"""Mask R-CNN run settings and their presets (no detectron2 import: the GUI reads these fast).

A :class:`TrainSettings` holds the values a biologist may want to change; it maps onto a
detectron2 config in :mod:`napari_nuclei.core.models.maskrcnn.config`. Every run saves both.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from ...errors import OptionError

# Architecture changes that make the smallest network that still trains for real.
_TINY_MODEL = (
    ("MODEL.RESNETS.DEPTH", 18),
    ("MODEL.RESNETS.RES2_OUT_CHANNELS", 64),
    ("MODEL.FPN.OUT_CHANNELS", 64),
    ("MODEL.ROI_BOX_HEAD.FC_DIM", 256),
    ("MODEL.ROI_BOX_HEAD.CONV_DIM", 64),
    ("MODEL.ROI_MASK_HEAD.CONV_DIM", 64),
    ("MODEL.ROI_MASK_HEAD.NUM_CONV", 2),
    ("MODEL.RPN.BATCH_SIZE_PER_IMAGE", 128),
)


@dataclass
class TrainSettings:
    """What a training run does. Every field can be overridden from the CLI or the GUI.

    Attributes
    ----------
    preset : str
        Name of the preset the values started from.
    config_file : str
        detectron2 model-zoo config the model is built from.
    weights : str
        ``zoo`` (model-zoo COCO weights for ``config_file``), a ``.pth``/``.pkl`` file,
        a previous run folder (start from its last checkpoint), or ``none``.
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    max_iter, base_lr, steps, gamma, warmup_iters
        The solver schedule (iterations count images per batch, not epochs).
    min_size_train, max_size_train : tuple of int, int
        Shortest-edge resize at training time (one size is picked per image).
    ims_per_batch : int
        Images per step, over all processes.
    batch_size_per_image : int
        Region proposals sampled per image for the box and mask heads.
    checkpoint_period, eval_period : int
        Iterations between checkpoints and between validation runs (0: no validation).
    min_size_test, max_size_test, score_thresh_test, detections_per_image
        Prediction settings saved with the model.
    anchor_sizes : tuple of int
        One anchor size per FPN level (P2..P6), in input pixels.
    num_workers : int
        Data-loading processes.
    val_fraction : float
        Share of the training images held out for validation when no separate
        validation folder is given.
    seed : int
        Random seed (the split and detectron2's own seeding).
    keep_checkpoints : int
        Periodic checkpoints kept on disk, newest first (0 keeps all); the best by
        validation AP, the last and the final model always stay.
    mpp : float or None
        Pixel size of the training images in microns per pixel, when known: whole
        slides are predicted at this pixel size.
    class_balance : float
        0 draws training images uniformly. Above 0, images holding rare classes are
        drawn more often: detectron2's repeat-factor sampling, where a class found in
        fewer than this fraction of the images repeats them (LVIS's rule, threshold t:
        each image repeats max(1, sqrt(t / f)) times for its rarest class of frequency f).
    model_options : tuple of (str, object)
        Extra detectron2 config keys, applied last.
    """

    preset: str = "tiny"
    config_file: str = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
    weights: str = "zoo"
    device: str = "auto"
    max_iter: int = 5000
    base_lr: float = 0.00025
    steps: tuple[int, ...] = (3000, 3500, 4500)
    gamma: float = 0.1
    warmup_iters: int = 1000
    min_size_train: tuple[int, ...] = (1000,)
    max_size_train: int = 1333
    ims_per_batch: int = 1
    batch_size_per_image: int = 256
    checkpoint_period: int = 150
    eval_period: int = 150
    min_size_test: int = 1000
    max_size_test: int = 1333
    score_thresh_test: float = 0.7
    detections_per_image: int = 1000
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    num_workers: int = 2
    val_fraction: float = 0.0
    seed: int = 0
    keep_checkpoints: int = 2
    mpp: float | None = None
    class_balance: float = 0.0
    model_options: tuple[tuple[str, object], ...] = field(default=())

    def to_json(self) -> dict:
        """The settings as a JSON-ready dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainSettings:
        """Rebuild settings saved by :meth:`to_json`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("steps", "min_size_train", "anchor_sizes"):
            if key in values:
                values[key] = tuple(values[key])
        if "model_options" in values:
            values["model_options"] = tuple(
                tuple(pair) if isinstance(pair, list) else pair
                for pair in values["model_options"])
        return cls(**values)

    def validate(self) -> TrainSettings:
        """Check that every value can work, before anything is created.

        Returns
        -------
        TrainSettings
            ``self``, for chaining.

        Raises
        ------
        OptionError
            Naming the first setting that cannot work and why.
        """
        for name, low, high in _INTEGER_RANGES:
            _check_integer(name, getattr(self, name), low, high)
        for name in ("base_lr", "gamma"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise OptionError(name, f"must be a positive number (got {value!r})")
        for name in ("steps", "min_size_train", "anchor_sizes"):
            values = getattr(self, name)
            if name != "steps" and not values:
                raise OptionError(name, "needs at least one value")
            for value in values:
                _check_integer(name, value, 1, None)
        if list(self.steps) != sorted(self.steps):
            raise OptionError("steps", f"must increase (got {list(self.steps)})")
        if self.max_size_train < max(self.min_size_train):
            raise OptionError("max_size_train", "must be at least the largest training size "
                              f"({max(self.min_size_train)})")
        if self.max_size_test < self.min_size_test:
            raise OptionError("max_size_test", f"must be at least the test size "
                              f"({self.min_size_test})")
        score = self.score_thresh_test
        if not _is_number(score) or not 0.0 <= score <= 1.0:
            raise OptionError("score_thresh_test", f"must be between 0 and 1 (got {score!r})")
        fraction = self.val_fraction
        if not _is_number(fraction) or not 0.0 <= fraction < 1.0:
            raise OptionError("val_fraction", f"must be at least 0 and below 1 (got {fraction!r})")
        balance = self.class_balance
        if not _is_number(balance) or not 0.0 <= balance <= 1.0:
            raise OptionError("class_balance", f"must be from 0 (off) to 1 (got {balance!r})")
        if self.mpp is not None and (not _is_number(self.mpp) or not math.isfinite(self.mpp)
                                     or self.mpp <= 0):
            raise OptionError("mpp", f"must be a positive number of microns (got {self.mpp!r})")
        if self.device not in ("auto", "cpu", "cuda"):
            raise OptionError("device", f"must be auto, cpu or cuda (got {self.device!r})")
        self._validate_model()
        return self

    def _validate_model(self) -> None:
        """Check what builds the network: settings read back from a shared run folder
        decide which config file detectron2 reads and which keys it sets."""
        if self.preset not in PRESETS:
            raise OptionError("preset", f"must be one of {', '.join(PRESETS)} "
                              f"(got {self.preset!r})")
        # Only the presets' model-zoo files: a free name could lead detectron2's YAML
        # reader (which may run code) to any file on disk.
        if self.config_file not in MODEL_ZOO_CONFIGS:
            raise OptionError("config_file", f"must be one of the presets' model-zoo configs "
                              f"({', '.join(sorted(MODEL_ZOO_CONFIGS))}), not "
                              f"{self.config_file!r}")
        if not isinstance(self.weights, str) or not self.weights:
            raise OptionError("weights", f"must be zoo, none, a file or a run folder "
                              f"(got {self.weights!r})")
        for pair in self.model_options:
            _check_model_option(pair)

    def replace(self, **changes) -> TrainSettings:
        """A copy with some values changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# (setting, smallest, largest or None) for the whole-number settings.
_INTEGER_RANGES = (
    ("max_iter", 1, None), ("warmup_iters", 0, None), ("max_size_train", 1, None),
    ("ims_per_batch", 1, None), ("batch_size_per_image", 1, None),
    ("checkpoint_period", 1, None), ("eval_period", 0, None), ("min_size_test", 1, None),
    ("max_size_test", 1, None), ("detections_per_image", 1, None), ("num_workers", 0, None),
    ("seed", 0, None), ("keep_checkpoints", 0, None),
)


# Network keys a preset may set; never where files are written or read, nor the device.
_MODEL_OPTION = re.compile(r"MODEL(\.[A-Z][A-Z0-9_]*)+")
_FORBIDDEN_MODEL_OPTIONS = ("MODEL.WEIGHTS", "MODEL.DEVICE")


def _check_model_option(pair) -> None:
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise OptionError("model_options", f"must be pairs of key and value (got {pair!r})")
    key, value = pair
    if (not isinstance(key, str) or not _MODEL_OPTION.fullmatch(key)
            or key in _FORBIDDEN_MODEL_OPTIONS):
        raise OptionError("model_options", f"{key!r} is not a network setting (MODEL.…)")
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        if isinstance(item, float) and not math.isfinite(item):
            raise OptionError("model_options", f"{key} must be finite (got {item!r})")
        if not isinstance(item, bool | int | float | str) or (
                isinstance(item, str) and len(item) > 200):
            raise OptionError("model_options", f"{key} must be a number, a short text or a "
                              f"list of them (got {item!r})")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_integer(name: str, value, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise OptionError(name, f"must be a whole number (got {value!r})")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise OptionError(name, f"must be {bound} (got {value})")


PRESETS: dict[str, TrainSettings] = {
    # The recipe that scored 0.243 mask AP on the course competition (DESIGN.md section 1).
    "seed": TrainSettings(
        preset="seed",
        config_file="COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml",
    ),
    "r101": TrainSettings(
        preset="r101",
        config_file="COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
    ),
    # Fine-tuning on a laptop CPU in minutes: R50-FPN at a smaller input size.
    "fast": TrainSettings(
        preset="fast",
        config_file="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
        max_iter=300,
        base_lr=0.001,
        steps=(200,),
        warmup_iters=50,
        min_size_train=(576, 640, 704),
        max_size_train=1066,
        batch_size_per_image=128,
        checkpoint_period=50,
        eval_period=50,
        min_size_test=640,
        max_size_test=1066,
        score_thresh_test=0.5,
        anchor_sizes=(16, 32, 64, 128, 256),
    ),
    # The smallest network that trains for real: R18-FPN from scratch, for tests and demos.
    "tiny": TrainSettings(
        preset="tiny",
        config_file="COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
        weights="none",
        max_iter=300,
        base_lr=0.01,
        steps=(240,),
        warmup_iters=10,
        min_size_train=(256,),
        max_size_train=512,
        batch_size_per_image=128,
        checkpoint_period=50,
        eval_period=50,
        min_size_test=256,
        max_size_test=1000,
        score_thresh_test=0.3,
        detections_per_image=300,
        anchor_sizes=(8, 16, 32, 64, 128),
        num_workers=0,
        model_options=_TINY_MODEL,
    ),
}


MODEL_ZOO_CONFIGS = frozenset(preset.config_file for preset in PRESETS.values())


def preset_settings(name: str, **overrides) -> TrainSettings:
    """The settings of a preset, with some values overridden.

    Parameters
    ----------
    name : str
        ``seed``, ``r101``, ``fast`` or ``tiny``.
    **overrides
        Field values to change; ``None`` keeps the preset's value. When only
        ``max_iter`` changes, the learning-rate steps and warm-up scale with it.

    Returns
    -------
    TrainSettings
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    preset = PRESETS[name]
    max_iter = overrides.get("max_iter")
    if max_iter is not None and max_iter != preset.max_iter:
        # A shorter or longer run keeps the shape of the preset's schedule.
        scale = max_iter / preset.max_iter
        if overrides.get("steps") is None:
            overrides["steps"] = tuple(max(1, round(s * scale)) for s in preset.steps)
        if overrides.get("warmup_iters") is None:
            overrides["warmup_iters"] = max(1, round(preset.warmup_iters * scale))
    return preset.replace(**overrides)


def fit_schedule(settings: TrainSettings) -> tuple[TrainSettings, str]:
    """Drop learning-rate steps a run never reaches, and say so.

    A run shorter than its schedule (``--iters 2`` of a 300-iteration preset) would
    otherwise stop in detectron2's scheduler, which needs every step before the end.

    Returns
    -------
    TrainSettings, str
        The settings to train with, and a sentence for the user (empty: nothing dropped).
    """
    kept = tuple(step for step in settings.steps if step < settings.max_iter)
    if kept == tuple(settings.steps):
        return settings, ""
    dropped = [str(s) for s in settings.steps if s >= settings.max_iter]
    rest = (f"the learning rate keeps its steps at {', '.join(map(str, kept))}" if kept
            else "the learning rate stays constant after warm-up")
    which = "step" if len(dropped) == 1 else "steps"
    return dataclasses.replace(settings, steps=kept), (
        f"a {settings.max_iter}-iteration run ends before its learning-rate {which} at "
        f"{', '.join(dropped)}: dropped, so {rest}")
