"""Where a run's starting weights come from: model zoo, a file, a previous run, or none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import WeightsError
from ...runs import FINAL_CHECKPOINT, last_checkpoint
from .presets import TrainSettings


@dataclass(frozen=True)
class ResolvedWeights:
    """Starting weights for a run.

    Attributes
    ----------
    path : str
        A local file for ``MODEL.WEIGHTS``, or ``""`` for random initialisation.
    group_norm : bool
        Build the model with GroupNorm: random init diverges with frozen BatchNorm.
    notice : str
        What the user should be told about this choice (empty when nothing).
    """

    path: str
    group_norm: bool
    notice: str = ""


@dataclass(frozen=True)
class WeightsFacts:
    """What a weights file holds, read without running anything from it.

    Attributes
    ----------
    group_norm : bool
        The network used GroupNorm (no BatchNorm running statistics).
    architecture : str or None
        ``"R-50 FPN"`` and the like, None when it cannot be told from the names.
    num_classes : int or None
        Classes the box classifier tells apart (background aside), None when the file
        has no box classifier.
    """

    group_norm: bool
    architecture: str | None
    num_classes: int | None = None


# The box classifier scores every class plus the background.
_CLASS_SCORES = "roi_heads.box_predictor.cls_score.weight"


def _num_classes(state: dict) -> int | None:
    shape = getattr(state.get(_CLASS_SCORES), "shape", None)
    return int(shape[0]) - 1 if shape is not None and len(shape) == 2 else None


def _uses_group_norm(state: dict) -> bool:
    """Whether saved weights come from a GroupNorm model (no BatchNorm running statistics)."""
    keys = [k for k in state if isinstance(k, str)]
    has_norm = any(k.endswith("norm.weight") for k in keys)
    return has_norm and not any(k.endswith("running_mean") for k in keys)


def inspect_weights(path: Path) -> WeightsFacts:
    """Open a weights file the way the checkpointer will (safely), to fail early and clearly.

    Raises
    ------
    WeightsError
        When the file holds anything but weights, or is damaged.
    """
    from ...safe_load import load_weights_file
    from .architecture import describe_state

    state = load_weights_file(path, mmap=True)["model"]
    return WeightsFacts(_uses_group_norm(state), describe_state(state), _num_classes(state))


def check_architecture(path: Path, facts: WeightsFacts, settings: TrainSettings) -> None:
    """Refuse weights of another network than the one ``settings`` builds."""
    from .architecture import describe_settings, presets_for

    wanted = describe_settings(settings)
    if facts.architecture is None or facts.architecture == wanted:
        return
    advice = presets_for(facts.architecture)
    hint = f": pass --preset {advice[0]}" if advice else ""
    raise WeightsError(path, f"weights for {facts.architecture}, not {wanted}{hint}")


def _zoo_weights(config_file: str) -> ResolvedWeights:
    from detectron2 import model_zoo
    from detectron2.utils.file_io import PathManager

    try:
        url = model_zoo.get_checkpoint_url(config_file)
    except RuntimeError:
        raise WeightsError(
            config_file, "has no model-zoo weights; use --weights none or a weights file"
        ) from None
    try:
        # Uses detectron2's download cache; downloads only when not cached yet.
        local = PathManager.get_local_path(url)
    except Exception as exc:  # no network, proxy, HTTP errors
        raise WeightsError(
            url,
            f"the model-zoo weights could not be downloaded ({type(exc).__name__}): download "
            "the file (README 'Pretrained weights') and pass it with --weights FILE, or pass "
            "--weights none to train from scratch",
        ) from None
    return ResolvedWeights(local, group_norm=inspect_weights(Path(local)).group_norm)


def resolve_weights(weights: str, settings: TrainSettings) -> ResolvedWeights:
    """Turn the ``weights`` setting into a local file and a normalisation choice.

    Parameters
    ----------
    weights : str
        ``zoo``, ``none``, a ``.pth``/``.pkl`` file or a run folder.
    settings : TrainSettings
        The network the weights must fit (its preset's architecture and config file).

    Returns
    -------
    ResolvedWeights

    Raises
    ------
    WeightsError
        For a missing, unreadable or unsafe file, weights of another architecture, a run
        folder without checkpoints, or model-zoo weights that cannot be fetched.
    """
    if weights == "none":
        return ResolvedWeights(
            "", group_norm=True,
            notice="no pretrained weights: training from scratch with GroupNorm "
            "(accuracy will be far lower than with pretrained weights)",
        )
    if weights == "zoo":
        return _zoo_weights(settings.config_file)
    path = Path(weights).expanduser()
    if path.is_dir():
        checkpoint = last_checkpoint(path)
        if checkpoint is None:
            raise WeightsError(path, "is a folder without a checkpoint (last_checkpoint or "
                               f"{FINAL_CHECKPOINT})")
        path = checkpoint
    elif not path.is_file():
        raise WeightsError(path, "weights file not found")
    elif path.suffix not in (".pth", ".pkl", ".pt"):
        raise WeightsError(path, "expected a .pth or .pkl weights file")
    facts = inspect_weights(path)
    check_architecture(path, facts, settings)
    return ResolvedWeights(str(path), group_norm=facts.group_norm)
