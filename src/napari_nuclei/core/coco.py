"""COCO instances documents: annotations from RLE, label images to and from COCO.

Documents carry the nucleus classes of their data as ``categories``
(:meth:`~.nucleus_classes.ClassSet.categories`): the one ``nucleus`` category by default.
"""

from __future__ import annotations

import numpy as np

from . import rle as rle_utils
from .labels import iter_label_rles, rles_to_labels
from .nucleus_classes import ClassSet
from .validate.schemas import is_crowd
from .validate.segmentation import check_segmentation


def make_annotation(ann_id: int, image_id: int, rle: dict, category_id: int = 1,
                    **extra) -> dict:
    """A COCO annotation for one nucleus, with area and box computed from its RLE.

    Parameters
    ----------
    ann_id, image_id : int
        Annotation and image ids.
    rle : dict
        Compressed RLE with string ``counts``.
    category_id : int
        The nucleus class (COCO category id; 1, ``nucleus``, by default).
    **extra
        Further fields (``score`` for predictions).

    Returns
    -------
    dict
    """
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": int(category_id),
        "segmentation": rle,
        "area": rle_utils.area(rle),
        "bbox": rle_utils.bbox(rle),
        "iscrowd": 0,
        **extra,
    }


def compressed_rle(segmentation, height: int, width: int) -> dict:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) as compressed RLE
    with string ``counts``.

    The segmentation is checked first (:func:`~.validate.segmentation.check_segmentation`):
    pycocotools itself would read past its buffers or allocate without bound.

    Raises
    ------
    InvalidValue
        For a malformed segmentation or an RLE of another size.
    """
    from pycocotools import mask as mask_utils

    check_segmentation(segmentation, height, width)
    if isinstance(segmentation, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = rle_utils.with_bytes_counts(segmentation)
    counts = rle["counts"]
    return {"size": [height, width],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def coco_document(images: list[dict], annotations: list[dict],
                  classes: ClassSet | None = None) -> dict:
    """Assemble a COCO instances dictionary whose categories are ``classes`` (by default
    the single ``nucleus`` category)."""
    classes = classes or ClassSet.default()
    return {"images": images, "annotations": annotations, "categories": classes.categories()}


def labels_to_coco(labels: np.ndarray, file_name: str, image_id: int = 1,
                   label_classes: dict[int, str] | None = None) -> dict:
    """A COCO document for one label image: one annotation per label value.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(H, W)`` non-negative integer label image.
    file_name : str
        The image's file name, recorded in ``images``.
    image_id : int
        Its COCO id.
    label_classes : dict of int to str, optional
        The class name of each label value; the categories are then the names, numbered
        in their order (a label without a class is refused: it would be a silent guess).

    Returns
    -------
    dict
    """
    from .nucleus_classes import merged_names

    if labels.ndim != 2:
        raise ValueError(f"expected a 2D label image, got shape {labels.shape}")
    height, width = labels.shape
    classes = ClassSet.from_names(merged_names([(label_classes or {}).values()]))
    ids = {label: classes.classes[classes.index_of_name(name)].id
           for label, name in (label_classes or {}).items()}
    annotations = []
    for number, (value, rle) in enumerate(iter_label_rles(labels), start=1):
        if label_classes and int(value) not in ids:
            raise ValueError(f"label {value} has no class (the others have one)")
        annotations.append(make_annotation(number, image_id, rle, ids.get(int(value), 1)))
    image = {"id": image_id, "file_name": file_name, "height": height, "width": width}
    return coco_document([image], annotations, classes)


def coco_to_labels(coco: dict, image_id: int) -> np.ndarray:
    """Paint the annotations of one image of a COCO document into a label image.

    Annotations are painted in document order (later ones win overlaps); label values
    follow that order, starting at 1. ``iscrowd`` regions are not nuclei and are left out.

    Parameters
    ----------
    coco : dict
        COCO instances document with RLE segmentations.
    image_id : int
        Which image.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int32.
    """
    image = next((im for im in coco["images"] if im["id"] == image_id), None)
    if image is None:
        raise KeyError(f"no image with id {image_id}")
    rles = [a["segmentation"] for a in coco["annotations"]
            if a["image_id"] == image_id and not is_crowd(a)]
    return rles_to_labels(rles, image["height"], image["width"])
