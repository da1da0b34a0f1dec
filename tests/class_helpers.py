"""A generated two-class nuclei set (no labelled classes ship with the sample data),
written in each layout that can carry classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import disk, write_png

# Large pale tumour nuclei and small dark lymphocytes, as on H&E.
CLASSES = {"tumor": (9, (110, 50, 140)), "lymphocyte": (4, (40, 20, 70))}
SHAPE = (96, 96)


def class_image(seed: int):
    """An RGB image with nuclei of both classes on a grid (none touching), its label
    image and the class name of each label."""
    rng = np.random.default_rng(seed)
    image = np.full((*SHAPE, 3), (232, 200, 222), np.uint8)
    labels = np.zeros(SHAPE, np.int32)
    names: dict[int, str] = {}
    label = 0
    for row in range(12, SHAPE[0] - 8, 24):
        for col in range(12, SHAPE[1] - 8, 24):
            name = ("tumor", "lymphocyte")[int(rng.integers(0, 2))]
            radius, colour = CLASSES[name]
            mask = disk(SHAPE, (row + int(rng.integers(-2, 3)), col + int(rng.integers(-2, 3))),
                        radius)
            label += 1
            labels[mask] = label
            image[mask] = colour
            names[label] = name
    noise = rng.integers(-12, 13, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), labels, names


def write_dsb_classes(root: Path, count: int = 3) -> Path:
    """``train/<id>/images/<id>.png`` and ``masks/<class>/*.png``."""
    for index in range(count):
        image, labels, names = class_image(index)
        sample = root / "train" / f"img{index}"
        write_png(sample / "images" / f"img{index}.png", image)
        for label, name in names.items():
            write_png(sample / "masks" / name / f"n{label:03d}.png",
                      (labels == label).astype(np.uint8) * 255)
    return root


def write_label_classes(folder: Path, count: int = 3) -> Path:
    """``<name>.png``, ``<name>_labels.tif`` and ``<name>_classes.csv``."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, labels, names = class_image(index)
        write_png(folder / f"img{index}.png", image)
        tifffile.imwrite(folder / f"img{index}_labels.tif", labels)
        rows = "".join(f"{label},{name}\n" for label, name in names.items())
        (folder / f"img{index}_classes.csv").write_text("label,class\n" + rows)
    return folder


def write_coco_classes(folder: Path, count: int = 3, ids=(7, 3)) -> Path:
    """Images and a COCO JSON whose categories are ``tumor`` (id 7) and ``lymphocyte``
    (id 3)."""
    from napari_nuclei.core.coco import make_annotation
    from napari_nuclei.core.labels import iter_label_rles

    folder.mkdir(parents=True, exist_ok=True)
    category = dict(zip(CLASSES, ids, strict=True))
    images, annotations = [], []
    for index in range(count):
        image, labels, names = class_image(index)
        write_png(folder / f"img{index}.png", image)
        images.append({"id": index + 1, "file_name": f"img{index}.png",
                       "height": SHAPE[0], "width": SHAPE[1]})
        for value, rle in iter_label_rles(labels):
            annotations.append(make_annotation(len(annotations) + 1, index + 1, rle,
                                               category[names[value]]))
    document = {"images": images, "annotations": annotations,
                "categories": [{"id": i, "name": n} for n, i in category.items()]}
    path = folder / "annotations.json"
    path.write_text(json.dumps(document))
    return path


def classes_per_nucleus(coco: dict) -> list[tuple[int, int, str]]:
    """``(image id, area, class name)`` of each annotation, sorted, for comparing
    layouts."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    return sorted((a["image_id"], int(a["area"]), names[a["category_id"]])
                  for a in coco["annotations"])


def write_geojson_classes(folder: Path, count: int = 3) -> Path:
    """Images and ``<name>.geojson`` of their nuclei, as this project writes QuPath
    detections (outlines along pixel edges, a classification per class)."""
    from napari_nuclei.core.nucleus_classes import ClassSet
    from napari_nuclei.core.predict.instances import Prediction
    from napari_nuclei.core.slide.measure import measure_prediction

    classes = ClassSet.from_names(sorted(CLASSES))
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, labels, names = class_image(index)
        write_png(folder / f"img{index}.png", image)
        crops, kinds = [], []
        for label, name in names.items():
            rows, cols = np.nonzero(labels == label)
            top, left = rows.min(), cols.min()
            crops.append((int(top), int(left),
                          labels[top : rows.max() + 1, left : cols.max() + 1] == label))
            kinds.append(classes.index_of_name(name))
        prediction = Prediction.from_unsorted(*SHAPE, [0.9] * len(crops), crops,
                                              classes=kinds)
        _, lines = measure_prediction(prediction, image, classes=classes)
        (folder / f"img{index}.geojson").write_text(
            '{"type":"FeatureCollection","features":[' + ",".join(lines) + "]}")
    return folder
