"""napari writers: a Labels layer as COCO instances JSON or as a TIFF label image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core.atomic import atomic_path, write_json_atomic
from .core.coco import labels_to_coco


def _image_file_name(attributes: dict) -> str:
    source = attributes.get("metadata", {}).get("source_file")
    return Path(source).name if source else f"{attributes.get('name', 'image')}.png"


def _as_2d_labels(data, path: str) -> np.ndarray:
    labels = np.asarray(data)
    if labels.ndim != 2:
        raise ValueError(f"{path}: only 2D label images can be saved, got shape {labels.shape}")
    return labels.astype(np.int32, copy=False)


def write_labels_coco(path: str, data, attributes: dict) -> list[str]:
    """Save a Labels layer as COCO instances JSON (one annotation per label value).

    Parameters
    ----------
    path : str
        Output ``.json`` file.
    data : array-like
        The layer's 2D label data.
    attributes : dict
        The layer's attributes; ``metadata["source_file"]`` names the image if known, and
        a ``class`` column of its ``features`` (with the ``index`` or ``label`` column of
        the label values) gives each nucleus its class.

    Returns
    -------
    list of str
        The written path.
    """
    labels = _as_2d_labels(data, path)
    image_id = int(attributes.get("metadata", {}).get("image_id", 1))
    try:
        document = labels_to_coco(labels, _image_file_name(attributes), image_id,
                                  _label_classes(attributes.get("features")))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    write_json_atomic(path, document)
    return [path]


def _label_classes(features) -> dict[int, str] | None:
    """``label -> class name`` from a layer's feature table, None without classes."""
    columns = getattr(features, "columns", ())
    key = "index" if "index" in columns else "label" if "label" in columns else None
    if features is None or "class" not in columns or key is None:
        return None
    return {int(label): str(name) for label, name in zip(features[key], features["class"],
                                                         strict=True)
            if name is not None and name == name}  # NaN: a row without a class


def write_labels_tiff(path: str, data, attributes: dict) -> list[str]:
    """Save a Labels layer as an int32 TIFF label image.

    Parameters
    ----------
    path : str
        Output ``.tif`` file.
    data : array-like
        The layer's 2D label data.
    attributes : dict
        The layer's attributes (unused).

    Returns
    -------
    list of str
        The written path.
    """
    import tifffile

    labels = _as_2d_labels(data, path)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, labels, compression="zlib")
    return [path]
