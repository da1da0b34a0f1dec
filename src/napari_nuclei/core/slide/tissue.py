"""Find tissue at low resolution so that background tiles are skipped; restrict to regions.

Brightfield slides (H&E and other stains) show coloured tissue on grey or white glass:
Otsu's threshold on the saturation of a low-resolution overview (about 8 µm per pixel)
separates them. Fluorescence slides show bright signal on a dark background: Otsu's
threshold on the brightest channel, and the tissue around the signal kept. Which kind a
slide is comes from its pixels (a dark overview is fluorescence) unless ``--tissue``
says. A floor on each threshold keeps a blank slide blank instead of splitting its noise
in two.

The overview's size is set from the slide's declared size before anything is read, and
bounded; it is read from the level nearest its resolution in blocks of bounded size, so
that no whole level is held in memory, whatever the level's width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .readers import Slide

TISSUE_MPP = 8.0  # microns per overview pixel when the slide's pixel size is known
UNKNOWN_MPP_DOWNSAMPLE = 32.0
MIN_SATURATION = 20  # of 255: paler than this is background whatever Otsu says
MIN_SIGNAL = 12  # of 255: fluorescence dimmer than this is background whatever Otsu says
# An overview whose median brightness is below this (of 255) is a dark-field slide.
DARK_MEDIAN = 80
# Fluorescence marks nuclei, not the cells around them: tissue reaches this far (overview
# pixels, about 24 µm at 8 µm per pixel) around the signal.
SIGNAL_REACH = 3
TISSUE_KINDS = ("auto", "brightfield", "fluorescence", "none")
# The overview, its masks and the preview drawn from it are held in memory: past this
# many pixels (about 4096 x 4096, 50 MB of RGB) the overview is made coarser than
# TISSUE_MPP. Slides up to about 130,000 px a side at 0.25 µm/px keep 8 µm per pixel.
MAX_OVERVIEW_PIXELS = 4096 * 4096
# Level pixels read at once for the overview: 2048 rows x 8192 columns (50 MB of RGB).
_STRIP_ROWS = 2048
_BLOCK_COLUMNS = 8192
# Region vertices farther than this from the origin (in level-0 pixels) are no slide's:
# beyond it, polygon geometry loses the precision to clip them.
MAX_COORDINATE = 1e9


@dataclass
class Overview:
    """A low-resolution picture of the slide and what of it is to be worked on.

    Attributes
    ----------
    rgb : numpy.ndarray
        ``(h, w, 3)`` uint8 overview.
    downsample : float
        Level-0 pixels per overview pixel.
    tissue : numpy.ndarray
        ``(h, w)`` bool, True on tissue (all True with tissue detection off).
    regions : numpy.ndarray or None
        ``(h, w)`` bool, the requested regions, or None for the whole slide.
    region_polygons : list or None
        The requested regions as shapely polygons in level-0 pixels (the rectangle and
        the GeoJSON polygons intersected): which nuclei are kept is decided on these,
        at full resolution.
    """

    rgb: np.ndarray
    downsample: float
    tissue: np.ndarray
    regions: np.ndarray | None = None
    region_polygons: list | None = None

    @property
    def work(self) -> np.ndarray:
        """Where nuclei are looked for: tissue within the regions."""
        return self.tissue if self.regions is None else self.tissue & self.regions

    def covers(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Whether a level-0 rectangle holds any pixel to work on."""
        d = self.downsample
        work = self.work
        r0, c0 = int(y0 // d), int(x0 // d)
        r1, c1 = max(int(-(-y1 // d)), r0 + 1), max(int(-(-x1 // d)), c0 + 1)
        return bool(work[r0:r1, c0:c1].any())

    def tissue_area_px(self) -> float:
        """Tissue area in level-0 pixels (within the regions)."""
        return float(self.work.sum()) * self.downsample**2


def overview_downsample(slide: Slide, mpp: float | None) -> float:
    """Level-0 pixels per overview pixel, from the slide's declared size alone.

    About :data:`TISSUE_MPP` µm per overview pixel (:data:`UNKNOWN_MPP_DOWNSAMPLE`
    without a pixel size), at least 64 pixels on the long side, and coarser where the
    overview would hold more than :data:`MAX_OVERVIEW_PIXELS`.
    """
    downsample = TISSUE_MPP / mpp if mpp else UNKNOWN_MPP_DOWNSAMPLE
    downsample = min(downsample, max(slide.width, slide.height) / 64)
    downsample = max(downsample, math.sqrt(slide.width * slide.height / MAX_OVERVIEW_PIXELS))
    return max(1.0, downsample)


def read_overview(slide: Slide, downsample: float) -> tuple[np.ndarray, float]:
    """The slide at about ``downsample``, read from the nearest level in blocks.

    Returns
    -------
    rgb : numpy.ndarray
    downsample : float
        The exact level-0 pixels per overview pixel.
    """
    import cv2

    level = slide.best_level(downsample)
    size = slide.levels[level]
    factor = downsample / size.downsample
    out_w = max(1, round(size.width / factor))
    out_h = max(1, round(size.height / factor))
    # Blocks of whole overview pixels, so that only a block of the level is in memory.
    rows_per_block = max(1, int(_STRIP_ROWS / factor))
    columns_per_block = max(1, int(_BLOCK_COLUMNS / factor))
    rgb = np.empty((out_h, out_w, 3), np.uint8)
    for row in range(0, out_h, rows_per_block):
        rows = min(rows_per_block, out_h - row)
        y0, y1 = _span(row, rows, out_h, size.height)
        for column in range(0, out_w, columns_per_block):
            columns = min(columns_per_block, out_w - column)
            x0, x1 = _span(column, columns, out_w, size.width)
            block = slide.read(level, x0, y0, x1 - x0, y1 - y0)
            rgb[row : row + rows, column : column + columns] = cv2.resize(
                block, (columns, rows), interpolation=cv2.INTER_AREA)
    return rgb, slide.width / out_w


def _span(start: int, count: int, out: int, full: int) -> tuple[int, int]:
    """The level pixels under ``count`` overview pixels from ``start`` (of ``out``
    covering ``full``); the last block reaches the level's edge."""
    end = int((start + count) * full / out) if start + count < out else full
    return int(start * full / out), end


def slide_kind(rgb: np.ndarray) -> str:
    """``fluorescence`` for a dark overview (signal on black), else ``brightfield``."""
    brightest = rgb.max(axis=2) if rgb.ndim == 3 else rgb
    return "fluorescence" if float(np.median(brightest)) < DARK_MEDIAN else "brightfield"


def detect_tissue(rgb: np.ndarray, kind: str = "auto") -> np.ndarray:
    """Tissue mask of an overview, smoothed and cleaned.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(h, w, 3)`` uint8.
    kind : str
        ``brightfield`` (Otsu on saturation), ``fluorescence`` (Otsu on the brightest
        channel, widened around the signal) or ``auto`` (told from the pixels).

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` bool.
    """
    import cv2

    if kind == "auto":
        kind = slide_kind(rgb)
    if kind == "fluorescence":
        signal = cv2.GaussianBlur(np.ascontiguousarray(rgb.max(axis=2)), (3, 3), 0)
        otsu, _ = cv2.threshold(signal, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        mask = (signal > max(otsu, MIN_SIGNAL)).astype(np.uint8)
        reach = np.ones((2 * SIGNAL_REACH + 1,) * 2, np.uint8)
        return cv2.dilate(mask, reach).astype(bool)
    saturation = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1]
    saturation = cv2.GaussianBlur(saturation, (3, 3), 0)
    otsu, _ = cv2.threshold(saturation, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (saturation > max(otsu, MIN_SATURATION)).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    # Closing fills pale gaps (fat, lumen) inside tissue; nuclei there are still wanted.
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool)


def rectangle_polygon(region, slide: Slide):
    """A level-0 rectangle ``(x, y, w, h)`` as a polygon; it must overlap the slide."""
    import shapely

    x, y, w, h = region
    if x >= slide.width or y >= slide.height or x + w <= 0 or y + h <= 0:
        raise InputError(slide.path, f"region x={x}, y={y}, {w}x{h} lies outside the slide "
                         f"({slide.width}x{slide.height})")
    return shapely.box(x, y, x + w, y + h)


def rectangle_mask(shape, downsample: float, region, slide: Slide) -> np.ndarray:
    """An overview mask of a level-0 rectangle; the rectangle must overlap the slide."""
    return _rasterize(shape, downsample, [rectangle_polygon(region, slide)])


def read_regions(path: Path) -> list:
    """The polygons of a GeoJSON file of regions (a FeatureCollection, a Feature, a bare
    geometry or a list of features, as QuPath exports annotations).

    Self-intersecting polygons are repaired (``shapely.make_valid``: a bow tie becomes its
    two triangles); points and lines, which enclose nothing, are left out.

    Raises
    ------
    InputError
        When the file is not JSON, not GeoJSON, or holds no polygon.
    """
    import shapely
    from shapely.geometry import shape as geometry_of

    from ..validate import load_json

    path = Path(path)
    document = load_json(path)  # size cap, NaN/Infinity, nesting: one line
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and "type" in document:
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise InputError(path, "is not GeoJSON regions: expected a FeatureCollection, a "
                         "Feature, a geometry or a list of features")
    polygons, others = [], set()
    for number, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise InputError(path, f"feature {number}: a feature or geometry is a JSON "
                             f"object, not {type(feature).__name__}")
        geometry = feature.get("geometry", feature)
        if geometry is None:
            continue  # GeoJSON allows features without a geometry
        try:
            geometry = geometry_of(geometry)
            coords = shapely.get_coordinates(geometry)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError,
                shapely.errors.ShapelyError) as exc:
            raise InputError(path, f"feature {number}: not a GeoJSON geometry "
                             f"({type(exc).__name__}: {exc})") from None
        if not (np.abs(coords) < MAX_COORDINATE).all():
            raise InputError(path, f"feature {number}: coordinates must be finite level-0 "
                             f"pixels within ±{MAX_COORDINATE:.0e}")
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        parts = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon"
                 and not g.is_empty]
        if not parts:
            others.add(geometry.geom_type)
        polygons += parts
    if not polygons:
        held = f" (it holds {', '.join(sorted(others))})" if others else ""
        raise InputError(path, f"holds no polygon{held}: regions are Polygon or "
                         "MultiPolygon geometries")
    return polygons


def geojson_mask(shape, downsample: float, path: Path, polygons: list | None = None
                 ) -> np.ndarray:
    """An overview mask of the polygons of a GeoJSON file (level-0 coordinates), as QuPath
    exports annotations (``polygons``: those already read from it)."""
    mask = _rasterize(shape, downsample, read_regions(path) if polygons is None else polygons)
    if not mask.any():
        raise InputError(path, "holds no polygon inside the slide")
    return mask


def _rasterize(shape, downsample: float, geometries) -> np.ndarray:
    """An overview mask of (multi)polygons given in level-0 pixels."""
    import cv2
    import shapely

    mask = np.zeros(shape, np.uint8)
    # Clipped to the overview first: far-away vertices would overflow the int32
    # coordinates of the rasterizer and fill the wrong pixels.
    bounds = shapely.box(-1, -1, (shape[1] + 1) * downsample, (shape[0] + 1) * downsample)
    for geometry in shapely.intersection(np.asarray(geometries, dtype=object), bounds):
        for polygon in getattr(geometry, "geoms", [geometry]):
            if polygon.geom_type != "Polygon" or polygon.is_empty:
                continue
            outer = np.round(np.asarray(polygon.exterior.coords) / downsample).astype(np.int32)
            cv2.fillPoly(mask, [outer], 1)
            for hole in polygon.interiors:
                inner = np.round(np.asarray(hole.coords) / downsample).astype(np.int32)
                cv2.fillPoly(mask, [inner], 0)
    return mask.astype(bool)


def make_overview(slide: Slide, mpp: float | None, tissue_mask: bool | str = True,
                  region=None, regions_geojson: Path | None = None) -> Overview:
    """Read the overview, detect tissue and apply the requested regions.

    Parameters
    ----------
    slide : Slide
    mpp : float or None
        Level-0 microns per pixel (sets the overview's resolution).
    tissue_mask : bool or str
        How tissue is found: one of :data:`TISSUE_KINDS` (``none``, or False: the whole
        slide counts as tissue; True: ``auto``).
    region : tuple of int, optional
        ``(x, y, w, h)`` level-0 rectangle.
    regions_geojson : Path, optional
        GeoJSON file of region polygons.
    """
    rgb, downsample = read_overview(slide, overview_downsample(slide, mpp))
    kind = {True: "auto", False: "none"}.get(tissue_mask, tissue_mask)
    if kind not in TISSUE_KINDS:
        raise ValueError(f"tissue detection {kind!r} is not one of {TISSUE_KINDS}")
    tissue = (np.ones(rgb.shape[:2], bool) if kind == "none"
              else detect_tissue(rgb, kind))
    regions, polygons = None, None
    if region is not None:
        regions = rectangle_mask(tissue.shape, downsample, region, slide)
        polygons = [rectangle_polygon(region, slide)]
    if regions_geojson is not None:
        drawn = read_regions(regions_geojson)
        mask = geojson_mask(tissue.shape, downsample, regions_geojson, drawn)
        regions = mask if regions is None else regions & mask
        polygons = drawn if polygons is None else _intersected(polygons, drawn)
    return Overview(rgb, downsample, tissue, regions, polygons)


def _intersected(first: list, second: list) -> list:
    import shapely

    both = shapely.intersection(shapely.union_all(first), shapely.union_all(second))
    return [g for g in shapely.get_parts(both) if g.geom_type == "Polygon"]


def write_preview(path: Path, overview: Overview, cores_level0, selected) -> Path:
    """A PNG of the overview with tissue tinted, the tile grid drawn and the tiles to be
    predicted outlined.

    Parameters
    ----------
    path : Path
    overview : Overview
    cores_level0 : sequence of tuple
        ``(x0, y0, x1, y1)`` per tile in level-0 pixels.
    selected : sequence of bool
        Which tiles are predicted.
    """
    import cv2

    from ..atomic import atomic_path

    scale = max(1, int(np.ceil(512 / max(overview.rgb.shape[:2]))))
    picture = cv2.resize(overview.rgb, None, fx=scale, fy=scale,
                         interpolation=cv2.INTER_NEAREST).astype(np.float32)
    work = cv2.resize(overview.work.astype(np.uint8), picture.shape[1::-1],
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    picture[work] = picture[work] * 0.6 + np.array([0, 160, 60]) * 0.4
    picture = picture.astype(np.uint8)
    factor = scale / overview.downsample
    for (x0, y0, x1, y1), chosen in zip(cores_level0, selected, strict=True):
        corner0 = (int(x0 * factor), int(y0 * factor))
        corner1 = (int(x1 * factor) - 1, int(y1 * factor) - 1)
        colour = (230, 40, 40) if chosen else (150, 150, 150)
        cv2.rectangle(picture, corner0, corner1, colour, 1)
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", picture[:, :, ::-1])
        tmp.write_bytes(data.tobytes())
    return path
