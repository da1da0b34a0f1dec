"""Checks of QuPath GeoJSON handed in as training data: nuclei drawn (or detected and
classified) in QuPath, exported with *Export objects as GeoJSON*.

What counts as a nucleus: a ``detection`` (or a ``cell``, by its ``nucleusGeometry`` when
it has one), and an ``annotation`` that carries a ``classification`` (QuPath users mark
nuclei as classified annotations; unclassified annotations are regions, not nuclei). Only
``Polygon`` and ``MultiPolygon`` geometries are read, in image pixels with the origin at
the top-left corner of the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from . import fields
from .classes import class_name
from .fields import InvalidValue, describe, in_file
from .json_input import load_json

# A nucleus outline has tens of vertices; this bounds the memory one feature can take.
MAX_VERTICES = 100_000
_NUCLEUS_OBJECTS = ("detection", "cell")


@dataclass(frozen=True)
class QuPathNucleus:
    """One nucleus of a QuPath GeoJSON file.

    Attributes
    ----------
    polygons : tuple
        Each polygon as ``(exterior, *holes)``, each ring a tuple of ``(x, y)`` points.
    class_name : str or None
        Its ``classification`` name, None when it has none.
    """

    polygons: tuple
    class_name: str | None


def read_qupath_nuclei(path: Path) -> list[QuPathNucleus]:
    """The nuclei of a QuPath GeoJSON file (a FeatureCollection, a list of Features or
    one Feature), checked; other objects are skipped.

    Raises
    ------
    DatasetError
        Naming the file, the feature and the problem.
    """
    data = load_json(path)
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    else:
        features = data
    if not isinstance(features, list):
        raise DatasetError(path, "not QuPath GeoJSON: expected a FeatureCollection or a "
                           f"list of Features, not {describe(data)}")
    nuclei = []
    for number, feature in enumerate(features):
        with in_file(path, f"feature {number}"):
            nucleus = _nucleus(feature)
        if nucleus is not None:
            nuclei.append(nucleus)
    return nuclei


def _nucleus(feature) -> QuPathNucleus | None:
    fields.obj(feature, "feature")
    properties = feature.get("properties") or {}
    fields.obj(properties, "properties")
    kind = properties.get("objectType", "annotation")
    name = _classification(properties.get("classification"))
    if kind == "annotation" and name is None:
        return None  # a region drawn around tissue, not a nucleus
    if kind not in (*_NUCLEUS_OBJECTS, "annotation"):
        return None
    geometry = properties.get("nucleusGeometry") if kind == "cell" else None
    geometry = geometry or feature.get("geometry")
    fields.obj(geometry, "geometry")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = (_polygon(coordinates),)
    elif kind == "MultiPolygon":
        fields.array(coordinates, "coordinates")
        if not coordinates:
            raise InvalidValue("geometry is a MultiPolygon of no polygon")
        polygons = tuple(_polygon(part) for part in coordinates)
    else:
        raise InvalidValue(f"geometry is {describe(kind)}, not a Polygon or MultiPolygon "
                           "(nuclei are areas)")
    if sum(len(ring) for polygon in polygons for ring in polygon) > MAX_VERTICES:
        raise InvalidValue(f"has more than {MAX_VERTICES} vertices")
    return QuPathNucleus(polygons, name)


def _classification(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # older QuPath versions wrote the name alone
        return class_name(value, "classification")
    fields.obj(value, "classification")
    if "name" not in value:
        return None
    return class_name(value["name"], "classification name")


def _polygon(rings) -> tuple:
    fields.array(rings, "polygon")
    if not rings:
        raise InvalidValue("has a polygon without rings")
    checked = []
    for ring in rings:
        fields.array(ring, "ring")
        if len(ring) > MAX_VERTICES:
            raise InvalidValue(f"has a ring of more than {MAX_VERTICES} points")
        if len(ring) < 3:
            raise InvalidValue(f"has a ring of {len(ring)} points (at least 3 make an area)")
        points = []
        for point in ring:
            if not isinstance(point, list) or len(point) < 2:
                raise InvalidValue(f"has a point that is {describe(point)}, not [x, y]")
            x, y = (fields.number(v, "coordinate") for v in point[:2])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise InvalidValue("has a coordinate that is not finite")
            points.append((float(x), float(y)))
        checked.append(tuple(points))
    return tuple(checked)
