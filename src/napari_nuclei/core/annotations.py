"""The nuclei of one dataset image as a label image, whatever the layout stores."""

from __future__ import annotations

import numpy as np

from .convert import annotate_image
from .dataset import ImageRecord
from .labels import rles_to_labels


def record_labels(record: ImageRecord) -> np.ndarray:
    """Read a record's annotations and flatten them into an int32 label image.

    Overlapping nuclei (possible with mask files and COCO) are flattened: the later
    mask in file order wins the shared pixels. Use the COCO conversion when the
    overlaps must be kept.

    Parameters
    ----------
    record : ImageRecord
        An image of an annotated dataset.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` int32, one value per nucleus (1, 2, ... in file order).
    """
    found = annotate_image(record)
    return rles_to_labels(found.rles, found.height, found.width)
