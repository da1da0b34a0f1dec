"""Nuclei outlined in QuPath as training data: GeoJSON polygons to masks.

QuPath's coordinates are pixel corners (the image's top-left corner is ``(0, 0)``), so a
pixel belongs to a nucleus when its centre lies inside the outline: the rule that makes
the pixel count of a mask equal the area QuPath measures for an outline drawn along
pixel edges (as this project's own GeoJSON outlines are).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .validate.geojson import QuPathNucleus, read_qupath_nuclei

GEOJSON_SUFFIX = ".geojson"


def nucleus_crop(nucleus: QuPathNucleus, height: int, width: int):
    """The pixels of a nucleus inside an image, as ``(top, left, mask)`` with a tight
    bool ``mask``, or None when no pixel centre lies inside its outline."""
    from skimage.draw import polygon as fill_polygon

    points = np.asarray([p for polygon in nucleus.polygons for p in polygon[0]], np.float64)
    left = int(np.clip(np.floor(points[:, 0].min()), 0, width))
    top = int(np.clip(np.floor(points[:, 1].min()), 0, height))
    right = int(np.clip(np.ceil(points[:, 0].max()), 0, width))
    bottom = int(np.clip(np.ceil(points[:, 1].max()), 0, height))
    if right <= left or bottom <= top:
        return None
    shape = (bottom - top, right - left)
    mask = np.zeros(shape, bool)
    for exterior, *holes in nucleus.polygons:
        for ring, value in ((exterior, True), *((hole, False) for hole in holes)):
            ring = np.asarray(ring, np.float64)
            # Pixel (r, c) has its centre at (c + 0.5, r + 0.5) in QuPath's coordinates.
            rows, cols = fill_polygon(ring[:, 1] - top - 0.5, ring[:, 0] - left - 0.5, shape)
            mask[rows, cols] = value
    if not mask.any():
        return None
    found_rows = np.flatnonzero(mask.any(axis=1))
    found_cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = found_rows[0], found_rows[-1] + 1, found_cols[0], found_cols[-1] + 1
    return top + int(r0), left + int(c0), mask[r0:r1, c0:c1]


def geojson_beside(image_path: Path) -> Path:
    """Where an image's QuPath GeoJSON lies: ``<name>.geojson`` beside it."""
    return image_path.with_suffix(GEOJSON_SUFFIX)


def qupath_class_names(path: Path) -> list[str | None]:
    """The class name of each nucleus of a QuPath GeoJSON file (None: unclassified)."""
    return [nucleus.class_name for nucleus in read_qupath_nuclei(path)]
