"""The layouts whose nuclei are described in files beside the images or in one document:
label images (with their class tables), QuPath GeoJSON and COCO JSON.

Opened through :func:`napari_nuclei.core.dataset.open_dataset`, which tells the layouts
apart; each opener lists the images, checks the annotation files through the gate and
records each nucleus source's class.
"""

from __future__ import annotations

from pathlib import Path

from .dataset import (
    _LABEL_FILE_SUFFIXES,
    CLASS_TABLE_SUFFIX,
    LABEL_SUFFIX,
    Dataset,
    ImageRecord,
    _followed,
    _image_files,
    _relative,
    check_declared_size,
)
from .errors import DatasetError
from .nucleus_classes import ClassSet, merged_names
from .qupath_input import geojson_beside, qupath_class_names
from .validate import in_file, load_json
from .validate.classes import read_class_table
from .validate.fields import InvalidValue
from .validate.paths import inside
from .validate.schemas import check_coco
from .validate.segmentation import check_segmentation


def open_labels_layout(folder: Path) -> Dataset:
    """A folder of images with a label image each (and ``<name>_classes.csv`` class
    tables, all or none)."""
    labels_dir = _followed(folder, folder / "labels")
    images = [p for p in _image_files(folder, folder) if not p.stem.endswith(LABEL_SUFFIX)]
    records = []
    warnings = []
    tables: dict[int, tuple[Path, dict[int, str]]] = {}
    for image_id, image_path in enumerate(images, start=1):
        label_path = _find_label_file(image_path, folder, labels_dir)
        if label_path is None:
            warnings.append(f"{image_path}: no label image, counted as having no nuclei")
        else:
            table = _find_class_table(image_path, label_path, folder)
            if table is not None:
                tables[image_id] = (table, read_class_table(table))
        records.append(
            ImageRecord(
                image_id,
                image_path.stem,
                image_path,
                _relative(image_path, folder),
                label_path=label_path,
            )
        )
    if not records:
        raise DatasetError(folder, "label images found but no images beside them")
    if not tables:
        return Dataset(folder, "labels", tuple(records), tuple(warnings))
    untabled = [r for r in records if r.label_path is not None and r.image_id not in tables]
    if untabled:
        raise DatasetError(untabled[0].label_path, "has no class table "
                           f"{untabled[0].name}{CLASS_TABLE_SUFFIX}, while other label "
                           "images have one: every labelled image needs its classes")
    classes = ClassSet.from_names(merged_names([t.values() for _, t in tables.values()]))
    records = [
        r if r.image_id not in tables else ImageRecord(
            r.image_id, r.name, r.path, r.file_name, label_path=r.label_path,
            class_table=tables[r.image_id][0],
            label_categories=tuple(
                (label, classes.classes[classes.index_of_name(name)].id)
                for label, name in sorted(tables[r.image_id][1].items())))
        for r in records]
    return Dataset(folder, "labels", tuple(records), tuple(warnings), classes)


def open_geojson_layout(folder: Path) -> Dataset:
    """A folder of images with ``<name>.geojson`` QuPath objects beside them."""
    images = _image_files(folder, folder)
    found, warnings = [], []
    for image_id, image_path in enumerate(images, start=1):
        geojson = geojson_beside(image_path)
        if not _followed(folder, geojson).is_file():
            warnings.append(f"{image_path}: no {geojson.name}, counted as having no nuclei")
            found.append((image_id, image_path, None, []))
            continue
        found.append((image_id, image_path, geojson, qupath_class_names(geojson)))
    named = [n for *_, names in found for n in names if n is not None]
    classes = ClassSet.from_names(merged_names([named])) if named else ClassSet.default()
    records = []
    for image_id, image_path, geojson, names in found:
        if named and None in names:
            raise DatasetError(geojson, f"feature {names.index(None)} is an unclassified "
                               "nucleus, while other nuclei have classes: classify it in "
                               "QuPath or remove it")
        categories = (tuple(classes.classes[classes.index_of_name(n)].id for n in names)
                      if named else ())
        records.append(ImageRecord(image_id, image_path.stem, image_path,
                                   _relative(image_path, folder), geojson_path=geojson,
                                   geojson_categories=categories))
    return Dataset(folder, "geojson", tuple(records), tuple(warnings), classes)


