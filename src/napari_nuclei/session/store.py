"""A session on disk: ``session.json``, ``predictions/<name>.npz`` and ``corrected/``.

Everything is written atomically into the session's output folder, and read back
without executing anything (JSON, and ``.npz`` files loaded without pickle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, write_json_atomic
from ..core.errors import InputError
from ..core.predict.instances import Prediction

SESSION_NAME = "session.json"
PREDICTIONS_FOLDER = "predictions"
FOLDER_FIELDS = ("train_dir", "test_dir", "gt_dir", "run_dir", "checkpoint")
VERSION = 1


def save_prediction(path: Path, prediction: Prediction) -> Path:
    """Write a prediction's scores and mask crops (bit-packed) to an ``.npz`` file."""
    tops = np.array([c[0] for c in prediction.crops], np.int64)
    lefts = np.array([c[1] for c in prediction.crops], np.int64)
    shapes = np.array([c[2].shape for c in prediction.crops], np.int64).reshape(-1, 2)
    bits = np.packbits(np.concatenate([c[2].ravel() for c in prediction.crops])
                       if prediction.crops else np.zeros(0, bool))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, size=np.array([prediction.height, prediction.width]),
                            scores=prediction.scores, tops=tops, lefts=lefts, shapes=shapes,
                            bits=bits, hit_cap=np.array(prediction.hit_cap))
    return path


def load_prediction(path: Path) -> Prediction:
    """Read a prediction written by :func:`save_prediction`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            height, width = (int(v) for v in data["size"])
            shapes = data["shapes"]
            flat = np.unpackbits(data["bits"], count=int(shapes.prod(axis=1).sum()))
            flat = flat.astype(bool)
            crops, start = [], 0
            for top, left, (h, w) in zip(data["tops"], data["lefts"], shapes, strict=True):
                crops.append((int(top), int(left), flat[start : start + h * w].reshape(h, w)))
                start += h * w
            return Prediction(height, width, data["scores"].astype(np.float32), crops,
                              bool(data["hit_cap"]))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(path, f"is not a saved prediction ({exc})") from None


@dataclass(frozen=True)
class SavedImage:
    """What ``session.json`` says about one image."""

    name: str
    image_path: Path | None
    score_thresh: float
    prediction: Path
    labels: Path | None


def write_session(folder: Path, fields: dict, images: list[SavedImage]) -> Path:
    """Write ``session.json``: folder fields, threshold and the images' files."""
    def rel(path):
        return None if path is None else str(Path(path).relative_to(folder))

    document = {
        "version": VERSION,
        **{k: (str(fields[k]) if fields.get(k) else None) for k in FOLDER_FIELDS},
        "score_thresh": fields["score_thresh"],
        "images": [{"name": i.name, "image_path": str(i.image_path) if i.image_path else None,
                    "score_thresh": i.score_thresh, "prediction": rel(i.prediction),
                    "labels": rel(i.labels)} for i in images],
    }
    return write_json_atomic(Path(folder) / SESSION_NAME, document, indent=2)


def read_session(folder: Path) -> tuple[dict, list[SavedImage]]:
    """Read ``session.json`` of an output folder.

    Raises
    ------
    InputError
        When the folder holds no session, or the file is not one.
    """
    path = Path(folder) / SESSION_NAME
    if not path.is_file():
        raise InputError(folder, "holds no saved session (no session.json)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        fields = {k: Path(document[k]) if document.get(k) else None for k in FOLDER_FIELDS}
        fields["score_thresh"] = float(document["score_thresh"])
        images = [SavedImage(i["name"], Path(i["image_path"]) if i["image_path"] else None,
                             float(i["score_thresh"]), Path(folder) / i["prediction"],
                             Path(folder) / i["labels"] if i["labels"] else None)
                  for i in document["images"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a session file ({exc})") from None
    return fields, images
