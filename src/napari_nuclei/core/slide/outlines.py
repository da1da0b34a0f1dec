"""Nucleus outlines as GeoJSON Polygon coordinates, for all the crops of a tile at once.

Rings follow the outer pixel centres of each mask (OpenCV contours of its largest part,
with that part's holes), counter-clockwise outside and clockwise inside (RFC 7946, as
shapely's ``orient``), in level-0 pixels rounded to 0.01. Pixel outlines never cross but
may touch themselves (a one-pixel neck), which GeoJSON readers take as invalid: such
polygons are rebuilt by shapely (``buffer(0)``, which keeps the area the ring encloses
when it only touches itself) and their largest part is kept. Masks too small for a
contour become their box. Everything but the rebuilt polygons is done on flat arrays of
all the tile's points.
"""

from __future__ import annotations

import json

import numpy as np

from .mosaic import CropMosaic

_encode_json = json.JSONEncoder(separators=(",", ":")).encode


class _Rings:
    """Unclosed rings in crop pixels, flattened: points, and per ring its length, crop
    and whether it is an outer ring."""

    def __init__(self, points, lengths, crops, outer):
        self.points = np.asarray(points, np.float64).reshape(-1, 2)
        self.lengths = np.asarray(lengths, np.int64)
        self.crops = np.asarray(crops, np.int64)
        self.outer = np.asarray(outer, bool)

    @property
    def starts(self) -> np.ndarray:
        return np.cumsum(self.lengths) - self.lengths

    def select(self, rings: np.ndarray) -> _Rings:
        """Some of the rings (by index), in the order given."""
        lengths = self.lengths[rings]
        ends = np.cumsum(lengths)
        index = np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(
            self.starts[rings] - (ends - lengths), lengths)
        return _Rings(self.points[index], lengths, self.crops[rings], self.outer[rings])

    @staticmethod
    def join(parts: list[_Rings]) -> _Rings:
        return _Rings(np.concatenate([p.points for p in parts]),
                      np.concatenate([p.lengths for p in parts]),
                      np.concatenate([p.crops for p in parts]),
                      np.concatenate([p.outer for p in parts]))


def _traced(mosaic: CropMosaic) -> _Rings:
    """Each crop's largest part (the first of equal areas) with its holes, through
    pixel centres; crops whose largest part has fewer than 3 contour points get none."""
    contours = mosaic.contours
    outer = np.flatnonzero(contours.parents < 0)
    outer = outer[np.lexsort((outer, -contours.areas[outer], contours.owners[outer]))]
    first = np.ones(len(outer), bool)
    first[1:] = contours.owners[outer][1:] != contours.owners[outer][:-1]
    chosen = outer[first]
    chosen = chosen[contours.lengths[chosen] >= 3]
    is_chosen = np.zeros(len(contours.lengths), bool)
    is_chosen[chosen] = True
    holes = np.flatnonzero((contours.parents >= 0) & (contours.lengths >= 3))
    holes = holes[is_chosen[contours.parents[holes]]]
    rings = np.concatenate([chosen, holes])
    # Per crop: the outer ring, then its holes in contour order.
    rings = rings[np.lexsort((rings, contours.parents[rings] >= 0, contours.owners[rings]))]
    crops = contours.owners[rings]
    lengths = contours.lengths[rings]
    corners = mosaic.corners[np.repeat(crops, lengths)][:, ::-1]  # (x, y)
    points = contours.points[contours.gather(rings)] - corners + 0.5
    return _Rings(points, lengths, crops, contours.parents[rings] < 0)


def _repaired(rings: _Rings, count: int) -> tuple[_Rings, np.ndarray]:
    """Valid polygons as they are, invalid ones rebuilt by shapely; returns the rings and
    which crops have a polygon (the others get their box)."""
    import shapely

    has_polygon = np.zeros(count, bool)
    if not len(rings.lengths):
        return rings, has_polygon
    traced = np.unique(rings.crops)
    shapes = shapely.polygons(
        shapely.linearrings(rings.points,
                            indices=np.repeat(np.arange(len(rings.lengths)), rings.lengths)),
        indices=np.searchsorted(traced, rings.crops))
    valid = shapely.is_valid(shapes)
    kept = np.zeros(count, bool)
    kept[traced[valid & (shapely.area(shapes) > 0)]] = True
    has_polygon |= kept
    parts = [rings.select(np.flatnonzero(kept[rings.crops]))]
    invalid = np.flatnonzero(~valid)
    if len(invalid):
        parts.append(_largest_parts(shapely.buffer(shapes[invalid], 0), traced[invalid]))
        has_polygon[parts[-1].crops] = True
    return _Rings.join(parts), has_polygon


