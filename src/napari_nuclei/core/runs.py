"""The training run folder as a format, read back by training and prediction alike.

Run folders are shared between people, so a folder is data, never code. Its detectron2
config is always rebuilt from the folder's ``settings.json`` (read through the JSON gate
and checked value by value) and the preset's model-zoo config that ships inside
detectron2. The ``config.yaml`` beside it is written for people to read and is never
parsed: detectron2's YAML reader falls back to an unsafe loader and follows ``_BASE_`` to
any file, so parsing a shared one would let the folder run code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, InputError, OptionError, WeightsError
from .models.maskrcnn.presets import TrainSettings
from .nucleus_classes import ClassSet

SETTINGS_NAME = "settings.json"
CONFIG_NAME = "config.yaml"
DICTS_NAME = "dataset_dicts.json"
# The first line of every config.yaml: it is a record for people, not an input.
CONFIG_HEADER = ("# Written for people to read. napari-nuclei rebuilds this config from "
                 "settings.json and never reads this file.\n")
LAST_CHECKPOINT = "last_checkpoint"
FINAL_CHECKPOINT = "model_final.pth"
_PERIODIC = re.compile(r"model_(\d{7})\.pth")


def periodic_checkpoints(run_dir: Path) -> list[Path]:
    """A run folder's ``model_NNNNNNN.pth`` files, oldest iteration first."""
    found = [p for p in Path(run_dir).glob("model_*.pth") if _PERIODIC.fullmatch(p.name)]
    return sorted(found, key=lambda p: int(_PERIODIC.fullmatch(p.name).group(1)))


def checkpoints_newest_first(run_dir: Path) -> list[Path]:
    """Every checkpoint of a run folder, the final model first, then by iteration."""
    final = Path(run_dir) / FINAL_CHECKPOINT
    return ([final] if final.is_file() else []) + periodic_checkpoints(run_dir)[::-1]


def tagged_checkpoint(run_dir: Path) -> Path | None:
    """The file ``last_checkpoint`` names, if that file exists."""
    tag = Path(run_dir) / LAST_CHECKPOINT
    try:
        name = tag.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    candidate = Path(run_dir) / name
    if name and "/" not in name and "\\" not in name and candidate.is_file():
        return candidate
    return None


def last_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run folder's ``last_checkpoint`` names, else its newest one."""
    tagged = tagged_checkpoint(run_dir)
    if tagged is not None:
        return tagged
    newest = checkpoints_newest_first(run_dir)
    return newest[0] if newest else None


def is_run_dir(path: Path) -> bool:
    """True for a folder written by a training run."""
    return Path(path).is_dir() and (Path(path) / SETTINGS_NAME).is_file()



def save_settings(settings: TrainSettings, run_dir: Path, **extra) -> Path:
    """Write ``settings.json`` into a run folder, with extra run facts (data paths, and the
    largest training nucleus, from which prediction tiles take their overlap)."""
    from .atomic import write_json_atomic

    largest = _largest_nucleus_px(Path(run_dir) / "train_annotations.json")
    if largest is not None:
        extra.setdefault("largest_nucleus_px", largest)
    return write_json_atomic(
        Path(run_dir) / SETTINGS_NAME, {**settings.to_json(), **extra}, indent=2
    )


def _largest_nucleus_px(coco_json: Path) -> float | None:
    """The largest box side of the nuclei in a COCO JSON, if it exists."""
    from .validate import load_json

    try:
        annotations = load_json(coco_json)["annotations"]
    except (InputError, ValueError, KeyError, TypeError):
        return None
    return max((max(a["bbox"][2:4]) for a in annotations), default=None)


def recorded_number(run_dir: str | Path, key: str) -> float | None:
    """A positive number a run folder's ``settings.json`` records, None when it records
    none (or the folder has no ``settings.json``, as a bare weights file's).

    Raises
    ------
    InputError
        When the file cannot be read, or records the value with a wrong type or sign:
        predicting as if it were absent would silently change the result.
    """
    path = Path(run_dir) / SETTINGS_NAME
    if not path.is_file():
        return None
    facts = load_run_facts(run_dir)
    if not isinstance(facts, dict):
        raise InputError(path, "is damaged: it is not a JSON object of settings")
    value = facts.get(key)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise InputError(path, f"is damaged: {key} must be a positive number, not {value!r}")
    return float(value)


