"""The mask crops of a tile laid side by side in one image, to measure them all at once.

A tile holds a few hundred nuclei, each a small bool mask crop. Calling OpenCV or
scikit-image once per crop costs more in call overhead than in work, so the crops are
pasted into one label image (a mosaic), one pixel of background between them, and
measured with a few whole-image calls: pixel lists grouped by crop, neighbourhood
filters, one contour pass. The gap keeps each crop's neighbourhoods and contours apart,
and each crop keeps its own row-major pixel order, so per-crop results equal those of
each crop alone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Shelves are at least this wide (pixels), so a tile's crops fill a few of them.
_SHELF_WIDTH = 1024


@dataclass(frozen=True)
class Contours:
    """OpenCV contours (``RETR_CCOMP``, ``CHAIN_APPROX_SIMPLE``) of a mosaic, flattened.

    Attributes
    ----------
    points : numpy.ndarray
        ``(P, 2)`` int32 ``(x, y)`` mosaic pixels of all contours, one after the other.
    starts, lengths : numpy.ndarray
        Where each contour's points start in ``points``, and how many it has.
    parents : numpy.ndarray
        The outer contour a hole lies in; -1 for outer contours.
    owners : numpy.ndarray
        The crop each contour belongs to.
    areas : numpy.ndarray
        The area each contour encloses (as ``cv2.contourArea``).
    """

    points: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    parents: np.ndarray
    owners: np.ndarray
    areas: np.ndarray

    def gather(self, contour_ids: np.ndarray) -> np.ndarray:
        """The points of some contours, one after the other (an index into ``points``)."""
        lengths = self.lengths[contour_ids]
        ends = np.cumsum(lengths)
        shift = np.repeat(self.starts[contour_ids] - (ends - lengths), lengths)
        return np.arange(int(ends[-1]) if len(ends) else 0) + shift


class CropMosaic:
    """Mask crops laid out in rows (shelves) of one label image; crop ``k`` has label
    ``k + 1``.

    Parameters
    ----------
    masks : sequence of numpy.ndarray
        ``(h, w)`` bool crops (at least one).
    """

    def __init__(self, masks: Sequence[np.ndarray]):
        shelf_width = max(_SHELF_WIDTH, max(m.shape[1] for m in masks) + 2)
        corners, x, y, shelf_height = [], 1, 1, 0
        for mask in masks:
            h, w = mask.shape
            if x + w + 1 > shelf_width:
                x, y, shelf_height = 1, y + shelf_height + 1, 0
            corners.append((y, x))
            x += w + 1
            shelf_height = max(shelf_height, h)
        self.count = len(masks)
        self.corners = np.array(corners, np.int64).reshape(-1, 2)
        self.sizes = np.array([m.shape for m in masks], np.int64).reshape(-1, 2)
        self.labels = np.zeros((y + shelf_height + 1, shelf_width), np.int32)
        for k, ((top, left), mask) in enumerate(zip(corners, masks, strict=True)):
            h, w = mask.shape
            self.labels[top : top + h, left : left + w] = mask * np.int32(k + 1)

    @functools.cached_property
    def binary(self) -> np.ndarray:
        """The crops' pixels as a uint8 0/1 image."""
        return (self.labels > 0).view(np.uint8)

    @functools.cached_property
    def pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ys, xs, crop)`` of every crop pixel in the mosaic, grouped by crop, each
        crop's in row-major order (as ``mask.nonzero()`` of the crop alone)."""
        ys, xs = np.nonzero(self.labels)
        crop = self.labels[ys, xs] - 1
        order = np.argsort(crop, kind="stable")
        return ys[order], xs[order], crop[order]

    @functools.cached_property
    def area(self) -> np.ndarray:
        """Pixels per crop."""
        return np.bincount(self.pixels[2], minlength=self.count)

    @functools.cached_property
    def starts(self) -> np.ndarray:
        """Where each crop's pixels start in :attr:`pixels`."""
        return np.concatenate([[0], np.cumsum(self.area)[:-1]]).astype(np.int64)

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum over each crop of per-pixel values given in :attr:`pixels` order."""
        return np.bincount(self.pixels[2], weights=values, minlength=self.count)

    def per_pixel(self, values: np.ndarray) -> np.ndarray:
        """Per-crop values repeated for each of its pixels (in :attr:`pixels` order)."""
        return values[self.pixels[2]]

    @functools.cached_property
    def contours(self) -> Contours:
        """Outer contours and holes of every crop, from one OpenCV pass."""
        import cv2

        found, hierarchy = cv2.findContours(self.binary, cv2.RETR_CCOMP,
                                            cv2.CHAIN_APPROX_SIMPLE)
        lengths = np.fromiter(map(len, found), np.int64, count=len(found))
        points = (np.concatenate(found)[:, 0, :] if found
                  else np.zeros((0, 2), np.int32))
        starts = np.cumsum(lengths) - lengths
        parents = hierarchy[0][:, 3].astype(np.int64) if found else np.zeros(0, np.int64)
        # An outer contour runs over its crop's pixels; a hole belongs to its outer contour.
        first = points[starts]
        owners = self.labels[first[:, 1], first[:, 0]].astype(np.int64) - 1
        holes = parents >= 0
        owners[holes] = owners[parents[holes]]
        # Shoelace sums, exact on integer points (as cv2.contourArea).
        following = np.arange(len(points)) + 1
        following[starts + lengths - 1] = starts
        x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
        cross = x * y[following] - x[following] * y
        areas = (np.abs(np.add.reduceat(cross, starts)) / 2 if len(points)
                 else np.zeros(0, np.float64))
        return Contours(points, starts, lengths, parents, owners, areas)
