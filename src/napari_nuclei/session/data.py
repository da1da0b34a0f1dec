"""Where the Data section's files go (no Qt)."""

from __future__ import annotations

from pathlib import Path

COCO_JSON_NAME = "annotations.json"


def coco_json_target(dataset_root: Path | None, output_dir: Path | None) -> Path:
    """Where *Save as COCO JSON…* offers to write the checked training data.

    The file names in the JSON are relative to the dataset's root, and a COCO JSON finds
    its images relative to its own folder: saved into the dataset's root it opens again
    (File ▸ Open, or as training data) without naming an image folder. Without a
    dataset root the session's output folder is offered, then the home folder; never
    the folder napari happened to be started from.

    Parameters
    ----------
    dataset_root : Path or None
        The root of the dataset checked (``Dataset.root``).
    output_dir : Path or None
        The session's output folder.

    Returns
    -------
    Path
        A file path for the save dialog to start at.
    """
    for folder in (dataset_root, output_dir):
        if folder is not None and Path(folder).is_dir():
            return Path(folder) / COCO_JSON_NAME
    return Path.home() / COCO_JSON_NAME


def ground_truth_layers(record, classes) -> list[tuple]:
    """Layer data for a data set image and its nuclei, each nucleus coloured by its
    class and named in a ``class`` feature (with several classes; else as read).

    Parameters
    ----------
    record : ImageRecord
        An image of an annotated data set.
    classes : ClassSet
        The data set's classes.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)`` tuples as napari readers return.
    """
    import numpy as np

    from .._layers import record_layer_data
    from ..core.convert import annotate_image
    from ..core.image_io import read_image
    from ..core.labels import rles_to_labels
    from .image_classes import ImageClasses

    if len(classes) <= 1:
        return record_layer_data(record, True)
    image = read_image(record.path)
    found = annotate_image(record)
    # Label i + 1 is annotation i, as the one-class layer numbers them.
    labels = rles_to_labels(found.rles, found.height, found.width)
    kinds = ImageClasses(classes, {index + 1: classes.index_of_id(category)
                                   for index, category in enumerate(found.categories)})
    values = np.arange(1, len(found.rles) + 1)
    names = np.asarray(classes.names, dtype=object)
    meta = {"source_file": str(record.path), "image_id": record.image_id}
    return [(image, {"name": record.name, "rgb": image.ndim == 3, "metadata": meta}, "image"),
            (labels, {"name": f"{record.name} nuclei", "metadata": meta,
                      "colormap": kinds.colours(values),
                      "features": {"index": values,
                                   "class": names[[kinds.of(v) for v in values]]}},
             "labels")]


def classes_line(coco: dict) -> str | None:
    """The nuclei of each class of a checked data set, as one line (None for one
    class)."""
    categories = coco.get("categories") or []
    if len(categories) <= 1:
        return None
    counts = {c["id"]: 0 for c in categories}
    for annotation in coco.get("annotations", ()):
        counts[annotation["category_id"]] = counts.get(annotation["category_id"], 0) + 1
    return f"{len(categories)} nucleus classes: " + ", ".join(
        f"{c['name']} {counts[c['id']]}" for c in categories)
