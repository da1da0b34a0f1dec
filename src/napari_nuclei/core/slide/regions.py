"""Keep only the nuclei inside the regions asked for, decided at full resolution.

The overview's region mask chooses which tiles to predict; which nuclei are kept is
decided on the regions themselves (polygons in level-0 pixels, saved in the job folder as
GeoJSON): a nucleus is kept when the centroid of its mask lies inside or on them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

REGIONS_NAME = "regions.geojson"


def write_regions(path: Path, polygons: list) -> Path:
    """Save region polygons (level-0 pixels) as a GeoJSON FeatureCollection."""
    from shapely.geometry import mapping

    features = [{"type": "Feature", "properties": {"objectType": "annotation"},
                 "geometry": mapping(polygon)} for polygon in polygons]
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"type": "FeatureCollection", "features": features}, fh)
    return path


@functools.lru_cache(maxsize=8)
def _geometry(path: str, mtime_ns: int):
    import shapely

    from .tissue import read_regions

    geometry = shapely.union_all(read_regions(Path(path)))
    shapely.prepare(geometry)
    return geometry


def job_regions(job_dir: Path):
    """The regions of a job (a prepared shapely geometry), or None for the whole slide."""
    path = job_dir / REGIONS_NAME
    if not path.is_file():
        return None
    return _geometry(str(path), path.stat().st_mtime_ns)


def inside_regions(geometry, factor: float, nuclei) -> np.ndarray:
    """Which nuclei lie in the regions: the centroid of each one's mask, in level-0
    pixels, inside or on them.

    Parameters
    ----------
    geometry : shapely geometry or None
        From :func:`job_regions`; None keeps every nucleus.
    factor : float
        Prediction pixels per level-0 pixel.
    nuclei : sequence
        Objects with ``top``, ``left`` and a bool ``mask`` crop (prediction pixels).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` bool.
    """
    if geometry is None or len(nuclei) == 0:
        return np.ones(len(nuclei), bool)
    import shapely

    centres = np.array([(n.left + xs.mean() + 0.5, n.top + ys.mean() + 0.5)
                        for n in nuclei for ys, xs in [np.nonzero(n.mask)]], np.float64)
    centres /= factor
    return shapely.intersects_xy(geometry, centres[:, 0], centres[:, 1])
