"""Label images on disk for correction: ``<name>.tif`` plus a ``<name>.csv`` score table.

Prediction writes both; after a person corrects the TIFF (in napari or elsewhere),
export reads them back: nuclei keep their predicted score, nuclei drawn by hand
(labels absent from the table) get score 1.0.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import DatasetError
from .image_io import IMAGE_SUFFIXES, image_size, read_labels
from .validate.classes import read_class_table
from .validate.schemas import read_score_rows

HAND_MADE_SCORE = 1.0
_LABEL_SUFFIX = "_labels"


def write_label_outputs(folder: str | Path, name: str, labels: np.ndarray,
                        features: dict[str, np.ndarray]) -> Path:
    """Write ``<name>.tif`` (int32, zlib) and ``<name>.csv`` (the features) atomically.

    Returns
    -------
    Path
        The TIFF.
    """
    import tifffile

    folder = Path(folder)
    tif = folder / f"{name}.tif"
    with atomic_path(tif) as tmp:
        tifffile.imwrite(tmp, labels.astype(np.int32, copy=False), compression="zlib")
    columns = list(features)
    with atomic_path(folder / f"{name}.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in zip(*(features[c] for c in columns), strict=True):
            writer.writerow([f"{v:.6g}" if isinstance(v, float | np.floating) else v
                             for v in row])
    return tif


def read_score_table(path: str | Path) -> dict[int, float]:
    """``label -> score`` from a CSV with ``label`` and ``score`` columns (empty if none).

    Labels must be unique positive integers and scores numbers in [0, 1]
    (:func:`~.validate.schemas.read_score_rows`).
    """
    path = Path(path)
    if not path.is_file():
        return {}
    return read_score_rows(path)


def find_label_file(labels: Path, image_name: str) -> Path | None:
    """The label image for ``image_name`` (a file stem) in a folder, if any."""
    for stem in (image_name, f"{image_name}{_LABEL_SUFFIX}"):
        for suffix in (".tif", ".tiff", *IMAGE_SUFFIXES):
            candidate = labels / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_corrected(label_path: Path, height: int, width: int):
    """A label image and the score of each label value present in it.

    Raises
    ------
    DatasetError
        When the label image's size differs from its image.
    """
    # From the header first: a label image declaring a huge size is refused unread.
    found = image_size(label_path)
    if found != (height, width):
        raise DatasetError(label_path, f"size {found[0]}x{found[1]} differs "
                           f"from its image ({height}x{width})")
    labels = read_labels(label_path)
    table = read_score_table(label_path.with_suffix(".csv"))
    return labels, table


def read_label_classes(label_path: Path) -> dict[int, str]:
    """``label -> class name`` from the ``class`` column of a label image's ``<name>.csv``
    (empty when it has none: a one-class table, or no table)."""
    table = Path(label_path).with_suffix(".csv")
    return read_class_table(table, required=False) if table.is_file() else {}
