"""napari reader: DSB folders, label-image folders, test folders and COCO JSON files."""

from __future__ import annotations

from pathlib import Path

from ._layers import dataset_layer_data
from .core.dataset import open_dataset
from .core.errors import DatasetError

# Opening hundreds of images as layers at once helps nobody; the dock browses the rest.
MAX_IMAGES_OPENED = 8


def get_reader(path):
    """Return a reader for ``path`` when it is a dataset this plugin understands.

    Parameters
    ----------
    path : str or list of str
        What was dropped on or opened in napari.

    Returns
    -------
    callable or None
        None for single images and unrelated files, so napari's own readers take them.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    if path.is_file() and path.suffix.lower() != ".json":
        return None
    try:
        dataset = open_dataset(path)
    except DatasetError:
        return None
    if dataset.layout == "images":
        return None
    return lambda _path: _read(dataset)


def _read(dataset):
    if len(dataset) > MAX_IMAGES_OPENED:
        from napari.utils.notifications import show_info

        show_info(
            f"Opened the first {MAX_IMAGES_OPENED} of {len(dataset)} images of {dataset.root}"
        )
    try:
        return dataset_layer_data(dataset, MAX_IMAGES_OPENED)
    except DatasetError as exc:
        from napari.utils.notifications import show_error

        show_error(str(exc))
        return [(None,)]