def _largest_parts(rebuilt: np.ndarray, crops: np.ndarray) -> _Rings:
    """The rings of the largest polygon (the first of equal areas) of each rebuilt
    geometry, unclosed as contours are; geometries without one give none."""
    import shapely

    pieces, source = shapely.get_parts(rebuilt, return_index=True)
    areas = shapely.area(pieces)
    usable = np.flatnonzero((shapely.get_type_id(pieces) == 3) & (areas > 0))
    order = usable[np.lexsort((usable, -areas[usable], source[usable]))]
    first = np.ones(len(order), bool)
    first[1:] = source[order][1:] != source[order][:-1]
    best = order[first]
    rings, polygon = shapely.get_rings(pieces[best], return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    lengths = np.bincount(ring, minlength=len(rings))
    closing = np.cumsum(lengths) - 1
    keep = np.ones(len(coords), bool)
    keep[closing] = False
    outer = np.ones(len(rings), bool)
    outer[1:] = polygon[1:] != polygon[:-1]
    return _Rings(coords[keep], lengths - 1, crops[source[best]][polygon], outer)


def outline_coordinates(mosaic: CropMosaic, tops: np.ndarray, lefts: np.ndarray,
                        factor: float) -> list[str]:
    """The GeoJSON Polygon ``coordinates`` of each crop of a mosaic, as JSON text.

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
        One JSON array of closed rings (outer, then holes) per crop.
    """
    rings, has_polygon = _repaired(_traced(mosaic), mosaic.count)
    boxed = np.flatnonzero(~has_polygon)
    if len(boxed):
        heights, widths = mosaic.sizes[boxed, 0], mosaic.sizes[boxed, 1]
        zeros = np.zeros(len(boxed))
        box = np.stack([zeros, zeros, widths, zeros, widths, heights, zeros, heights],
                       axis=1).reshape(-1, 2)
        rings = _Rings.join([rings, _Rings(box, np.full(len(boxed), 4), boxed,
                                           np.ones(len(boxed), bool))])
    rings = rings.select(np.argsort(rings.crops, kind="stable"))
    lengths, starts = rings.lengths, rings.starts
    offsets = np.stack([lefts, tops], axis=1).astype(np.float64)
    points = (rings.points + np.repeat(offsets[rings.crops], lengths, axis=0)) / factor
    following = np.arange(len(points)) + 1
    following[starts + lengths - 1] = starts
    cross = points[:, 0] * points[following, 1] - points[following, 0] * points[:, 1]
    reverse = (np.add.reduceat(cross, starts) < 0) == rings.outer
    points = np.round(points, 2)
    # Closed rings: [p0, p1, ..., p0], or [p0, p(n-1), ..., p1, p0] when reversed.
    closed = lengths + 1
    step = np.arange(int(closed.sum())) - np.repeat(np.cumsum(closed) - closed, closed)
    ring_length = np.repeat(lengths, closed)
    step = np.where(np.repeat(reverse, closed), ring_length - step, step) % ring_length
    points = points[np.repeat(starts, closed) + step]
    # One JSON encoding of all the points, cut into "x,y" texts (a list of pairs holds
    # "],[" only between pairs): the same text as encoding each polygon's lists.
    texts = _encode_json(points.tolist())[2:-2].split("],[")
    ring_texts, position = [], 0
    for n in closed.tolist():
        ring_texts.append("[[" + "],[".join(texts[position : position + n]) + "]]")
        position += n
    polygons, position = [], 0
    for n in np.bincount(rings.crops, minlength=mosaic.count).tolist():
        polygons.append("[" + ",".join(ring_texts[position : position + n]) + "]")
        position += n
    return polygons
