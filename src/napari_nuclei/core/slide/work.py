"""The four steps every tile goes through; each writes its results to the job folder.

1. :func:`predict_batches` runs the network on tiles (a batch per forward pass), keeps
   the nuclei each tile owns (with their ids) and saves its candidates (needs only the
   tile: runs on any worker).
2. :func:`finalize_tile` settles the tile's candidates against its neighbours' records
   (needs the 3x3 tiles around it predicted).
3. :func:`paint_chunk` paints the labels chunk under the tile's core from every nucleus
   reaching into it, by the one rule for overlaps (:mod:`..predict.resolve`; needs the
   5x5 tiles around it finalized).
4. :func:`measure_tile` measures the nuclei the tile holds on the painted labels: each
   nucleus's pixels are exactly those labelled with its id, so the table and the GeoJSON
   describe the nuclei of the label image (needs every chunk under them painted).

Each step is a pure function of what is on disk and writes its files atomically, so
running them in any order that respects those needs, in one process or many, stopped and
started again, gives the same labels, table and GeoJSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ..normalize import to_model_input
from ..predict.resolve import own_pixels, paint_nuclei
from ..predict.stitch import settle_candidates, split_detections, tile_bounds
from .detection_features import classify_columns, feature_lines
from .measure import Scale, measure_nuclei
from .outputs import LabelsStore, write_features_part, write_table_part
from .plan import SlidePlan
from .reader import Slide
from .records import Nucleus, TileRecord, load_nuclei, load_record, save_nuclei, save_record
from .regions import inside_regions, job_regions

RECORDS = "records"
FINAL = "final"
PARTS = "parts"
PAINTED = "painted"
MEASURED = "measured"


def read_tile(slide: Slide, plan: SlidePlan, top: int, left: int, bottom: int,
              right: int) -> np.ndarray:
    """The pixels of a window given in prediction pixels, resampled from the best level."""
    import cv2

    if plan.factor == 1.0:
        return slide.read(0, left, top, right - left, bottom - top)
    level = slide.best_level(1.0 / plan.factor)
    per_level = plan.factor * slide.levels[level].downsample  # prediction px per level px
    x0, y0 = int(np.floor(left / per_level)), int(np.floor(top / per_level))
    x1, y1 = int(np.ceil(right / per_level)), int(np.ceil(bottom / per_level))
    region = slide.read(level, x0, y0, x1 - x0, y1 - y0)
    # Map the window exactly (sub-pixel offset included) onto the region read.
    shift_x, shift_y = left / per_level - x0, top / per_level - y0
    transform = np.array([[1 / per_level, 0, shift_x], [0, 1 / per_level, shift_y]])
    interpolation = cv2.INTER_LINEAR
    return cv2.warpAffine(region, transform, (right - left, bottom - top),
                          flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _scale(plan: SlidePlan) -> Scale:
    return Scale(plan.factor, plan.mpp)


def _write_parts(job_dir: Path, index: int, nuclei, pixels, plan, kinds) -> None:
    """Write the table rows and GeoJSON features of the nuclei a tile holds
    (``kinds``: the class index and probability of each).

    Tiles without nuclei write nothing: the outputs are assembled from the parts there
    are, and whether a tile is measured is told by its marker.
    """
    if not nuclei:
        return
    columns, outlines = measure_nuclei(nuclei, pixels, _scale(plan), plan.stain,
                                       plan.vectors)
    classifications = classify_columns(columns, plan.class_set, kinds)
    parts = job_dir / PARTS
    write_features_part(parts / f"{index:07d}.geojsonl",
                        feature_lines(columns, outlines, classifications))
    write_table_part(parts / f"{index:07d}.arrow", columns, plan.stain, plan.class_set)


def read_window(slide: Slide, plan: SlidePlan, index: int) -> np.ndarray:
    """The pixels of tile ``index``'s window at the prediction pixel size."""
    window = plan.tile_at(index)
    return read_tile(slide, plan, window.top, window.left, window.bottom, window.right)


