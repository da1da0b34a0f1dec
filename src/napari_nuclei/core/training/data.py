"""Training and validation data for detectron2: from any supported dataset layout."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..coco import coco_document
from ..convert import iter_conversion
from ..dataset import Dataset, open_dataset
from ..errors import DatasetError
from ..jobs import StepProgress
from ..nucleus_classes import ClassSet

TRAIN_JSON = "train_annotations.json"
VAL_JSON = "val_annotations.json"


@dataclass
class TrainingData:
    """Dataset dicts (detectron2's format) for training and, if any, validation.

    Their ``category_id`` is the model's class index in ``classes`` (0, 1, ...); the
    COCO JSONs written beside them keep the data's own category ids.
    """

    train: list[dict]
    val: list[dict]
    val_json: Path | None
    n_train_nuclei: int
    max_nuclei_per_image: int
    classes: ClassSet = field(default_factory=ClassSet.default)

    def nuclei_per_class(self) -> dict[str, int]:
        """Training nuclei of each class, by name."""
        counts = dict.fromkeys(self.classes.names, 0)
        for record in self.train:
            for ann in record["annotations"]:
                counts[self.classes.name_of(ann["category_id"])] += 1
        return counts


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


def _dataset_dicts(dataset: Dataset, coco: dict, classes: ClassSet) -> list[dict]:
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(
            {"bbox": ann["bbox"], "bbox_mode": 1,  # 1: BoxMode.XYWH_ABS
             "category_id": classes.index_of_id(ann["category_id"]),
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
    classes = dataset.classes
    if val_data is not None:
        val_set = open_dataset(val_data)
        _check_same_classes(dataset, val_set)
    conversion = yield from _convert(dataset, "train")
    dicts = _dataset_dicts(dataset, conversion.coco, classes)
    if val_data is not None:
        val_conversion = yield from _convert(val_set, "validation")
        val_coco = _with_classes_of(val_conversion.coco, val_set.classes, classes)
        val_dicts = _dataset_dicts(val_set, val_coco, classes)
        train_dicts, train_coco = dicts, conversion.coco
    else:
        held_out = split_ids([d["image_id"] for d in dicts], val_fraction, seed)
        train_dicts = [d for d in dicts if d["image_id"] not in held_out]
        val_dicts = [d for d in dicts if d["image_id"] in held_out]
        coco = conversion.coco
        train_coco = _subset(coco, {d["image_id"] for d in train_dicts}, classes)
        val_coco = _subset(coco, held_out, classes)
    n_nuclei = [len(d["annotations"]) for d in train_dicts + val_dicts]
    if not sum(len(d["annotations"]) for d in train_dicts):
        raise DatasetError(dataset.root, "no nuclei to train on")
    write_json_atomic(run_dir / TRAIN_JSON, train_coco)
    val_json = write_json_atomic(run_dir / VAL_JSON, val_coco) if val_dicts else None
    return TrainingData(train_dicts, val_dicts, val_json,
                        sum(len(d["annotations"]) for d in train_dicts), max(n_nuclei),
                        classes)


def _check_same_classes(train: Dataset, val: Dataset) -> None:
    """A separate validation set must name the training set's classes (it may lack
    some): the model learns the training set's classes only."""
    known = {name.casefold() for name in train.classes.names}
    unknown = [name for name in val.classes.names if name.casefold() not in known]
    if unknown and not val.classes.is_default:
        raise DatasetError(val.root, f"names class(es) {', '.join(unknown)} that the training "
                           f"data does not have ({', '.join(train.classes.names)})")
    if val.classes.is_default and not train.classes.is_default:
        raise DatasetError(val.root, "has no nucleus classes, while the training data has "
                           f"{len(train.classes)} ({', '.join(train.classes.names)})")


def _with_classes_of(coco: dict, own: ClassSet, classes: ClassSet) -> dict:
    """A validation document renumbered to the training set's category ids."""
    ids = {entry.id: classes.classes[classes.index_of_name(entry.name)].id
           for entry in own} if not own.is_default else {1: classes.ids[0]}
    annotations = [{**a, "category_id": ids[a["category_id"]]} for a in coco["annotations"]]
    return coco_document(coco["images"], annotations, classes)


def _subset(coco: dict, image_ids: set[int], classes: ClassSet) -> dict:
    return coco_document(
        [im for im in coco["images"] if im["id"] in image_ids],
        [a for a in coco["annotations"] if a["image_id"] in image_ids],
        classes,
    )


def register(name: str, dicts: list[dict], json_file: Path | None = None,
             classes: ClassSet | None = None) -> str:
    """Register dataset dicts (and their COCO JSON, for evaluation) with detectron2,
    with the names and COCO ids of ``classes`` (the one default class by default)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    classes = classes or ClassSet.default()
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: dicts)
    metadata = MetadataCatalog.get(name)
    metadata.set(thing_classes=list(classes.names),
                 thing_dataset_id_to_contiguous_id={c.id: i for i, c in enumerate(classes)})
    if json_file is not None:
        metadata.set(json_file=str(json_file))
    return name
