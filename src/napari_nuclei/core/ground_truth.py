"""Ground truth for scoring, from any annotated layout or a COCO JSON (images optional)."""

from __future__ import annotations

import json
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
        coco = drain(iter_conversion(dataset)).coco
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
    """A COCO instances JSON as ground truth (its images need not be present)."""
    from .coco import coco_document, compressed_rle, make_annotation
    from .errors import DatasetError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
        annotations = [
            make_annotation(number, a["image_id"],
                            compressed_rle(a["segmentation"], *sizes[a["image_id"]]))
            for number, a in enumerate(data.get("annotations", []), start=1)
        ]
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(path, f"not a COCO instances file with image sizes and "
                           f"segmentations ({type(exc).__name__}: {exc})") from None
    images = [{k: im[k] for k in ("id", "file_name", "height", "width")}
              for im in data["images"]]
    return coco_document(images, annotations)
