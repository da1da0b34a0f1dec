"""Where a run's starting weights come from: model zoo, a file, a previous run, or none."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .settings import SETTINGS_NAME

LAST_CHECKPOINT = "last_checkpoint"
FINAL_CHECKPOINT = "model_final.pth"


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


def last_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run folder's ``last_checkpoint`` file names, else its final model."""
    run_dir = Path(run_dir)
    tag = run_dir / LAST_CHECKPOINT
    if tag.is_file():
        candidate = run_dir / tag.read_text(encoding="utf-8").strip()
        if candidate.is_file():
            return candidate
    final = run_dir / FINAL_CHECKPOINT
    return final if final.is_file() else None


def is_run_dir(path: Path) -> bool:
    """True for a folder written by a training run."""
    return Path(path).is_dir() and (Path(path) / SETTINGS_NAME).is_file()


def _uses_group_norm(state: dict) -> bool:
    """Whether saved weights come from a GroupNorm model (no BatchNorm running statistics)."""
    keys = [k for k in state if isinstance(k, str)]
    has_norm = any(k.endswith("norm.weight") for k in keys)
    return has_norm and not any(k.endswith("running_mean") for k in keys)


def _check_loadable(path: Path) -> bool:
    """Open a weights file the way detectron2's checkpointer will, to fail early and clearly.

    Returns whether the weights come from a GroupNorm model.
    """
    import torch

    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as fh:
                data = pickle.load(fh, encoding="latin1")
        else:
            data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch and pickle raise many types for broken files
        raise WeightsError(path, f"cannot be loaded as model weights ({exc})") from None
    if not isinstance(data, dict):
        raise WeightsError(path, f"holds a {type(data).__name__}, not model weights")
    state = data.get("model", data)
    return isinstance(state, dict) and _uses_group_norm(state)


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
        return ResolvedWeights(PathManager.get_local_path(url), group_norm=False)
    except Exception as exc:  # no network, proxy, HTTP errors
        return ResolvedWeights(
            "",
            group_norm=True,
            notice=(
                f"model-zoo weights could not be fetched ({type(exc).__name__}); training "
                "from scratch with GroupNorm. Accuracy will be far lower than with "
                "pretrained weights: download them once (README 'Model-zoo weights') and "
                "pass the file with --weights."
            ),
        )


def resolve_weights(weights: str, config_file: str) -> ResolvedWeights:
    """Turn the ``weights`` setting into a local file and a normalisation choice.

    Parameters
    ----------
    weights : str
        ``zoo``, ``none``, a ``.pth``/``.pkl`` file or a run folder.
    config_file : str
        The model-zoo config, for ``zoo``.

    Returns
    -------
    ResolvedWeights

    Raises
    ------
    WeightsError
        For a missing or unreadable file, or a run folder without checkpoints.
    """
    if weights == "none":
        return ResolvedWeights(
            "", group_norm=True,
            notice="no pretrained weights: training from scratch with GroupNorm "
            "(accuracy will be far lower than with pretrained weights)",
        )
    if weights == "zoo":
        return _zoo_weights(config_file)
    path = Path(weights).expanduser()
    if path.is_dir():
        checkpoint = last_checkpoint(path)
        if checkpoint is None:
            raise WeightsError(path, "is a folder without a checkpoint (last_checkpoint or "
                               f"{FINAL_CHECKPOINT})")
        return ResolvedWeights(str(checkpoint), group_norm=_check_loadable(checkpoint))
    if not path.is_file():
        raise WeightsError(path, "weights file not found")
    if path.suffix not in (".pth", ".pkl", ".pt"):
        raise WeightsError(path, "expected a .pth or .pkl weights file")
    return ResolvedWeights(str(path), group_norm=_check_loadable(path))
