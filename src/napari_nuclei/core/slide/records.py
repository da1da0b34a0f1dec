"""What one tile found, saved in the job folder so that a stopped job resumes.

A record holds the nuclei the tile owns (with their ids) and its candidates (detections
no tile owns outright, see :mod:`napari_nuclei.core.predict.tiles`). Masks are stored as
tight crops packed to bits; files are plain ``.npz`` arrays, loaded without pickle, and
written atomically: a record on disk is a finished tile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..predict.tiles import Candidate
from ..validate import load_arrays


@dataclass
class Nucleus:
    """A kept nucleus: its slide-wide id, score and tight mask crop (prediction pixels),
    and its class (index in the model's classes) with that class's probability."""

    id: int
    score: float
    top: int
    left: int
    mask: np.ndarray
    class_index: int = 0
    class_probability: float = 1.0


@dataclass
class TileRecord:
    """Result of one tile: owned nuclei and candidates.

    Attributes
    ----------
    window : tuple of int
        ``(top, left, bottom, right)`` of the tile in prediction pixels.
    owned : list of Nucleus
    candidates : list of Candidate
    hit_cap : bool
        The network returned as many detections as its cap.
    """

    window: tuple[int, int, int, int]
    owned: list[Nucleus] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    hit_cap: bool = False


def _pack(masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    shapes = np.array([m.shape for m in masks], np.int32).reshape(-1, 2)
    flat = np.concatenate([m.ravel() for m in masks]) if masks else np.zeros(0, bool)
    return shapes, np.packbits(flat)


def _unpack(shapes: np.ndarray, bits: np.ndarray) -> list[np.ndarray]:
    sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1]
    flat = np.unpackbits(bits, count=int(sizes.sum())).astype(bool)
    masks, start = [], 0
    for (h, w), n in zip(shapes, sizes, strict=True):
        masks.append(flat[start : start + n].reshape(h, w))
        start += n
    return masks


def save_nuclei(path: Path, nuclei: list[Nucleus], **arrays) -> Path:
    """Write kept nuclei (and extra arrays) to an ``.npz`` file atomically."""
    shapes, bits = _pack([n.mask for n in nuclei])
    # Stale temporary files are removed once per job (SlideJob), not per tile.
    with atomic_path(path, clean_stale=False) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array([n.id for n in nuclei], np.uint32).reshape(-1),
                     scores=np.array([n.score for n in nuclei], np.float32).reshape(-1),
                     corners=np.array([(n.top, n.left) for n in nuclei], np.int64).reshape(-1, 2),
                     classes=np.array([n.class_index for n in nuclei], np.int16).reshape(-1),
                     class_probs=np.array([n.class_probability for n in nuclei],
                                          np.float32).reshape(-1),
                     shapes=shapes, bits=bits, **arrays)
    return path


def load_nuclei(path: Path) -> tuple[list[Nucleus], dict]:
    """Read nuclei written by :func:`save_nuclei`; also returns the other arrays."""
    arrays = load_arrays(path)
    masks = _unpack(arrays.pop("shapes"), arrays.pop("bits"))
    ids, scores, corners = arrays.pop("ids"), arrays.pop("scores"), arrays.pop("corners")
    classes, probabilities = _classes(arrays, "classes", "class_probs", len(ids))
    nuclei = [Nucleus(int(i), float(s), int(t), int(left), m, int(c), float(p))
              for i, s, (t, left), m, c, p in zip(ids, scores, corners, masks, classes,
                                                  probabilities, strict=True)]
    return nuclei, arrays


def _classes(arrays: dict, classes: str, probabilities: str, count: int):
    """Class indices and probabilities of ``count`` nuclei; records of one-class jobs
    written before classes existed hold none (class 0, probability 1)."""
    found = arrays.pop(classes, None), arrays.pop(probabilities, None)
    if found[0] is None or found[1] is None:
        return np.zeros(count, np.int64), np.ones(count, np.float32)
    return found


def save_record(path: Path, record: TileRecord) -> Path:
    """Write a tile record atomically."""
    cands = record.candidates
    shapes, bits = _pack([c.mask for c in cands])
    return save_nuclei(
        path, record.owned, window=np.array(record.window, np.int64),
        hit_cap=np.array(record.hit_cap),
        cand_scores=np.array([c.score for c in cands], np.float32),
        cand_corners=np.array([(c.top, c.left) for c in cands], np.int64).reshape(-1, 2),
        cand_whole=np.array([c.whole for c in cands], bool),
        cand_keys=np.array([c.key for c in cands], np.int64).reshape(-1, 2),
        cand_classes=np.array([c.class_index for c in cands], np.int16).reshape(-1),
        cand_class_probs=np.array([c.class_probability for c in cands],
                                  np.float32).reshape(-1),
        cand_shapes=shapes, cand_bits=bits,
    )


def load_record(path: Path) -> TileRecord:
    """Read a tile record written by :func:`save_record`."""
    owned, arrays = load_nuclei(path)
    window = tuple(int(v) for v in arrays["window"])
    masks = _unpack(arrays["cand_shapes"], arrays["cand_bits"])
    classes, probabilities = _classes(arrays, "cand_classes", "cand_class_probs",
                                      len(masks))
    candidates = [Candidate(int(top), int(left), mask, float(score), bool(whole), window,
                            (int(key[0]), int(key[1])), int(kind), float(probability))
                  for score, (top, left), whole, key, mask, kind, probability in zip(
                      arrays["cand_scores"], arrays["cand_corners"], arrays["cand_whole"],
                      arrays["cand_keys"], masks, classes, probabilities, strict=True)]
    return TileRecord(window, owned, candidates, bool(arrays["hit_cap"]))
