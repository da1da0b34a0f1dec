"""Convert a dataset in any supported layout to a COCO instances JSON with RLE masks.

Each image is handled on its own (masks streamed one file at a time, so memory holds at
most one image's coverage map), in worker processes when there are many mask files:
PNG decoding is most of the cost and parallelises across cores.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Generator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import rle as rle_utils
from .atomic import write_json_atomic
from .coco import coco_document, compressed_rle, make_annotation
from .dataset import Dataset, ImageRecord
from .errors import DatasetError, OptionError
from .image_io import image_size, read_image, read_labels, read_mask
from .jobs import StepProgress, drain, usable_cores
from .labels import iter_label_rles
from .validate.schemas import is_crowd

DEFAULT_CATEGORY = 1
# Below this many mask files, starting worker processes costs more than it saves.
_PARALLEL_MIN_FILES = 200
_PARALLEL_MIN_IMAGES = 16


@dataclass
class ImageAnnotations:
    """The nuclei found for one image, before ids are assigned.

    ``categories`` and ``crowd_categories`` hold the COCO category id of each RLE of
    ``rles`` and ``crowd_rles`` (the default class, 1, where the dataset has no classes).
    """

    height: int
    width: int
    rles: list[dict]
    empty_files: list[str] = field(default_factory=list)
    overlapping: int = 0
    crowd_rles: list[dict] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    crowd_categories: list[int] = field(default_factory=list)

    def __post_init__(self):
        if not self.categories:
            self.categories = [DEFAULT_CATEGORY] * len(self.rles)

    def add_crop(self, covered: np.ndarray, top: int, left: int, crop: np.ndarray,
                 category: int) -> None:
        """Add one nucleus from its tight crop, counting it as overlapping when it
        shares pixels with those added before (marked in ``covered``)."""
        seen = covered[top : top + crop.shape[0], left : left + crop.shape[1]]
        if np.any(seen & crop):
            self.overlapping += 1
        seen |= crop
        self.rles.append(rle_utils.encode_box_mask(crop, top, left, self.height, self.width))
        self.categories.append(category)


@dataclass
class Conversion:
    """Result of a conversion: the COCO dictionary and what was tolerated on the way."""

    coco: dict
    empty_files: list[str]
    overlapping: int
    warnings: list[str]

    @property
    def n_images(self) -> int:
        return len(self.coco["images"])

    @property
    def n_annotations(self) -> int:
        return len(self.coco["annotations"])

    def warning_lines(self) -> list[str]:
        """Human-readable warnings with counts (one line each)."""
        lines = list(self.warnings)
        if self.empty_files:
            shown = ", ".join(self.empty_files[:3]) + (" ..." if len(self.empty_files) > 3 else "")
            lines.append(f"{len(self.empty_files)} empty mask(s) skipped: {shown}")
        if self.overlapping:
            lines.append(
                f"{self.overlapping} mask(s) overlap another nucleus of their image "
                "(kept as they are: COCO instances may overlap)"
            )
        return lines


def annotate_image(record: ImageRecord) -> ImageAnnotations:
    """Read one image's annotations and encode each nucleus as COCO RLE.

    Parameters
    ----------
    record : ImageRecord
        The image and its mask files, label image or COCO annotations.

    Returns
    -------
    ImageAnnotations

    Raises
    ------
    DatasetError
        For an unreadable file or a mask whose size differs from the image.
    """
    image = read_image(record.path)
    height, width = image.shape[:2]
    del image
    if record.height is not None and (record.height, record.width) != (height, width):
        raise DatasetError(
            record.path,
            f"declared as {record.height}x{record.width} (height x width) "
            f"but the image is {height}x{width}",
        )
    if record.mask_paths:
        return _annotate_masks(record, height, width)
    if record.label_path is not None:
        _check_size(record.label_path, image_size(record.label_path), record.path, height,
                    width)
        labels = read_labels(record.label_path)
        found = list(iter_label_rles(labels))
        return ImageAnnotations(height, width, [rle for _, rle in found],
                                categories=_label_categories(record, [v for v, _ in found]))
    if record.annotations:
        return _annotate_coco(record, height, width)
    if record.geojson_path is not None:
        return _annotate_geojson(record, height, width)
    return ImageAnnotations(height, width, [])


def _annotate_geojson(record: ImageRecord, height: int, width: int) -> ImageAnnotations:
    from .qupath_input import nucleus_crop
    from .validate.geojson import read_qupath_nuclei

    nuclei = read_qupath_nuclei(record.geojson_path)
    categories = record.geojson_categories or (DEFAULT_CATEGORY,) * len(nuclei)
    if len(categories) != len(nuclei):
        raise DatasetError(record.geojson_path, "changed while it was read: open the "
                           "dataset again")
    result = ImageAnnotations(height, width, [])
    covered = np.zeros((height, width), dtype=bool)
    for number, (nucleus, category) in enumerate(zip(nuclei, categories, strict=True)):
        crop = nucleus_crop(nucleus, height, width)
        if crop is None:  # outside the image, or thinner than a pixel
            result.empty_files.append(f"{record.geojson_path.name} feature {number}")
            continue
        result.add_crop(covered, *crop, category)
    return result


def _check_size(path: Path, shape, image_path: Path, height: int, width: int) -> None:
    if tuple(shape[:2]) != (height, width):
        raise DatasetError(
            path,
            f"size {shape[0]}x{shape[1]} differs from its image {image_path.name} "
            f"({height}x{width})",
        )


def _label_categories(record: ImageRecord, values: list[int]) -> list[int]:
    """The category id of each label value, from the record's class table."""
    if not record.label_categories:
        return [DEFAULT_CATEGORY] * len(values)
    table = dict(record.label_categories)
    missing = [int(v) for v in values if int(v) not in table]
    if missing:
        shown = ", ".join(str(v) for v in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DatasetError(record.class_table, f"gives no class to label(s) {shown} of "
                           f"{record.label_path.name}")
    return [table[int(v)] for v in values]


def _annotate_masks(record: ImageRecord, height: int, width: int) -> ImageAnnotations:
    result = ImageAnnotations(height, width, [])
    covered = np.zeros((height, width), dtype=bool)
    categories = record.mask_categories or (DEFAULT_CATEGORY,) * len(record.mask_paths)
    for mask_path, category in zip(record.mask_paths, categories, strict=True):
        # From the header first: a mask declaring a huge size is refused unread.
        _check_size(mask_path, image_size(mask_path), record.path, height, width)
        mask = read_mask(mask_path)
        box = rle_utils.mask_box(mask)
        if box is None:
            result.empty_files.append(str(mask_path))
            continue
        top, left, bottom, right = box
        result.add_crop(covered, top, left, mask[top:bottom, left:right], category)
    return result


def _annotate_coco(record: ImageRecord, height: int, width: int) -> ImageAnnotations:
    result = ImageAnnotations(height, width, [])
    for ann in record.annotations:
        try:
            rle = compressed_rle(ann["segmentation"], height, width)
        except (ValueError, TypeError, KeyError) as exc:
            raise DatasetError(
                record.path, f"annotation {ann.get('id')} has a bad segmentation ({exc})"
            ) from None
        if rle_utils.area(rle) == 0:
            result.empty_files.append(f"{record.file_name} annotation {ann.get('id')}")
            continue
        # COCO's iscrowd regions mark areas to ignore in evaluation, not nuclei.
        crowd = is_crowd(ann)
        (result.crowd_rles if crowd else result.rles).append(rle)
        (result.crowd_categories if crowd else result.categories).append(
            ann.get("category_id", DEFAULT_CATEGORY))
    return result


def iter_conversion(
    dataset: Dataset, workers: int | None = None, keep_crowd: bool = False
) -> Generator[StepProgress, None, Conversion]:
    """Build the COCO dictionary of ``dataset``, yielding progress after each image.

    Parameters
    ----------
    dataset : Dataset
        From :func:`napari_nuclei.core.dataset.open_dataset`.
    workers : int, optional
        Worker processes; by default one per core when the dataset has many mask
        files, otherwise none.
    keep_crowd : bool
        Write the ``iscrowd: 1`` regions of a COCO input as such (for evaluation).
        By default they are left out, so that what is trained on holds nuclei only.

    Yields
    ------
    StepProgress
        After each image, in dataset order.

    Returns
    -------
    Conversion
        The COCO dict (ids deterministic) and tolerated oddities.
    """
    records = dataset.records
    n_files = sum(len(r.mask_paths) for r in records)
    cores = usable_cores()
    if workers is None:
        workers = cores
        if n_files < _PARALLEL_MIN_FILES and len(records) < _PARALLEL_MIN_IMAGES:
            workers = 1
    elif isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= cores:
        raise OptionError("workers", f"must be from 1 to {cores} (the cores of this machine), "
                          f"got {workers!r}")
    workers = max(1, min(workers, len(records)))

    images, annotations, empty, overlapping = [], [], [], 0
    for done, (record, found) in enumerate(_annotate_all(records, workers), start=1):
        images.append(
            {
                "id": record.image_id,
                "file_name": record.file_name,
                "height": found.height,
                "width": found.width,
            }
        )
        for rle, category in zip(found.rles, found.categories, strict=True):
            annotations.append(make_annotation(len(annotations) + 1, record.image_id, rle,
                                               category_id=category))
        if keep_crowd:
            for rle, category in zip(found.crowd_rles, found.crowd_categories, strict=True):
                annotations.append(make_annotation(len(annotations) + 1, record.image_id, rle,
                                                   iscrowd=1, category_id=category))
        empty.extend(found.empty_files)
        overlapping += found.overlapping
        yield StepProgress(done, len(records), record.name)
    coco = coco_document(images, annotations, dataset.classes)
    return Conversion(coco, empty, overlapping, list(dataset.warnings))


def _annotate_all(records, workers):
    """Yield ``(record, ImageAnnotations)`` in order, in-process or in a process pool."""
    if workers == 1:
        for record in records:
            yield record, annotate_image(record)
        return
    # spawn, not fork: the caller may be a GUI with threads (fork would copy their locks).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(annotate_image, record) for record in records]
        for record, future in zip(records, futures, strict=True):
            yield record, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def convert_dataset(
    dataset: Dataset, output: str | Path, workers: int | None = None, on_progress=None,
    keep_crowd: bool = False,
) -> Conversion:
    """Convert ``dataset`` and write the COCO JSON atomically to ``output``.

    Parameters
    ----------
    dataset : Dataset
        The dataset to convert.
    output : str or Path
        The JSON file to write; nothing is written if conversion fails.
    workers : int, optional
        See :func:`iter_conversion`.
    on_progress : callable, optional
        Called with each :class:`StepProgress`.
    keep_crowd : bool
        See :func:`iter_conversion`.

    Returns
    -------
    Conversion
    """
    conversion = drain(iter_conversion(dataset, workers, keep_crowd), on_progress)
    write_json_atomic(output, conversion.coco)
    return conversion