def _find_class_table(image_path: Path, label_path: Path, folder: Path) -> Path | None:
    """``<name>_classes.csv`` beside the label image or beside the image."""
    stem = image_path.stem
    candidates = [label_path.parent / f"{stem}{CLASS_TABLE_SUFFIX}",
                  image_path.parent / f"{stem}{CLASS_TABLE_SUFFIX}"]
    return next((c for c in candidates if _followed(folder, c).is_file()), None)


def _find_label_file(image_path: Path, folder: Path, labels_dir: Path) -> Path | None:
    stem = image_path.stem
    candidates = [folder / f"{stem}{LABEL_SUFFIX}{s}" for s in _LABEL_FILE_SUFFIXES]
    candidates += [labels_dir / f"{stem}{s}" for s in _LABEL_FILE_SUFFIXES]
    candidates += [labels_dir / f"{stem}{LABEL_SUFFIX}{s}" for s in _LABEL_FILE_SUFFIXES]
    return next((c for c in candidates if _followed(folder, c).is_file()), None)


def open_coco_layout(json_path: Path, image_root: Path) -> Dataset:
    """A COCO instances JSON, its images under ``image_root``, its categories the
    classes."""
    data = check_coco(load_json(json_path), json_path)
    declared = data.get("categories") or []
    classes = ClassSet.from_categories(declared, json_path)
    by_image: dict[int, list[tuple[int, dict]]] = {}
    for number, ann in enumerate(data.get("annotations", [])):
        with in_file(json_path, f"annotation {number}"):
            ann = {**ann, "category_id": annotation_category(ann, classes, bool(declared))}
        by_image.setdefault(ann["image_id"], []).append((number, ann))
    image_root = image_root.expanduser().resolve()
    records = []
    for number, image in enumerate(data["images"]):
        with in_file(json_path, f"image entry {number}"):
            image_path = inside(image_root, image["file_name"])
        if not image_path.is_file():
            raise DatasetError(
                json_path, f"image {image['file_name']} not found under {image_root}"
            )
        height, width = check_declared_size(json_path, f"image entry {number}", image_path,
                                            image.get("height"), image.get("width"))
        annotations = by_image.get(image["id"], [])
        if "height" not in image:  # declared sizes were checked with the document
            for ann_number, ann in annotations:
                with in_file(json_path, f"annotation {ann_number}"):
                    check_segmentation(ann["segmentation"], height, width)
        records.append(
            ImageRecord(
                image["id"],
                Path(image["file_name"]).stem,
                image_path,
                Path(image["file_name"]).as_posix(),
                annotations=tuple(ann for _, ann in annotations),
                height=height,
                width=width,
            )
        )
    warnings = []
    n_crowd = sum(ann.get("iscrowd", 0) == 1 for ann in data.get("annotations", []))
    if n_crowd:
        warnings.append(
            f"{json_path}: {n_crowd} iscrowd region(s) are COCO ignore regions, not nuclei: "
            "never trained on; evaluation ignores detections inside them"
        )
    return Dataset(image_root, "coco", tuple(records), tuple(warnings), classes)


def annotation_category(annotation: dict, classes: ClassSet, declared: bool) -> int:
    """The category id of a COCO annotation, one of the document's categories.

    A document declaring no categories has one class, whatever its annotations say (as
    files written before classes existed); without a ``category_id``, an annotation is of
    the only category.
    """
    if not declared:
        return classes.ids[0]
    if "category_id" not in annotation:
        if len(classes) > 1:
            raise InvalidValue(f"has no category_id, and the file has {len(classes)} "
                               "categories")
        return classes.ids[0]
    category_id = annotation["category_id"]
    if category_id not in classes.ids:
        known = ", ".join(str(i) for i in classes.ids)
        raise InvalidValue(f"category_id {category_id} is not one of the file's categories "
                           f"({known})")
    return category_id
