"""Measure nuclei from their own crops: shape, stain and a polygon for QuPath.

Shape measurements equal scikit-image ``regionprops``' on each nucleus' mask crop; for
H&E the mean hematoxylin and eosin optical densities come from colour deconvolution
(Ruifrok & Johnston) as QuPath computes them (:func:`stain_densities`), for other images
the mean intensity per channel. The nuclei
of a tile are measured together, as columns: their crops are laid side by side in one
image (:mod:`.mosaic`), so one deconvolution, one filter pass, one contour pass and one
pass of the shapely steps serve them all. Positions and lengths are given in level-0
pixels of the slide (and in µm when the pixel size is known), whatever pixel size the
network worked at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .detection_features import (  # noqa: F401  (the features' names, for callers)
    CLASS_COLUMNS,
    NUCLEUS_CLASS,
    classify_columns,
    feature_lines,
)
from .mosaic import CropMosaic
from .outlines import outline_geometries

SHAPE_COLUMNS = ("perimeter_px", "major_axis_px", "minor_axis_px", "eccentricity",
                 "solidity")
# Lengths in µm (NaN when no pixel size is known), as the centroid and area have.
LENGTH_UM_COLUMNS = ("perimeter_um", "major_axis_um", "minor_axis_um")
HE_COLUMNS = ("hematoxylin_od", "eosin_od")
INTENSITY_COLUMNS = ("intensity_r", "intensity_g", "intensity_b")
BASE_COLUMNS = ("id", "score", "centroid_x_px", "centroid_y_px", "centroid_x_um",
                "centroid_y_um", "bbox_x_px", "bbox_y_px", "bbox_w_px", "bbox_h_px", "area_px",
                "area_um2")
# QuPath's "H&E default" stain vectors (optical density per R, G, B) and background.
HE_DEFAULT_VECTORS = ((0.65111, 0.70119, 0.29049), (0.2159, 0.8012, 0.5581))
HE_BACKGROUND = 255.0


def stain_vectors_of(flat: Sequence[float] = ()) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Two stain vectors from six numbers (hematoxylin R G B, then eosin R G B); none
    gives QuPath's "H&E default"."""
    if not flat:
        return HE_DEFAULT_VECTORS
    return tuple(float(v) for v in flat[:3]), tuple(float(v) for v in flat[3:])


def check_stain_vectors(flat: Sequence[float]) -> tuple[float, ...]:
    """Six finite, non-negative optical densities making two independent stain vectors.

    Raises
    ------
    ValueError
        Naming what is wrong.
    """
    values = tuple(float(v) for v in flat)
    if len(values) != 6:
        raise ValueError(f"wants six numbers (hematoxylin R,G,B then eosin R,G,B), got "
                         f"{len(values)}")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError("stain optical densities must be finite and not negative")
    first, second = np.asarray(values[:3]), np.asarray(values[3:])
    if np.linalg.norm(first) == 0 or np.linalg.norm(second) == 0:
        raise ValueError("a stain vector is zero")
    cross = np.cross(first / np.linalg.norm(first), second / np.linalg.norm(second))
    if np.linalg.norm(cross) < 1e-3:
        raise ValueError("the two stain vectors point the same way: colours cannot be "
                         "told apart")
    return values


def _deconvolution_matrix(vectors) -> np.ndarray:
    """The inverse of the stain matrix: rows are the unit stain vectors, the third the
    unit cross product of the first two (the residual channel)."""
    first, second = (np.asarray(v, np.float64) / np.linalg.norm(v) for v in vectors)
    third = np.cross(first, second)
    return np.linalg.inv(np.stack([first, second, third / np.linalg.norm(third)]))


def stain_densities(rgb: np.ndarray, vectors=HE_DEFAULT_VECTORS,
                    background: float = HE_BACKGROUND) -> np.ndarray:
    """Stain optical densities of RGB pixels, as QuPath's colour deconvolution gives them.

    Each channel's optical density is ``log10(background / max(I, 1))``; the densities
    are then unmixed with the stain vectors (Ruifrok & Johnston 2001), so a pixel
    stained by hematoxylin alone at density ``d`` gives ``(d, 0)``.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(..., 3)`` pixel values (0-255).
    vectors : tuple of two RGB triples
        The stains' optical density vectors (hematoxylin, eosin by default); they are
        normalised to unit length.
    background : float
        The intensity of unstained background per channel.

    Returns
    -------
    numpy.ndarray
        ``(..., 2)`` densities of the two stains.
    """
    od = np.log10(background / np.maximum(np.asarray(rgb, np.float64), 1.0))
    return (od @ _deconvolution_matrix(vectors))[..., :2]


def table_columns(stain: str, classes=None) -> tuple[str, ...]:
    """The nucleus table's columns for a stain (``he`` or ``intensity``), and the
    :data:`CLASS_COLUMNS` last for a model of several classes."""
    classed = classes is not None and len(classes) > 1
    return (BASE_COLUMNS + SHAPE_COLUMNS + LENGTH_UM_COLUMNS
            + (HE_COLUMNS if stain == "he" else INTENSITY_COLUMNS)
            + (CLASS_COLUMNS if classed else ()))


