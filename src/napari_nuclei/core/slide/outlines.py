"""Nucleus outlines as GeoJSON geometries on pixel boundaries, for all crops of a tile.

QuPath measures a detection's area from its polygon, so an outline must enclose exactly
the nucleus's pixels: it follows the pixel edges (corners at whole pixel coordinates),
not the pixel centres. Each crop's mask is cut into row runs, each run a box; the boxes
of a crop are merged by GEOS into one geometry (``buffer(0)`` of their collection, exact on
the pixel grid), and collinear vertices are dropped. A nucleus in one piece is a Polygon,
with its holes; one in several pieces (parts touching only at a corner, or split by a
better-scoring neighbour) is a MultiPolygon of all of them. Every geometry is valid for
GEOS and JTS (QuPath refuses invalid ones), rings are counter-clockwise outside and
clockwise inside (RFC 7946), and coordinates are level-0 pixels.
"""

from __future__ import annotations

import numpy as np

from .mosaic import CropMosaic


def _row_runs(mosaic: CropMosaic) -> tuple[np.ndarray, ...]:
    """Every horizontal run of one crop's pixels in the mosaic: its row, first and end
    (exclusive) column in mosaic pixels, and the crop it belongs to."""
    labels = mosaic.labels
    padded = np.zeros((labels.shape[0], labels.shape[1] + 2), labels.dtype)
    padded[:, 1:-1] = labels
    # A change at padded column c + 1 is at mosaic column c. Crops never touch (a pixel
    # of background lies between them), so in each row changes alternate: a run starts
    # on a crop's label and ends back on background.
    rows, columns = np.nonzero(padded[:, 1:] != padded[:, :-1])
    after = padded[rows, columns + 1]
    starts = np.flatnonzero(after > 0)
    return rows[starts], columns[starts], columns[starts + 1], after[starts] - 1


def outline_geometries(mosaic: CropMosaic, tops: np.ndarray, lefts: np.ndarray,
                       factor: float) -> list[str]:
    """The GeoJSON geometry of each crop of a mosaic, as JSON text.

    Parameters
    ----------
    mosaic : CropMosaic
    tops, lefts : numpy.ndarray
        Each crop's position in prediction pixels.
    factor : float
        Prediction pixels per level-0 pixel.

    Returns
    -------
    list of str
        One ``{"type": "Polygon" | "MultiPolygon", "coordinates": ...}`` per crop, whose
        area is the crop's pixel count divided by ``factor ** 2``.
    """
    import shapely

    if mosaic.count == 0:
        return []
    rows, x0, x1, crop = _row_runs(mosaic)
    corner_y, corner_x = mosaic.corners[crop, 0], mosaic.corners[crop, 1]
    # From mosaic pixels to prediction pixels of the image, then to level 0.
    left = (x0 - corner_x + lefts[crop]) / factor
    right = (x1 - corner_x + lefts[crop]) / factor
    top = (rows - corner_y + tops[crop]) / factor
    bottom = top + 1.0 / factor
    boxes = shapely.box(left, top, right, bottom)
    order = np.argsort(crop, kind="stable")
    collections = shapely.multipolygons(boxes[order], indices=crop[order])
    if len(collections) != mosaic.count:
        raise ValueError("every crop of a mosaic holds at least one pixel")
    merged = shapely.simplify(shapely.buffer(collections, 0), 0)
    merged = shapely.orient_polygons(merged, exterior_cw=False)
    return shapely.to_geojson(merged).tolist()
