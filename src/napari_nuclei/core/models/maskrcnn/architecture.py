"""Name the network a weights file holds and the network a preset builds, to compare them.

Loading weights of another architecture "works" in detectron2: every parameter that does
not fit is skipped with a log line, and the model predicts nothing. Naming both sides
("R-18 FPN", "X-101-32x8d FPN") lets the tool refuse such a file with a line the user can
act on, and lets a bare weights file choose its own preset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .presets import PRESETS, TrainSettings

_BOTTOM_UP = "backbone.bottom_up."
# ResNet depth from the number of blocks in stage res4 and the kind of block.
_DEPTH_BY_RES4 = {("basic", 2): 18, ("basic", 6): 34, ("bottleneck", 6): 50,
                  ("bottleneck", 23): 101, ("bottleneck", 36): 152}


def _label(depth: int, groups: int, width: int, fpn: bool) -> str:
    name = f"X-{depth}-{groups}x{width}d" if groups > 1 else f"R-{depth}"
    return f"{name} FPN" if fpn else f"{name} C4/DC5"


def describe_state(state: Mapping) -> str | None:
    """The architecture of a detectron2 state dict, e.g. ``"R-50 FPN"``; None if unknown.

    Parameters
    ----------
    state : Mapping
        Parameter name to tensor or array, with detectron2's names.

    Returns
    -------
    str or None
    """
    blocks = set()
    for key in state:
        match = re.match(r"backbone\.bottom_up\.res4\.(\d+)\.", str(key))
        if match:
            blocks.add(int(match.group(1)))
    if not blocks:
        return None
    kind = "bottleneck" if f"{_BOTTOM_UP}res2.0.conv3.weight" in state else "basic"
    depth = _DEPTH_BY_RES4.get((kind, max(blocks) + 1))
    if depth is None:
        return None
    groups, width = 1, 64
    conv2 = state.get(f"{_BOTTOM_UP}res2.0.conv2.weight")
    shape = tuple(getattr(conv2, "shape", ()))
    if kind == "bottleneck" and len(shape) == 4 and shape[1] and shape[0] > shape[1]:
        # A grouped 3x3 convolution: out channels / in channels per group = groups.
        groups, width = shape[0] // shape[1], shape[1]
    fpn = any(str(k).startswith("backbone.fpn_") for k in state)
    return _label(depth, groups, width, fpn)


def describe_settings(settings: TrainSettings) -> str:
    """The architecture a settings object builds, from its config file and overrides."""
    options = dict(settings.model_options)
    match = re.search(r"_(R|X)_(\d+)(?:_(\d+)x(\d+)d)?_(FPN|C4|DC5)", settings.config_file)
    if match is None:
        return settings.config_file
    family, depth, groups, width, head = match.groups()
    depth = int(options.get("MODEL.RESNETS.DEPTH", depth))
    groups = int(options.get("MODEL.RESNETS.NUM_GROUPS", groups or 1))
    width = int(options.get("MODEL.RESNETS.WIDTH_PER_GROUP", width or 64))
    return _label(depth, groups if family == "X" or groups > 1 else 1, width, head == "FPN")


def presets_for(architecture: str) -> list[str]:
    """The presets that build ``architecture``, in the order they are listed."""
    return [name for name, preset in PRESETS.items() if describe_settings(preset) == architecture]


def describe_config(cfg) -> str:
    """The architecture a detectron2 config builds (``MODEL.RESNETS`` and the backbone)."""
    resnets = cfg.MODEL.RESNETS
    fpn = "fpn" in str(cfg.MODEL.BACKBONE.NAME).lower()
    return _label(int(resnets.DEPTH), int(resnets.NUM_GROUPS), int(resnets.WIDTH_PER_GROUP), fpn)