def load_run_facts(run_dir: Path) -> dict:
    """The content of a run folder's ``settings.json`` (settings plus run facts).

    Run folders are shared, so the file is read with the guarded loader of user files.
    """
    from .validate import load_json

    return load_json(Path(run_dir) / SETTINGS_NAME)


@dataclass(frozen=True)
class RunRecord:
    """What a run folder's ``settings.json`` holds, checked.

    Attributes
    ----------
    folder : Path
        The run folder, resolved (it may have moved since it was written).
    settings : TrainSettings
        The run's settings, validated.
    group_norm : bool
        The network uses GroupNorm instead of frozen BatchNorm.
    initial_weights : str or None
        The local file the run started from (``""``: random initialisation; None when
        the folder does not record it).
    facts : dict
        The whole document (data paths and other run facts).
    classes : ClassSet
        The nucleus classes the run learns (``classes`` in ``settings.json``; the one
        default class when the folder records none).
    """

    folder: Path
    settings: TrainSettings
    group_norm: bool
    initial_weights: str | None
    facts: dict
    classes: ClassSet = ClassSet.default()


def read_run(run_dir: str | Path) -> RunRecord:
    """Read and check a run folder's ``settings.json``.

    Raises
    ------
    WeightsError
        When the folder holds no ``settings.json``.
    InputError
        Naming ``settings.json`` and the first value that cannot be used.
    """
    folder = Path(run_dir).expanduser().resolve()
    if not is_run_dir(folder):
        raise WeightsError(folder, "is not a training run folder (no settings.json)")
    path = folder / SETTINGS_NAME
    facts = load_run_facts(folder)
    if not isinstance(facts, dict):
        raise InputError(path, "is damaged: it is not a JSON object of settings")
    try:
        settings = TrainSettings.from_json(facts).validate()
    except OptionError as exc:
        raise InputError(path, f"is damaged: {exc.option} {exc.problem}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"is damaged: a setting has the wrong type ({exc})") from None
    group_norm = facts.get("group_norm", False)
    if not isinstance(group_norm, bool):
        raise InputError(path, f"is damaged: group_norm must be true or false, not "
                         f"{group_norm!r}")
    initial = facts.get("initial_weights")
    if initial is not None and not isinstance(initial, str):
        raise InputError(path, f"is damaged: initial_weights must be a path, not {initial!r}")
    try:
        classes = ClassSet.from_json(facts.get("classes"), path)
    except DatasetError as exc:
        raise InputError(path, f"is damaged: classes {exc.problem}") from None
    return RunRecord(folder, settings, group_norm, initial, facts, classes)


def starting_weights(record: RunRecord) -> str:
    """The file a resumed run starts from when it has no checkpoint of its own yet.

    With a checkpoint, detectron2's checkpointer resumes from it and this is unused.
    """
    from .models.maskrcnn.weights import resolve_weights

    initial = record.initial_weights
    if last_checkpoint(record.folder) is not None or initial == "":
        return initial or ""
    if initial and Path(initial).is_file():
        return initial
    # Not recorded (an older folder) or not on this machine: resolve the setting again.
    return resolve_weights(record.settings.weights, record.settings).path


def run_config(
    record: RunRecord,
    weights_path: str = "",
    device: str | None = None,
    train_datasets: tuple[str, ...] = (),
    test_datasets: tuple[str, ...] = (),
):
    """The detectron2 config of a run, rebuilt from its checked settings.

    Parameters
    ----------
    record : RunRecord
        From :func:`read_run`.
    weights_path : str
        ``MODEL.WEIGHTS``.
    device : str, optional
        Overrides the run's device (a run trained on a GPU predicts on a CPU).
    train_datasets, test_datasets : tuple of str
        Names registered in detectron2's ``DatasetCatalog``.

    Returns
    -------
    detectron2.config.CfgNode
    """
    from .models.maskrcnn.config import build_config

    return build_config(record.settings, record.folder, weights_path, record.group_norm,
                        train_datasets, test_datasets, device=device,
                        num_classes=len(record.classes))


def write_config_record(run_dir: Path, cfg) -> Path:
    """Write ``config.yaml`` for people to read (never read back)."""
    from .atomic import atomic_path

    path = Path(run_dir) / CONFIG_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(CONFIG_HEADER + cfg.dump(), encoding="utf-8")
    return path
