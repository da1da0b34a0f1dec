"""Dataset images as napari layer data tuples (no Qt, no viewer)."""

from __future__ import annotations

from .core.annotations import record_labels
from .core.dataset import Dataset, ImageRecord
from .core.image_io import read_image


def record_layer_data(record: ImageRecord, annotated: bool) -> list[tuple]:
    """Layer data for one image: the image, and its nuclei as a Labels layer.

    Parameters
    ----------
    record : ImageRecord
        The image to open.
    annotated : bool
        Whether the dataset carries nuclei for it.

    Returns
    -------
    list of tuple
        ``(data, kwargs, layer_type)`` tuples as napari readers return.
    """
    image = read_image(record.path)
    meta = {"source_file": str(record.path), "image_id": record.image_id}
    layers = [(image, {"name": record.name, "rgb": image.ndim == 3, "metadata": meta}, "image")]
    if annotated:
        labels = record_labels(record)
        layers.append((labels, {"name": f"{record.name} nuclei", "metadata": meta}, "labels"))
    return layers


def dataset_layer_data(dataset: Dataset, max_images: int) -> list[tuple]:
    """Layer data for the first ``max_images`` images of a dataset."""
    layers: list[tuple] = []
    for record in dataset.records[:max_images]:
        layers.extend(record_layer_data(record, dataset.annotated))
    return layers