def predict_batches(model, plan: SlidePlan, job_dir: Path,
                    tiles: Iterable[tuple[int, np.ndarray]], batch_size: int = 1,
                    saved: Callable[[int, TileRecord], None] | None = None,
                    ) -> Iterator[list[tuple[int, int]]]:
    """Predict tiles ``batch_size`` at a time and save their records.

    Parameters
    ----------
    model : NucleiModel
    plan : SlidePlan
    job_dir : Path
    tiles : iterable of tuple
        ``(tile index, window pixels)``, e.g. from a prefetching thread.
    batch_size : int
        Tiles per forward pass; only windows of one size share a pass (edge tiles are
        smaller), so that a tile gets the same detections in any batch.
    saved : callable, optional
        Called with each tile's index and record once it is saved (e.g.
        :meth:`RecordCache.written_record`, sparing finalizing a read of it).

    Yields
    ------
    list of tuple
        ``(tile index, nuclei it owns)`` for each batch.
    """
    batch: list[tuple[int, np.ndarray]] = []
    for tile in tiles:
        if batch and tile[1].shape != batch[0][1].shape:
            yield _predict_batch(model, plan, job_dir, batch, saved)
            batch = []
        batch.append(tile)
        if len(batch) >= batch_size:
            yield _predict_batch(model, plan, job_dir, batch, saved)
            batch = []
    if batch:
        yield _predict_batch(model, plan, job_dir, batch, saved)


def _predict_batch(model, plan: SlidePlan, job_dir: Path, batch: list[tuple[int, np.ndarray]],
                   saved: Callable[[int, TileRecord], None] | None
                   ) -> list[tuple[int, int]]:
    raws = model.infer_batch([to_model_input(rgb) for _, rgb in batch], resize=False)
    return [(index, _keep_tile(plan, job_dir, index, rgb, raw, saved))
            for (index, rgb), raw in zip(batch, raws, strict=True)]


def _keep_tile(plan: SlidePlan, job_dir: Path, index: int, rgb: np.ndarray, raw,
               saved: Callable[[int, TileRecord], None] | None) -> int:
    """Keep what a tile's detections own, save its candidates; returns the nuclei owned.

    Nothing is measured yet: a nucleus's pixels are known once its neighbours are
    painted (:func:`measure_tile`)."""
    window = plan.tile_at(index)
    found = split_detections(window, index, raw, *rgb.shape[:2])
    owned = [Nucleus(0, score, top, left, mask, kind, probability)
             for score, top, left, mask, kind, probability in found.owned]
    inside = inside_regions(job_regions(job_dir), plan.factor, owned)
    owned = [n for n, keep in zip(owned, inside, strict=True) if keep]
    for k, nucleus in enumerate(owned):
        nucleus.id = index * plan.ids_per_tile + k + 1
    record = TileRecord(tile_bounds(window), owned, found.candidates, raw.hit_cap)
    save_record(job_dir / RECORDS / f"{index:07d}.npz", record)
    if saved is not None:
        saved(index, record)
    return len(owned)


class RecordCache:
    """Tile records and final lists read from the job folder, a bounded number kept."""

    def __init__(self, job_dir: Path, plan: SlidePlan, size: int = 256):
        self.job_dir, self.plan, self.size = job_dir, plan, size
        self._selected = set(plan.selected)
        self._records: dict[int, TileRecord | None] = {}
        self._finals: dict[int, list[Nucleus]] = {}

    def _remember(self, store: dict, key, value):
        store[key] = value
        if len(store) > self.size:
            store.pop(next(iter(store)))
        return value

    def record(self, index: int) -> TileRecord | None:
        if index not in self._selected:
            return None
        if index not in self._records:
            path = self.job_dir / RECORDS / f"{index:07d}.npz"
            self._remember(self._records, index, load_record(path))
        return self._records[index]

    def written_record(self, index: int, record: TileRecord) -> None:
        """Keep a tile's record as just written, sparing finalizing a read of it."""
        self._remember(self._records, index, record)

    def written_final(self, index: int, nuclei: list[Nucleus]) -> None:
        """Keep a tile's final list as just written, sparing painting a read of it."""
        self._remember(self._finals, index, nuclei)

    def final(self, index: int) -> list[Nucleus]:
        if index not in self._selected:
            return []
        if index not in self._finals:
            nuclei, _ = load_nuclei(self.job_dir / FINAL / f"{index:07d}.npz")
            self._remember(self._finals, index, nuclei)
        return self._finals[index]


def finalize_tile(cache: RecordCache, index: int) -> int:
    """Settle a tile's candidates; returns how many it keeps (nuclei wider than the
    overlap)."""
    plan, job_dir = cache.plan, cache.job_dir
    record = cache.record(index)
    owned, candidates = [], []
    for other in plan.neighbours(index, 1):
        neighbour = cache.record(other)
        if neighbour is None:
            continue
        candidates += neighbour.candidates
        owned += [(n.top, n.left, n.mask, neighbour.window) for n in neighbour.owned]
    kept = settle_candidates(record.candidates, owned, candidates)
    inside = inside_regions(job_regions(job_dir), plan.factor, kept)
    kept = [k for k, keep in zip(kept, inside, strict=True) if keep]
    base = index * plan.ids_per_tile + len(record.owned)
    nuclei = [Nucleus(base + k + 1, c.score, c.top, c.left, c.mask, c.class_index,
                      c.class_probability) for k, c in enumerate(kept)]
    save_nuclei(job_dir / FINAL / f"{index:07d}.npz", nuclei)
    cache.written_final(index, nuclei)
    return len(nuclei)


