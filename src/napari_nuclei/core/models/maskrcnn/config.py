"""Map :class:`TrainSettings` onto a full detectron2 config."""

from __future__ import annotations

from pathlib import Path

from ...errors import OptionError
from .presets import TrainSettings


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise OptionError("device", f"must be auto, cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", "cuda was asked for but torch sees no CUDA GPU (use cpu "
                          "or auto)")
    return device


def _use_group_norm(cfg) -> None:
    """Switch backbone, FPN and heads to GroupNorm, as detectron2's scratch configs do.

    With random initialisation the default frozen BatchNorm has no statistics to freeze
    and training diverges within a few iterations.
    """
    cfg.MODEL.RESNETS.NORM = "GN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.FPN.NORM = "GN"
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_CONV = 4
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 1
    cfg.MODEL.ROI_BOX_HEAD.NORM = "GN"
    cfg.MODEL.ROI_MASK_HEAD.NORM = "GN"


def build_config(
    settings: TrainSettings,
    output_dir: str | Path,
    weights_path: str = "",
    group_norm: bool = False,
    train_datasets: tuple[str, ...] = (),
    test_datasets: tuple[str, ...] = (),
    device: str | None = None,
    num_classes: int = 1,
):
    """A detectron2 ``CfgNode`` for ``settings``, built without downloading anything.

    The only YAML read is the preset's model-zoo config, which ships inside detectron2
    (``settings.config_file`` is one of the presets' files: :meth:`TrainSettings.validate`).

    Parameters
    ----------
    settings : TrainSettings
        The run's settings.
    output_dir : str or Path
        The run folder (checkpoints, logs).
    weights_path : str
        Local weights file for ``MODEL.WEIGHTS`` (empty: random initialisation).
    group_norm : bool
        Build the model with GroupNorm instead of frozen BatchNorm.
    train_datasets, test_datasets : tuple of str
        Names registered in detectron2's ``DatasetCatalog``.
    device : str, optional
        Overrides ``settings.device``.
    num_classes : int
        Nucleus classes the heads tell apart (1: every nucleus is a nucleus).

    Returns
    -------
    detectron2.config.CfgNode
    """
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    settings.validate()
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(settings.config_file))
    if group_norm:
        _use_group_norm(cfg)
    cfg.OUTPUT_DIR = str(output_dir)
    cfg.MODEL.WEIGHTS = weights_path
    cfg.MODEL.DEVICE = resolve_device(device or settings.device)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = int(num_classes)
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = settings.batch_size_per_image
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = settings.score_thresh_test
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[size] for size in settings.anchor_sizes]
    # Dense nuclei: hundreds per image, so proposals must outnumber the detection cap.
    topk = max(1000, 2 * settings.detections_per_image)
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = topk
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = topk
    cfg.TEST.DETECTIONS_PER_IMAGE = settings.detections_per_image
    cfg.INPUT.MIN_SIZE_TRAIN = tuple(settings.min_size_train)
    cfg.INPUT.MAX_SIZE_TRAIN = settings.max_size_train
    cfg.INPUT.MIN_SIZE_TEST = settings.min_size_test
    cfg.INPUT.MAX_SIZE_TEST = settings.max_size_test
    cfg.INPUT.MASK_FORMAT = "bitmask"
    cfg.SOLVER.IMS_PER_BATCH = settings.ims_per_batch
    cfg.SOLVER.BASE_LR = settings.base_lr
    cfg.SOLVER.STEPS = tuple(settings.steps)
    cfg.SOLVER.GAMMA = settings.gamma
    cfg.SOLVER.MAX_ITER = settings.max_iter
    cfg.SOLVER.WARMUP_ITERS = min(settings.warmup_iters, settings.max_iter)
    cfg.SOLVER.CHECKPOINT_PERIOD = settings.checkpoint_period
    cfg.TEST.EVAL_PERIOD = settings.eval_period if test_datasets else 0
    cfg.DATASETS.TRAIN = tuple(train_datasets)
    cfg.DATASETS.TEST = tuple(test_datasets)
    cfg.DATALOADER.NUM_WORKERS = settings.num_workers
    if settings.class_balance > 0:
        # detectron2's own sampler for rare categories, from the dataset dicts' classes.
        cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
        cfg.DATALOADER.REPEAT_THRESHOLD = float(settings.class_balance)
    cfg.SEED = settings.seed
    for key, value in settings.model_options:
        try:
            cfg.merge_from_list([key, value])
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            raise OptionError("model_options", f"{key} = {value!r} does not fit the config "
                              f"({type(exc).__name__})") from None
    set_keep_checkpoints(cfg, settings.keep_checkpoints)
    return cfg


def set_keep_checkpoints(cfg, keep: int) -> None:
    """Record how many periodic checkpoints the run keeps (0: all) in its config."""
    from detectron2.config import CfgNode

    if "NUCLEI" not in cfg:
        cfg.NUCLEI = CfgNode()
    cfg.NUCLEI.KEEP_CHECKPOINTS = int(keep)


def keep_checkpoints(cfg) -> int:
    """Periodic checkpoints a run keeps (0: all); 0 for configs written before the limit."""
    return int(cfg.NUCLEI.KEEP_CHECKPOINTS) if "NUCLEI" in cfg else 0
