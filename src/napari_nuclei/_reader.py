"""napari reader: COCO JSON files, test folders' ids files, and whole-slide files.

Whole-slide files (Aperio SVS, Hamamatsu NDPI, Leica SCN, MIRAX, ...) open as a lazy
multiscale image: nothing of level 0 is read until it is viewed. Pyramidal TIFF and
OME-Zarr slides open from the dock's slide section instead: claiming every ``.tif`` or
folder would make napari ask which reader to use for ordinary images.
"""

from __future__ import annotations

from pathlib import Path

from ._layers import dataset_layer_data
from .core.dataset import open_dataset
from .core.errors import DatasetError

# Opening hundreds of images as layers at once helps nobody; the dock browses the rest.
MAX_IMAGES_OPENED = 8
# Suffixes of slide formats (the manifest's filename patterns say the same).
SLIDE_SUFFIXES = (".svs", ".ndpi", ".scn", ".mrxs", ".vms", ".vmu", ".bif", ".svslide")


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
    if path.is_file() and path.suffix.lower() in SLIDE_SUFFIXES:
        return _read_slide
    if path.is_file() and path.suffix.lower() != ".json":
        return None
    try:
        dataset = open_dataset(path)
    except DatasetError as exc:
        if path.suffix.lower() == ".json":
            # napari gave this JSON to the plugin (the manifest claims *.json): refusing it
            # would leave napari's "refused the file", which never says why.
            return lambda _path, error=exc: _refused(error)
        return None
    if dataset.layout == "images":
        return None
    return lambda _path: _read(dataset)


def _refused(exc: DatasetError):
    """Say in one line which file cannot be opened and why; open nothing."""
    from napari.utils.notifications import show_error

    show_error(f"Not opened: {exc}")
    return [(None,)]  # napari's "nothing to add", not an error of its own


def _read_slide(path):
    from .core.errors import InputError
    from .core.slide.lazy import slide_layer_data

    if isinstance(path, list):
        path = path[0]
    try:
        return [slide_layer_data(path)]
    except InputError as exc:
        from napari.utils.notifications import show_error

        show_error(str(exc))
        return [(None,)]


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