def held_nuclei(cache: RecordCache, index: int) -> list[Nucleus]:
    """The nuclei a tile holds: those it owns and those it kept from the candidates."""
    record = cache.record(index)
    return ([] if record is None else record.owned) + cache.final(index)


def paint_chunk(cache: RecordCache, labels: LabelsStore, index: int) -> None:
    """Paint the labels under a tile's core: the best-ranked nucleus wins overlaps."""
    plan = cache.plan
    y0, x0, y1, x1 = (int(v) for v in plan.tile_at(index).core)
    nuclei = [n for other in plan.neighbours(index, 2) for n in held_nuclei(cache, other)]
    block = paint_nuclei(np.zeros((y1 - y0, x1 - x0), np.uint32), y0, x0,
                         ((n.id, n.score, n.top, n.left, n.mask) for n in nuclei))
    labels.write_block(y0, x0, block)
    marker = cache.job_dir / PAINTED / f"{index:07d}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _extent(nuclei: list[Nucleus]) -> tuple[int, int, int, int]:
    return (min(n.top for n in nuclei), min(n.left for n in nuclei),
            max(n.top + n.mask.shape[0] for n in nuclei),
            max(n.left + n.mask.shape[1] for n in nuclei))


def chunks_under(cache: RecordCache, index: int) -> set[int]:
    """The labels chunks (tile indices) that the nuclei a tile holds reach into."""
    nuclei = held_nuclei(cache, index)
    if not nuclei:
        return set()
    plan = cache.plan
    top, left, bottom, right = _extent(nuclei)
    rows = range(min(top // plan.stride, plan.rows - 1),
                 min((bottom - 1) // plan.stride, plan.rows - 1) + 1)
    cols = range(min(left // plan.stride, plan.cols - 1),
                 min((right - 1) // plan.stride, plan.cols - 1) + 1)
    return {r * plan.cols + c for r in rows for c in cols}


def measure_tile(cache: RecordCache, labels: LabelsStore,
                 read_pixels: Callable[[int, int, int, int], np.ndarray], index: int) -> int:
    """Measure the nuclei a tile holds on the painted labels; returns how many remain.

    Each nucleus is measured on the pixels labelled with its id (its own mask less
    what better-ranked neighbours took); a nucleus left with none is not in the label
    image and gets no row. Needs every chunk of :func:`chunks_under` painted.

    Parameters
    ----------
    cache : RecordCache
    labels : LabelsStore
    read_pixels : callable
        ``(top, left, bottom, right)`` in prediction pixels to the ``(h, w, 3)`` uint8
        pixels there (:func:`read_tile` of the job's slide).
    index : int
    """
    nuclei = held_nuclei(cache, index)
    kept, pixels, kinds = [], [], []
    # A tile's nuclei lie in its window, bar a few merged from cut views: one read of
    # the labels and pixels for those in the window, one for each of the others.
    window = cache.plan.tile_at(index)
    inside = [n for n in nuclei if n.top >= window.top and n.left >= window.left
              and n.top + n.mask.shape[0] <= window.bottom
              and n.left + n.mask.shape[1] <= window.right]
    in_window = {n.id for n in inside}
    groups = ([inside] if inside else []) + [[n] for n in nuclei if n.id not in in_window]
    for group in groups:
        top, left, bottom, right = _extent(group)
        painted = np.asarray(labels.base[top:bottom, left:right])
        rgb = read_pixels(top, left, bottom, right)
        for n in group:
            own = own_pixels(painted, top, left, n.id, n.top, n.left, n.mask)
            if own is None:
                continue
            y, x, mask = own
            kept.append((n.id, n.score, y, x, mask))
            kinds.append((n.class_index, n.class_probability))
            pixels.append(rgb[y - top : y - top + mask.shape[0],
                              x - left : x - left + mask.shape[1]])
    _write_parts(cache.job_dir, index, kept, pixels, cache.plan, kinds)
    marker = cache.job_dir / MEASURED / f"{index:07d}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return len(kept)
