"""detectron2's checkpointer, made safe to load from and safe to interrupt.

:class:`NucleiCheckpointer` overrides the checkpointer's documented extension points
(``_load_file``, ``_load_model``, ``save``, ``tag_last_checkpoint``) so that:

- every weights file is read by :func:`napari_nuclei.core.safe_load.load_weights_file`,
  which never runs code from the file;
- weights of another architecture are refused with a line naming what the file holds,
  instead of being skipped parameter by parameter into a model that predicts nothing;
- a checkpoint is written to a temporary file, flushed to disk and renamed into place,
  and ``last_checkpoint`` names it only after the rename: a kill or a full disk during
  the write leaves the previous checkpoint valid and no truncated ``model_*.pth``; a
  second Ctrl-C during the write stops the run once the file is in place.
"""

from __future__ import annotations

from pathlib import Path

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ...atomic import atomic_path, fsync_file
from ...errors import WeightsError
from ...interrupts import interrupts_held
from ...runs import LAST_CHECKPOINT
from ...safe_load import load_weights_file
from .architecture import describe_state, presets_for

# Below this share of the model's parameters found in a file, the file is another network.
MIN_MATCHED_SHARE = 0.5


class NucleiCheckpointer(DetectionCheckpointer):
    """A ``DetectionCheckpointer`` with safe loading, architecture checks and atomic saves.

    Parameters
    ----------
    model : torch.nn.Module
        The network.
    save_dir : str
        Run folder (empty for load-only use).
    architecture : str, optional
        What the model is (``"R-18 FPN"``), for the message when a file does not fit.
    **checkpointables
        As for ``DetectionCheckpointer``.
    """

    def __init__(self, model, save_dir: str = "", *, architecture: str | None = None,
                 **checkpointables):
        super().__init__(model, save_dir, **checkpointables)
        self.architecture = architecture
        self._loading: str | None = None

    def _load_file(self, filename: str) -> dict:
        self._loading = filename
        return load_weights_file(filename)

    def _load_model(self, checkpoint):
        incompatible = super()._load_model(checkpoint)
        model_keys = list(self.model.state_dict())
        if model_keys:
            unmatched = set(incompatible.missing_keys)
            unmatched.update(key for key, *_ in incompatible.incorrect_shapes)
            matched = sum(1 for key in model_keys if key not in unmatched)
            if matched / len(model_keys) < MIN_MATCHED_SHARE:
                raise WeightsError(self._loading or "weights", self._mismatch(checkpoint))
        return incompatible

    def _mismatch(self, checkpoint) -> str:
        held = describe_state(checkpoint.get("model", {}))
        wanted = self.architecture or "this model"
        if held is None:
            return f"does not hold weights for {wanted} (most parameters do not match)"
        advice = presets_for(held)
        hint = f": pass --preset {advice[0]}" if advice else ""
        return f"weights for {held}, not {wanted}{hint}"

    def save(self, name: str, **kwargs) -> None:
        """Write ``<name>.pth`` atomically, then name it in ``last_checkpoint``."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        path = Path(self.save_dir) / f"{name}.pth"
        self.logger.info("Saving checkpoint to %s", path)
        # A second Ctrl-C waits for the file and its tag: then the run stops at once.
        with interrupts_held("the checkpoint"):
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                torch.save(data, fh)
                fsync_file(fh)
            self.tag_last_checkpoint(path.name)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        with atomic_path(Path(self.save_dir) / LAST_CHECKPOINT) as tmp, \
                open(tmp, "w", encoding="utf-8") as fh:
            fh.write(last_filename_basename)
            fsync_file(fh)
