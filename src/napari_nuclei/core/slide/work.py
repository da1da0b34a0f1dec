"""The three steps every tile goes through; each writes its results to the job folder.

1. :func:`predict_batches` runs the network on tiles (a batch per forward pass), keeps
   the nuclei each tile owns (measured, with their ids) and saves its candidates (needs
   only the tile: runs on any worker).
2. :func:`finalize_tile` settles the tile's candidates against its neighbours' records
   (needs the 3x3 tiles around it predicted).
3. :func:`paint_chunk` paints the labels chunks under the tile's core (one chunk, two or
   four at the last row and column) from every nucleus reaching into it (needs the 5x5
   tiles around it finalized).

Each step is a pure function of what is on disk and writes its files atomically, so
running them in any order that respects those needs, in one process or many, stopped and
started again, gives the same labels, table and GeoJSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from ..normalize import to_model_input
from ..predict.paste import paste_in_box, tight
from ..predict.tiles import Candidate, Neighbourhood, centred, cut_off, resolve_candidate
from ..validate import load_arrays
from .measure import Scale, feature_lines, measure_nuclei
from .outputs import LabelsStore, write_features_part, write_table_part
from .plan import SlidePlan, regions_keep
from .reader import Slide
from .records import Nucleus, TileRecord, load_nuclei, load_record, save_nuclei, save_record

RECORDS = "records"
FINAL = "final"
PARTS = "parts"
PAINTED = "painted"


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


def _regions(job_dir: Path, plan: SlidePlan):
    if plan.regions_downsample is None:
        return None
    return load_arrays(job_dir / "regions.npy")[""]


def _centres(nuclei) -> np.ndarray:
    return np.array([(n.top + n.mask.shape[0] / 2, n.left + n.mask.shape[1] / 2)
                     for n in nuclei], np.float64).reshape(-1, 2)


def _write_parts(job_dir: Path, index: int, suffix: str, nuclei, pixels, plan) -> None:
    """Write the table rows and GeoJSON features of some nuclei of a tile.

    Tiles without such nuclei write nothing (most tiles keep no nucleus wider than the
    overlap): the outputs are assembled from the parts there are, and whether a tile is
    done is told by its record and final list.
    """
    if not nuclei:
        return
    scale = _scale(plan)
    columns, outlines = measure_nuclei([(n.id, n.score, n.top, n.left, n.mask)
                                        for n in nuclei], pixels, scale, plan.stain)
    parts = job_dir / PARTS
    write_features_part(parts / f"{index:07d}{suffix}.geojsonl",
                        feature_lines(columns, outlines))
    write_table_part(parts / f"{index:07d}{suffix}.arrow", columns, plan.stain)


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
    """Keep what a tile's detections own, save its candidates; returns the nuclei owned."""
    window = plan.tile_at(index)
    bounds = (window.top, window.left, window.bottom, window.right)
    cut = cut_off(window, raw.boxes)
    mine = centred(window, raw.boxes) & ~cut
    owned, owned_pixels, candidates = [], [], []
    for rank in range(len(raw.scores)):
        region = tight(*paste_in_box(raw.mask_probs[rank], raw.boxes[rank], *rgb.shape[:2]))
        if region is None:
            continue
        top, left, mask = region
        pixels = rgb[top : top + mask.shape[0], left : left + mask.shape[1]]
        top, left = top + window.top, left + window.left
        if mine[rank]:
            owned.append(Nucleus(0, float(raw.scores[rank]), top, left, mask))
            owned_pixels.append(pixels)
        else:
            candidates.append(Candidate(top, left, mask, float(raw.scores[rank]),
                                        not cut[rank], bounds, (index, rank), pixels.copy()))
    inside = regions_keep(_regions(job_dir, plan), plan.regions_downsample, plan,
                          _centres(owned))
    owned = [n for n, keep in zip(owned, inside, strict=True) if keep]
    owned_pixels = [p for p, keep in zip(owned_pixels, inside, strict=True) if keep]
    for k, nucleus in enumerate(owned):
        nucleus.id = index * plan.ids_per_tile + k + 1
    _write_parts(job_dir, index, "a", owned, owned_pixels, plan)
    record = TileRecord(bounds, owned, candidates, raw.hit_cap)
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
        if other != index:
            owned += [(n.top, n.left, n.mask, neighbour.window) for n in neighbour.owned]
    around = Neighbourhood(owned, candidates)
    kept = [k for k in (resolve_candidate(c, around) for c in record.candidates)
            if k is not None]
    inside = regions_keep(_regions(job_dir, plan), plan.regions_downsample, plan,
                          _centres(kept))
    kept = [k for k, keep in zip(kept, inside, strict=True) if keep]
    base = index * plan.ids_per_tile + len(record.owned)
    nuclei = [Nucleus(base + k + 1, c.score, c.top, c.left, c.mask)
              for k, c in enumerate(kept)]
    _write_parts(job_dir, index, "b", nuclei, [c.pixels for c in kept], plan)
    save_nuclei(job_dir / FINAL / f"{index:07d}.npz", nuclei)
    cache.written_final(index, nuclei)
    return len(nuclei)


def paint_chunk(cache: RecordCache, labels: LabelsStore, index: int) -> None:
    """Paint the labels under a tile's core: the best-scoring nucleus wins overlaps."""
    plan = cache.plan
    y0, x0, y1, x1 = (int(v) for v in plan.tile_at(index).core)
    nuclei = []
    for other in plan.neighbours(index, 2):
        record = cache.record(other)
        if record is not None:
            nuclei += record.owned
        nuclei += cache.final(other)
    block = np.zeros((y1 - y0, x1 - x0), np.uint32)
    reaching = [n for n in nuclei if n.top < y1 and n.top + n.mask.shape[0] > y0
                and n.left < x1 and n.left + n.mask.shape[1] > x0]
    for n in sorted(reaching, key=lambda n: (n.score, -n.id)):
        a0, b0 = max(n.top, y0), max(n.left, x0)
        a1, b1 = min(n.top + n.mask.shape[0], y1), min(n.left + n.mask.shape[1], x1)
        part = n.mask[a0 - n.top : a1 - n.top, b0 - n.left : b1 - n.left]
        block[a0 - y0 : a1 - y0, b0 - x0 : b1 - x0][part] = n.id
    labels.write_block(y0, x0, block)
    marker = cache.job_dir / PAINTED / f"{index:07d}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
