"""The plan of a slide job: the tile grid at prediction scale and the tiles to predict.

Prediction pixels are level-0 pixels scaled by ``factor`` (the resampling to the model's
training pixel size). Tile cores form a regular grid of side ``tile - overlap`` that is
also the chunk grid of the labels, so every tile writes its own chunk. A plan is plain
data: it is saved in the job folder (``job.json``) and sent to Dask workers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..predict.stitch import grid_neighbours, grid_shape
from ..predict.tiles import Tile, grid_tile, regular_grid
from .measure import stain_vectors_of
from .ngff import DEFAULT_NGFF

# The table and GeoJSON of a job are measured on its painted label image.
MEASURED_ON_LABELS = "labels"


@dataclass(frozen=True)
class SlidePlan:
    """Everything a worker needs to predict a tile of a slide.

    Attributes
    ----------
    slide : str
        Absolute path of the slide.
    slide_width, slide_height : int
        Level-0 size.
    slide_bytes : int
        File size (with the path and size, what tells one slide from another).
    mpp : float or None
        Level-0 microns per pixel.
    factor : float
        Prediction pixels per level-0 pixel.
    tile, overlap : int
        Tile window side and overlap, in prediction pixels.
    ids_per_tile : int
        Size of each tile's id range: nucleus ids are ``tile * ids_per_tile + k``.
    stain : str
        ``he`` (hematoxylin/eosin densities) or ``intensity``.
    selected : tuple of int
        The tiles to predict (tissue, within the regions).
    model : str
        The model (run folder or weights file) and ``checkpoint`` it was loaded from.
    checkpoint : str
    regions_downsample : float or None
        Level-0 pixels per pixel of ``regions.npy`` in the job folder, when nuclei are
        kept only inside regions.
    score_thresh : float or None
        The lowest score of a nucleus kept.
    weights_sha256 : str
        The digest of the checkpoint's bytes: which network made the nuclei.
    outputs : tuple of bool
        ``(csv, geojson, gzip)``: the files the job writes.
    regions_sha256 : str
        The region rectangle and the digest of the regions file, when given.
    stain_vectors : tuple of float
        Hematoxylin then eosin optical densities (R, G, B each) of ``he`` measurements;
        empty for QuPath's "H&E default".
    measured_on : str
        What the table and GeoJSON are measured on: ``labels``, the painted label image
        (jobs of earlier versions measured each nucleus's own, overlapping mask).
    ngff : str
        The NGFF version of the labels: ``0.5`` (zarr 3) or ``0.4`` (zarr 2, for readers
        that do not read 0.5 yet). Jobs saved before the field existed wrote 0.5, its
        default, so they still match.
    classes : tuple of dict
        The model's nucleus classes (:meth:`ClassSet.to_json`) when it has several;
        empty for one class, so that one-class jobs saved before the field existed
        still match.

    Everything that changes the result is a field, so that a finished job is reused only
    for the same slide, model and settings (a plan saved before a field existed has its
    default, and differs).
    """

    slide: str
    slide_width: int
    slide_height: int
    slide_bytes: int
    mpp: float | None
    factor: float
    tile: int
    overlap: int
    ids_per_tile: int
    stain: str
    selected: tuple[int, ...]
    model: str
    checkpoint: str
    regions_downsample: float | None = None
    score_thresh: float | None = None
    weights_sha256: str = ""
    outputs: tuple[bool, ...] = ()
    regions_sha256: str = ""
    measured_on: str = ""
    stain_vectors: tuple[float, ...] = ()
    ngff: str = DEFAULT_NGFF
    classes: tuple = ()

    @property
    def class_set(self):
        """The model's classes when it has several (None for one class: a job's files
        are then as they were before classes existed)."""
        from ..nucleus_classes import ClassSet

        if len(self.classes) < 2:
            return None
        return ClassSet.from_json(list(self.classes), "plan.json")

    @property
    def height(self) -> int:
        return max(1, round(self.slide_height * self.factor))

    @property
    def width(self) -> int:
        return max(1, round(self.slide_width * self.factor))

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def rows(self) -> int:
        return grid_shape(self.height, self.width, self.tile, self.overlap)[0]

    @property
    def cols(self) -> int:
        return grid_shape(self.height, self.width, self.tile, self.overlap)[1]

    def tiles(self) -> list[Tile]:
        return regular_grid(self.height, self.width, self.tile, self.overlap)

    def tile_at(self, index: int) -> Tile:
        """Tile ``index`` (row by row) of the grid."""
        row, col = divmod(index, self.cols)
        return grid_tile(row, col, self.height, self.width, self.tile, self.overlap)

    def neighbours(self, index: int, radius: int) -> list[int]:
        """Tile indices within ``radius`` rows and columns of a tile (itself included)."""
        return grid_neighbours(index, self.rows, self.cols, radius)

    def cores_level0(self) -> list[tuple[float, float, float, float]]:
        """``(x0, y0, x1, y1)`` of every tile core in level-0 pixels."""
        f = self.factor
        return [(t.core[1] / f, t.core[0] / f, t.core[3] / f, t.core[2] / f)
                for t in self.tiles()]

    @property
    def vectors(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The stain vectors of ``he`` measurements."""
        return stain_vectors_of(self.stain_vectors)

    def identity(self) -> dict:
        return {"slide": self.slide, "size": [self.slide_width, self.slide_height],
                "bytes": self.slide_bytes}

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SlidePlan:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        values["selected"] = tuple(values["selected"])
        for name in ("outputs", "stain_vectors", "classes"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def differences(self, other: SlidePlan) -> list[str]:
        """The settings in which ``other`` differs from this plan, by name."""
        return [f.name for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]


def ids_per_tile(detections_per_image: int) -> int:
    """A power of two above the detection cap: ids stay unique without a central counter."""
    return 1 << max(4, math.ceil(math.log2(detections_per_image + 1)))


def slide_bytes(path: Path) -> int:
    """Size of a slide on disk (a folder's files summed, for OME-Zarr)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
