"""Training and validation data for detectron2: from any supported dataset layout."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..coco import coco_document
from ..convert import iter_conversion
from ..dataset import Dataset, open_dataset
from ..errors import DatasetError
from ..jobs import StepProgress

TRAIN_JSON = "train_annotations.json"
VAL_JSON = "val_annotations.json"


@dataclass
class TrainingData:
    """Dataset dicts (detectron2's format) for training and, if any, validation."""

    train: list[dict]
    val: list[dict]
    val_json: Path | None
    n_train_nuclei: int
    max_nuclei_per_image: int


def split_ids(image_ids: list[int], val_fraction: float, seed: int) -> set[int]:
    """The image ids held out for validation: a seeded, reproducible choice.

    At least one image is held out when ``val_fraction > 0``, and at least one is kept
    for training.
    """
    if val_fraction <= 0 or len(image_ids) < 2:
        return set()
    n_val = min(max(1, round(len(image_ids) * val_fraction)), len(image_ids) - 1)
    order = np.random.default_rng(seed).permutation(sorted(image_ids))
    return {int(i) for i in order[:n_val]}


def _dataset_dicts(dataset: Dataset, coco: dict) -> list[dict]:
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(
            {"bbox": ann["bbox"], "bbox_mode": 1, "category_id": 0,  # 1: BoxMode.XYWH_ABS
             "segmentation": ann["segmentation"]}
        )
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    return [
        {"file_name": str(r.path), "image_id": r.image_id, "height": sizes[r.image_id][0],
         "width": sizes[r.image_id][1], "annotations": by_image.get(r.image_id, [])}
        for r in dataset.records
    ]


def _convert(dataset: Dataset, what: str) -> Generator[StepProgress, None, dict]:
    if not dataset.annotated:
        raise DatasetError(dataset.root, f"the {what} data has no nuclei annotations")
    job = iter_conversion(dataset)
    try:
        while True:
            step = next(job)
            yield StepProgress(step.done, step.total, f"{what}: {step.item}")
    except StopIteration as finished:
        return finished.value
    finally:
        job.close()


def prepare_training_data(
    data: str | Path,
    run_dir: Path,
    val_data: str | Path | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    image_root: str | Path | None = None,
) -> Generator[StepProgress, None, TrainingData]:
    """Read and check the training (and validation) images, yielding per-image progress.

    Writes the COCO JSON of what is trained and validated on into ``run_dir``.

    Parameters
    ----------
    data : str or Path
        Any annotated layout :func:`~napari_nuclei.core.dataset.open_dataset` reads.
    run_dir : Path
        The run folder.
    val_data : str or Path, optional
        A separate annotated validation set.
    val_fraction : float
        Share of ``data`` held out for validation when ``val_data`` is not given.
    seed : int
        Seed of the hold-out split.
    image_root : str or Path, optional
        Image folder of a COCO JSON ``data``.

    Returns
    -------
    TrainingData
    """
    dataset = open_dataset(data, image_root=image_root)
    conversion = yield from _convert(dataset, "train")
    dicts = _dataset_dicts(dataset, conversion.coco)
    if val_data is not None:
        val_set = open_dataset(val_data)
        val_conversion = yield from _convert(val_set, "validation")
        val_coco = val_conversion.coco
        val_dicts = _dataset_dicts(val_set, val_coco)
        train_dicts, train_coco = dicts, conversion.coco
    else:
        held_out = split_ids([d["image_id"] for d in dicts], val_fraction, seed)
        train_dicts = [d for d in dicts if d["image_id"] not in held_out]
        val_dicts = [d for d in dicts if d["image_id"] in held_out]
        coco = conversion.coco
        train_coco = _subset(coco, {d["image_id"] for d in train_dicts})
        val_coco = _subset(coco, held_out)
    n_nuclei = [len(d["annotations"]) for d in train_dicts + val_dicts]
    if not sum(len(d["annotations"]) for d in train_dicts):
        raise DatasetError(dataset.root, "no nuclei to train on")
    write_json_atomic(run_dir / TRAIN_JSON, train_coco)
    val_json = write_json_atomic(run_dir / VAL_JSON, val_coco) if val_dicts else None
    return TrainingData(train_dicts, val_dicts, val_json,
                        sum(len(d["annotations"]) for d in train_dicts), max(n_nuclei))


def _subset(coco: dict, image_ids: set[int]) -> dict:
    return coco_document(
        [im for im in coco["images"] if im["id"] in image_ids],
        [a for a in coco["annotations"] if a["image_id"] in image_ids],
    )


def register(name: str, dicts: list[dict], json_file: Path | None = None) -> str:
    """Register dataset dicts (and their COCO JSON, for evaluation) with detectron2."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: dicts)
    metadata = MetadataCatalog.get(name)
    metadata.set(thing_classes=["nucleus"], thing_dataset_id_to_contiguous_id={1: 0})
    if json_file is not None:
        metadata.set(json_file=str(json_file))
    return name
