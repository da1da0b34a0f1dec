"""Ground truth for scoring, from any annotated layout or a COCO JSON (images optional)."""

from __future__ import annotations

from pathlib import Path


def load_ground_truth(path: Path, test_ids: Path | None = None) -> dict:
    """Ground truth as a COCO document; with ``test_ids``, image ids follow that file."""
    from .convert import iter_conversion
    from .dataset import open_dataset, read_test_ids
    from .errors import DatasetError
    from .jobs import drain

    if path.is_file() and path.suffix.lower() == ".json":
        coco = read_coco_ground_truth(path)
    else:
        dataset = open_dataset(path)
        if not dataset.annotated:
            raise DatasetError(path, "holds no nuclei annotations to compare against")
        coco = drain(iter_conversion(dataset, keep_crowd=True)).coco
    if test_ids is None:
        return coco
    ids = {Path(e["file_name"]).stem: e["id"] for e in read_test_ids(test_ids)}
    remap = {}
    for image in coco["images"]:
        stem = Path(image["file_name"]).stem
        if stem not in ids:
            raise DatasetError(test_ids, f"does not list the ground-truth image {stem}")
        remap[image["id"]] = ids[stem]
        image["id"] = ids[stem]
    for ann in coco["annotations"]:
        ann["image_id"] = remap[ann["image_id"]]
    return coco


def read_coco_ground_truth(path: Path) -> dict:
    """A COCO instances JSON as ground truth (its images need not be present).

    Every image must declare its size. Where the image file is present beside the JSON
    its header must agree; where it is absent, the declared size is only accepted up to
    the pixel limit (``--max-pixels``), since scoring allocates label images of that
    size. ``iscrowd`` regions are kept as COCO's ignore regions. Its ``categories`` are
    the nucleus classes scored.
    """
    from .coco import coco_document, compressed_rle, make_annotation
    from .dataset import check_declared_size
    from .dataset_layouts import annotation_category
    from .nucleus_classes import ClassSet
    from .validate import in_file, load_json
    from .validate.paths import inside
    from .validate.schemas import check_coco, is_crowd

    data = check_coco(load_json(path), path, sizes_required=True)
    for number, image in enumerate(data["images"]):
        with in_file(path, f"image entry {number}"):
            image_path = inside(path.parent, image["file_name"])
        if image_path.is_file():
            check_declared_size(path, f"image entry {number}", image_path, image["height"],
                                image["width"])
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    declared = data.get("categories") or []
    classes = ClassSet.from_categories(declared, path)
    annotations = []
    for number, ann in enumerate(data.get("annotations", []), start=1):
        with in_file(path, f"annotation {number - 1}"):
            rle = compressed_rle(ann["segmentation"], *sizes[ann["image_id"]])
            category = annotation_category(ann, classes, bool(declared))
        annotations.append(make_annotation(number, ann["image_id"], rle, category,
                                           iscrowd=int(is_crowd(ann))))
    images = [{k: im[k] for k in ("id", "file_name", "height", "width")}
              for im in data["images"]]
    return coco_document(images, annotations, classes)
