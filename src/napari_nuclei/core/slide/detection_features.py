"""QuPath detections as GeoJSON Feature lines: each nucleus' outline, its class and its
measurements, formatted from a tile's measurement columns.

One line per nucleus, so that slides of hundreds of thousands of nuclei are written as a
stream (:func:`~.outputs.assemble_geojson`); with several classes, each nucleus carries
its class as QuPath's ``classification`` (name and colour).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from ..nucleus_classes import ClassSet

# The one default class, as QuPath has always been handed it.
NUCLEUS_CLASS = ClassSet.default().qupath_class(0)
CLASS_COLUMNS = ("class", "class_probability")

_FEATURE_START = '{"type":"Feature","geometry":'
_FEATURE_CLASS = ',"properties":{"objectType":"detection","classification":'
_FEATURE_MEASUREMENTS = ',"measurements":{'
_FEATURE_MIDDLE = (_FEATURE_CLASS + json.dumps(NUCLEUS_CLASS, separators=(",", ":"))
                   + _FEATURE_MEASUREMENTS)
# A nucleus drawn by hand in a run with classes has none until someone gives it one.
_FEATURE_UNCLASSIFIED = ',"properties":{"objectType":"detection"' + _FEATURE_MEASUREMENTS
_FEATURE_END = "}}}"


def feature_lines(columns: dict[str, np.ndarray], outlines: Sequence[str],
                  classifications: Sequence[dict] | None = None) -> list[str]:
    """QuPath detection Features, one compact JSON line each: the polygon, the class and
    the table's measurements (those that are numbers: unknown ones are left out).

    The lines are formatted from the columns and the outlines' JSON text (the same text
    as ``json.dumps`` of a feature dict, several times faster).

    Parameters
    ----------
    columns : dict of numpy.ndarray
    outlines : sequence of str
        From :func:`measure_nuclei`.
    classifications : sequence of dict or None, optional
        QuPath's ``{"name", "color"}`` of each nucleus' class (None: unclassified); by
        default every nucleus is of the one default class. Columns that are not numbers
        (the class name) are left out of the measurements.

    Returns
    -------
    list of str
    """
    pieces = []
    for name, values in columns.items():
        if values.dtype.kind not in "biuf":
            continue
        prefix = json.dumps(name) + ":"
        # json writes Python floats and ints as repr does.
        texts = [prefix + text for text in map(repr, values.tolist())]
        if values.dtype.kind == "f":
            texts = [t if known else "" for t, known in zip(texts, (~np.isnan(values)).tolist(),
                                                            strict=True)]
        pieces.append(texts)
    measurements = [",".join(filter(None, row)) for row in zip(*pieces, strict=True)]
    if classifications is None:
        middles = [_FEATURE_MIDDLE] * len(measurements)
    else:
        texts: dict[str, str] = {}
        middles = [_FEATURE_UNCLASSIFIED if entry is None else texts.setdefault(
            entry["name"], _FEATURE_CLASS + json.dumps(entry, separators=(",", ":"))
            + _FEATURE_MEASUREMENTS) for entry in classifications]
    return [_FEATURE_START + outline + middle + values + _FEATURE_END
            for outline, middle, values in zip(outlines, middles, measurements, strict=True)]


def classify_columns(columns: dict[str, np.ndarray], classes,
                     kinds: Sequence[tuple[int, float]]) -> list[dict | None] | None:
    """With several nucleus classes, add the :data:`CLASS_COLUMNS` (each nucleus' class
    name and its probability) to a tile's columns, and return QuPath's classification of
    each nucleus; for one class (``classes`` None or of one class) nothing changes.

    Parameters
    ----------
    columns : dict of numpy.ndarray
        From :func:`measure_nuclei`, changed in place.
    classes : ClassSet or None
    kinds : sequence of (int, float)
        Class index and probability per nucleus; index -1 for a nucleus without a class
        (drawn by hand): no name, a NaN probability, no classification.
    """
    if classes is None or len(classes) < 2:
        return None
    indices = [int(index) for index, _ in kinds]
    columns["class"] = np.array([classes.name_of(i) if i >= 0 else None for i in indices],
                                dtype=object)
    columns["class_probability"] = np.array(
        [float(p) if i >= 0 else np.nan for i, (_, p) in zip(indices, kinds, strict=True)],
        np.float64)
    return [classes.qupath_class(i) if i >= 0 else None for i in indices]