@dataclass(frozen=True)
class Scale:
    """From prediction pixels to level-0 pixels and microns.

    Attributes
    ----------
    factor : float
        Prediction pixels per level-0 pixel.
    mpp : float or None
        Level-0 microns per pixel.
    """

    factor: float
    mpp: float | None


def measure_nuclei(nuclei: Sequence[tuple[int, float, int, int, np.ndarray]],
                   pixels: Sequence[np.ndarray], scale: Scale, stain: str,
                   vectors=HE_DEFAULT_VECTORS) -> tuple[dict[str, np.ndarray], list[str]]:
    """The nucleus table's columns and the outlines of the nuclei of one tile.

    Shape measurements equal scikit-image ``regionprops``' on each nucleus' mask crop
    (area, centroid, perimeter as ``skimage.measure.perimeter``, axis lengths and
    eccentricity from the inertia tensor); solidity uses the convex hull through pixel
    centres (about 1% above regionprops', whose hull passes through pixel corners). The
    crops are measured together in one mosaic image by numpy and OpenCV: a regionprops
    object per nucleus would cost a large share of the network's time with 10^5-10^6
    nuclei per slide.

    Parameters
    ----------
    nuclei : sequence of tuple
        ``(id, score, top, left, mask)``: the position of each mask crop in prediction
        pixels and its ``(h, w)`` bool crop.
    pixels : sequence of numpy.ndarray
        ``(h, w, 3)`` uint8 pixels under each crop.
    scale : Scale
    stain : str
        ``he`` or ``intensity``.
    vectors : tuple of two RGB triples
        The stain vectors of ``he`` (QuPath's "H&E default" unless given).

    Returns
    -------
    columns : dict of numpy.ndarray
        One array per column of :func:`table_columns` (``id`` uint32, the rest float64),
        one value per nucleus.
    outlines : list of str
        Each nucleus' GeoJSON geometry as JSON text (level-0 pixels, on pixel edges; see
        :mod:`.outlines`).
    """
    names = table_columns(stain)
    if not nuclei:
        return {name: np.zeros(0, np.uint32 if name == "id" else np.float64)
                for name in names}, []
    mosaic = CropMosaic([mask for *_, mask in nuclei])
    shape = _shape_columns(mosaic)
    stains = _stain_means(mosaic, pixels, stain, vectors)
    f = scale.factor
    tops = np.array([n[2] for n in nuclei], np.int64)
    lefts = np.array([n[3] for n in nuclei], np.int64)
    cx0, cy0 = (lefts + shape["cx"] + 0.5) / f, (tops + shape["cy"] + 0.5) / f
    area = mosaic.area / f**2
    mpp = scale.mpp or math.nan
    columns = {
        "id": np.array([n[0] for n in nuclei], np.uint32),
        "score": np.array([float(n[1]) for n in nuclei], np.float64),
        "centroid_x_px": cx0, "centroid_y_px": cy0,
        "centroid_x_um": cx0 * mpp, "centroid_y_um": cy0 * mpp,
        "bbox_x_px": lefts / f, "bbox_y_px": tops / f,
        "bbox_w_px": mosaic.sizes[:, 1] / f, "bbox_h_px": mosaic.sizes[:, 0] / f,
        "area_px": area, "area_um2": area * mpp**2,
        "perimeter_px": shape["perimeter"] / f,
        "major_axis_px": shape["major"] / f,
        "minor_axis_px": shape["minor"] / f,
        "eccentricity": shape["eccentricity"],
        "solidity": shape["solidity"],
        "perimeter_um": shape["perimeter"] / f * mpp,
        "major_axis_um": shape["major"] / f * mpp,
        "minor_axis_um": shape["minor"] / f * mpp,
    }
    stain_names = HE_COLUMNS if stain == "he" else INTENSITY_COLUMNS
    columns.update({name: np.ascontiguousarray(stains[:, k])
                    for k, name in enumerate(stain_names)})
    return ({name: columns[name] for name in names},
            outline_geometries(mosaic, tops, lefts, f))


def table_rows(columns: dict[str, np.ndarray]) -> list[dict]:
    """The nucleus table's columns as one dict per nucleus (plain Python numbers)."""
    names = list(columns)
    return [dict(zip(names, values, strict=True))
            for values in zip(*(columns[name].tolist() for name in names), strict=True)]


def _stain_means(mosaic: CropMosaic, pixels: Sequence[np.ndarray], stain: str,
                 vectors) -> np.ndarray:
    """Mean hematoxylin and eosin densities (``he``) or mean intensity per channel of
    each nucleus; the colour deconvolution runs once over the pixels of all of them."""
    rgb = np.zeros((*mosaic.labels.shape, 3), np.uint8)
    for (top, left), crop in zip(mosaic.corners.tolist(), pixels, strict=True):
        rgb[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    ys, xs, _ = mosaic.pixels
    flat = rgb[ys, xs]
    if stain == "he":
        values = stain_densities(flat, vectors)
    else:
        values = flat.astype(np.float64)
    return np.add.reduceat(values, mosaic.starts, axis=0) / mosaic.area[:, None]


# Weights of skimage.measure.perimeter's neighbourhood codes (4-connected border pixels).
_PERIMETER_WEIGHTS = np.zeros(50, np.float64)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1
_PERIMETER_WEIGHTS[[21, 33]] = math.sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + math.sqrt(2)) / 2
_PERIMETER_CODES = np.array([[10, 2, 10], [2, 1, 2], [10, 2, 10]], np.float32)
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)


def _shape_columns(mosaic: CropMosaic) -> dict[str, np.ndarray]:
    """Centroid (crop pixels), perimeter, axis lengths, eccentricity and solidity of
    every crop of a mosaic."""
    import cv2

    area = mosaic.area.astype(np.float64)
    ys, xs, crop = mosaic.pixels
    x, y = xs - mosaic.corners[crop, 1], ys - mosaic.corners[crop, 0]
    cx, cy = mosaic.sum(x) / area, mosaic.sum(y) / area
    dx, dy = x - mosaic.per_pixel(cx), y - mosaic.per_pixel(cy)
    a, b, c = mosaic.sum(dx * dx) / area, mosaic.sum(dx * dy) / area, mosaic.sum(dy * dy) / area
    # Eigenvalues of the inertia tensor [[c, -b], [-b, a]], largest first.
    root = np.sqrt(np.maximum(0.0, ((a - c) / 2) ** 2 + b * b))
    major, minor = (a + c) / 2 + root, np.maximum(0.0, (a + c) / 2 - root)
    with np.errstate(divide="ignore", invalid="ignore"):
        eccentricity = np.where(major > 0, np.sqrt(1 - minor / major), 0.0)
    # skimage.measure.perimeter(mask, 4) with OpenCV filters: the same integer codes and
    # weights.
    binary = mosaic.binary
    border = binary - cv2.erode(binary, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    codes = cv2.filter2D(border, -1, _PERIMETER_CODES, borderType=cv2.BORDER_CONSTANT)
    perimeter = mosaic.sum(_PERIMETER_WEIGHTS[codes[ys, xs]])
    return {"cx": cx, "cy": cy, "perimeter": perimeter, "major": 4 * np.sqrt(major),
            "minor": 4 * np.sqrt(minor), "eccentricity": eccentricity,
            "solidity": area / np.maximum(1, _hull_areas(mosaic))}


def _hull_areas(mosaic: CropMosaic) -> np.ndarray:
    """Pixels of each crop's convex hull through pixel centres (filled by OpenCV).

    The hull of a crop's pixels is that of its outer contours' points (its extreme
    pixels are corners of the outer contours), fewer points to give OpenCV. Each hull
    stays within its crop's place in the mosaic, so all are filled in one image."""
    import cv2

    contours = mosaic.contours
    outer = np.flatnonzero(contours.parents < 0)
    outer = outer[np.argsort(contours.owners[outer], kind="stable")]
    points = contours.points[contours.gather(outer)]
    counts = np.bincount(contours.owners[outer], weights=contours.lengths[outer],
                         minlength=mosaic.count).astype(np.int64)
    hulls = np.zeros_like(mosaic.labels)
    start = 0
    for k, count in enumerate(counts.tolist(), start=1):
        cv2.fillConvexPoly(hulls, cv2.convexHull(points[start : start + count]), k)
        start += count
    return np.bincount(hulls.ravel(), minlength=mosaic.count + 1)[1:]


def measure_prediction(prediction, image: np.ndarray, mpp: float | None = None,
                       vectors=HE_DEFAULT_VECTORS,
                       classes=None) -> tuple[list[dict], list[str]]:
    """Table rows and QuPath feature lines of the nuclei predicted in one ordinary image.

    Parameters
    ----------
    prediction : Prediction
        Nucleus ``i`` gets id ``i + 1``, as in its label image.
    image : numpy.ndarray
        The image (grayscale or RGB, any bit depth): H&E densities for colour images,
        the mean intensity per channel otherwise.
    mpp : float, optional
        The image's pixel size in microns (the µm columns are NaN without it).
    vectors : tuple of two RGB triples
        Stain vectors for colour images (QuPath's "H&E default" unless given).
    classes : ClassSet, optional
        The model's classes: with several, each row and Feature carries its nucleus'
        class and class probability.

    Returns
    -------
    rows : list of dict
    features : list of str
        GeoJSON Feature lines (:func:`feature_lines`).
    """
    from ..normalize import to_uint8

    rgb = to_uint8(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    stain = "he" if image.ndim == 3 else "intensity"
    scale = Scale(1.0, mpp)
    crops = prediction.crops
    pixels = [rgb[top : top + mask.shape[0], left : left + mask.shape[1]]
              for top, left, mask in crops]
    columns, outlines = measure_nuclei(
        [(index + 1, float(prediction.scores[index]), top, left, mask)
         for index, (top, left, mask) in enumerate(crops)], pixels, scale, stain, vectors)
    classifications = classify_columns(columns, classes, list(zip(
        prediction.classes.tolist(), prediction.class_probabilities.tolist(), strict=True)))
    return table_rows(columns), feature_lines(columns, outlines, classifications)
