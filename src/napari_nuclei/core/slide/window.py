"""Correct a predicted slide in windows: pull a region into memory, write the edits back.

Multiscale labels cannot be painted in napari, so a region of a ``predict-slide`` output
is pulled into ordinary arrays (:func:`pull_window`): its labels and the slide's pixels
under them, at the labels' pixel size. After the labels are edited, :func:`write_back`
writes them into the slide's OME-Zarr (level 0 and the pyramid over the region) and
updates the nucleus table and GeoJSON for the nuclei that changed.

Rules of a write-back
---------------------
- Only nuclei lying wholly inside the window may change. A nucleus the window's border
  cuts (it reaches outside, by its pixels or its table box) is kept exactly as it was:
  its pixels are restored, and pixels painted with its id elsewhere become background.
  To correct such a nucleus, pull a window that contains it.
- Ids stay unique across the slide: an id the window did not hold before (a new nucleus)
  gets a fresh id above the slide's largest; a nucleus painted in several separate
  pieces keeps its id on the largest piece and the others become new nuclei.
- Nuclei whose pixels changed are measured again (the engine's measurements and
  polygons); changed ones keep their score, added ones get score 1.
- Pixels outside the window are never written. If the labels under the window changed
  since it was pulled (another write-back), the write-back is refused.
- The write-back is journalled (:mod:`.edits`): everything it will write is saved first,
  then applied; a write-back stopped half-way is completed the next time the output
  folder is used, so the labels, table and GeoJSON never disagree for long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .detection_features import classify_columns, feature_lines
from .edits import EditPlan, SlideOutput, apply_pending, open_output
from .measure import Scale, measure_nuclei
from .output_lock import hold_output
from .window_autosave import discard_autosave

# Windows larger than this (label pixels a side) paint slowly in napari.
MAX_WINDOW_SIDE = 2048
ADDED_SCORE = 1.0


@dataclass
class SlideWindow:
    """A region of a predicted slide pulled into memory.

    Attributes
    ----------
    out_dir : Path
        The slide's output folder.
    slide : str
        The slide file.
    top, left : int
        Position of the window in label pixels (level-0 pixels times the job's factor).
    labels : numpy.ndarray
        ``(h, w)`` uint32: the labels to edit (a copy).
    original : numpy.ndarray
        ``(h, w)`` uint32: the labels as pulled.
    image : numpy.ndarray
        ``(h, w, 3)`` uint8: the slide's pixels under the labels.
    cut_ids : frozenset of int
        Nuclei the window's border cuts: kept as they are by a write-back.
    factor : float
        Label pixels per level-0 pixel.
    mpp : float or None
        Microns per label pixel.
    """

    out_dir: Path
    slide: str
    top: int
    left: int
    labels: np.ndarray
    original: np.ndarray
    image: np.ndarray
    cut_ids: frozenset
    factor: float
    mpp: float | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.original.shape

    @property
    def level0_region(self) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the window in level-0 pixels."""
        f = self.factor
        x0, y0 = math.floor(self.left / f), math.floor(self.top / f)
        x1 = math.ceil((self.left + self.shape[1]) / f)
        y1 = math.ceil((self.top + self.shape[0]) / f)
        return x0, y0, x1 - x0, y1 - y0


@dataclass
class WriteBack:
    """What a write-back changed.

    Attributes
    ----------
    removed, changed, added : list of int
        Nucleus ids (added ones with their new ids).
    restored_pixels : int
        Pixels of nuclei cut by the border that were put back as they were.
    labels : numpy.ndarray
        The window's labels as written.
    """

    removed: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    restored_pixels: int = 0
    labels: np.ndarray | None = None

    @property
    def count(self) -> int:
        return len(self.removed) + len(self.changed) + len(self.added)


def label_window(output: SlideOutput, x: int, y: int, width: int,
                 height: int) -> tuple[int, int, int, int]:
    """A level-0 rectangle as ``(top, left, bottom, right)`` in label pixels, clipped."""
    f = output.plan.factor
    top, left = max(0, math.floor(y * f)), max(0, math.floor(x * f))
    bottom = min(output.plan.height, math.ceil((y + height) * f))
    right = min(output.plan.width, math.ceil((x + width) * f))
    if width <= 0 or height <= 0 or bottom <= top or right <= left:
        raise InputError(output.out_dir, f"region x={x}, y={y}, {width}x{height} lies "
                         f"outside the slide ({output.plan.slide_width}x"
                         f"{output.plan.slide_height})")
    return top, left, bottom, right


def pull_window(out_dir: str | Path, x: int, y: int, width: int, height: int,
                max_side: int = MAX_WINDOW_SIDE) -> SlideWindow:
    """Pull the labels and pixels of a level-0 region of a predicted slide into memory.

    Parameters
    ----------
    out_dir : str or Path
        The slide's ``predict-slide`` output folder.
    x, y, width, height : int
        The region in level-0 pixels (clipped to the slide).
    max_side : int
        Largest window side in label pixels.

    Returns
    -------
    SlideWindow

    Raises
    ------
    InputError
        Not a finished output folder, a region outside the slide or too large, or a
        slide that cannot be read.
    """
    from .readers import open_slide
    from .work import read_tile

    output = open_output(out_dir)
    top, left, bottom, right = label_window(output, x, y, width, height)
    if max(bottom - top, right - left) > max_side:
        raise InputError(output.out_dir, f"the region is {right - left}x{bottom - top} label "
                         f"pixels; windows are limited to {max_side} a side so that they "
                         "paint smoothly: choose a smaller region")
    labels = output.read_labels(top, left, bottom, right)
    with open_slide(output.plan.slide) as slide:
        image = read_tile(slide, output.plan, top, left, bottom, right)
    return SlideWindow(output.out_dir, output.plan.slide, top, left, labels.copy(), labels,
                       image, frozenset(_cut_ids(output, top, left, bottom, right, labels)),
                       output.plan.factor,
                       output.plan.mpp / output.plan.factor if output.plan.mpp else None)


def _cut_ids(output: SlideOutput, top, left, bottom, right, labels) -> set[int]:
    """Nuclei of the window reaching outside it: in the one-pixel ring around it, or
    with a table box that leaves it."""
    ring = output.read_labels(max(0, top - 1), max(0, left - 1),
                              min(output.plan.height, bottom + 1),
                              min(output.plan.width, right + 1))
    inside = set(np.unique(labels).tolist()) - {0}
    # The ring holds the window too: keep only ids met outside it.
    oy, ox = top - max(0, top - 1), left - max(0, left - 1)
    outside = ring.copy()
    outside[oy : oy + labels.shape[0], ox : ox + labels.shape[1]] = 0
    cut = inside & set(np.unique(outside).tolist())
    f = output.plan.factor
    for row in output.rows_of(sorted(inside - cut)):
        box_top, box_left = row["bbox_y_px"] * f, row["bbox_x_px"] * f
        box_bottom = box_top + row["bbox_h_px"] * f
        box_right = box_left + row["bbox_w_px"] * f
        # Half a pixel of slack: boxes went through level-0 pixels and back.
        if (box_top < top - 0.5 or box_left < left - 0.5 or box_bottom > bottom + 0.5
                or box_right > right + 0.5):
            cut.add(int(row["id"]))
    return cut - {0}


def window_table(window: SlideWindow) -> list[dict]:
    """The nucleus table's rows of the nuclei in a window (as last written)."""
    ids = sorted(set(np.unique(window.original).tolist()) - {0})
    return open_output(window.out_dir).rows_of(ids)


def _checked_labels(window: SlideWindow, edited) -> np.ndarray:
    edited = np.asarray(edited)
    if edited.shape != window.shape:
        raise InputError(window.out_dir, f"the edited labels are {edited.shape}, the window "
                         f"is {window.shape}")
    if edited.dtype.kind not in "iub":
        raise InputError(window.out_dir, f"labels must be whole numbers, not {edited.dtype}")
    if edited.size and (edited.min() < 0 or edited.max() >= 2**32):
        raise InputError(window.out_dir, "labels must be between 0 and 2**32 - 1")
    return edited.astype(np.uint32, copy=True)


def _restore_cut(window: SlideWindow, final: np.ndarray) -> int:
    """Put nuclei cut by the border back as they were; returns the pixels restored."""
    if not window.cut_ids:
        return 0
    cut = np.fromiter(window.cut_ids, np.uint32)
    was_cut = np.isin(window.original, cut)
    stray = np.isin(final, cut) & ~was_cut
    restored = int(np.count_nonzero(final[was_cut] != window.original[was_cut]))
    restored += int(np.count_nonzero(stray))
    final[stray] = 0
    final[was_cut] = window.original[was_cut]
    return restored


def _pieces(final: np.ndarray, skip: set[int]):
    """``(id, slices, mask)`` of every connected piece of every nucleus, largest piece of
    each id first."""
    from scipy import ndimage

    ids, compact = np.unique(final, return_inverse=True)
    # Numbered 1..n (ids[k] is k + 1), so find_objects needs no list as long as the ids.
    compact = compact.reshape(final.shape) + 1
    for index, box in enumerate(ndimage.find_objects(compact)):
        if box is None or ids[index] == 0 or int(ids[index]) in skip:
            continue
        mask = compact[box] == index + 1
        parts, n = ndimage.label(mask)
        if n == 1:
            yield int(ids[index]), box, mask
            continue
        sizes = np.bincount(parts.ravel())[1:]
        for part in np.argsort(-sizes, kind="stable") + 1:
            piece = parts == part
            rows, cols = np.nonzero(piece)
            sub = (slice(box[0].start + rows.min(), box[0].start + rows.max() + 1),
                   slice(box[1].start + cols.min(), box[1].start + cols.max() + 1))
            yield int(ids[index]), sub, piece[rows.min() : rows.max() + 1,
                                              cols.min() : cols.max() + 1]


def write_back(window: SlideWindow, edited=None) -> WriteBack:
    """Write a window's edited labels into the slide's outputs.

    Parameters
    ----------
    window : SlideWindow
        From :func:`pull_window`.
    edited : array-like, optional
        The edited labels (default: ``window.labels``).

    Returns
    -------
    WriteBack

    Raises
    ------
    InputError
        Labels of the wrong shape or type, or labels under the window that changed since
        it was pulled; ``OutputBusy`` when another process writes to the same output.
    """
    final = _checked_labels(window, window.labels if edited is None else edited)
    with hold_output(window.out_dir):
        return _write_back(window, final)


def _write_back(window: SlideWindow, final: np.ndarray) -> WriteBack:
    output = open_output(window.out_dir)
    bottom, right = window.top + window.shape[0], window.left + window.shape[1]
    if not np.array_equal(output.read_labels(window.top, window.left, bottom, right),
                          window.original):
        raise InputError(window.out_dir, "the labels under this window changed since it was "
                         "pulled (another window was written back over it): pull it again")
    result = WriteBack(restored_pixels=_restore_cut(window, final))
    before = set(np.unique(window.original).tolist()) - {0} - set(window.cut_ids)
    next_id = max(output.max_id(), int(window.original.max(initial=0))) + 1
    seen: set[int] = set()
    pieces = []
    for nucleus_id, box, mask in _pieces(final, set(window.cut_ids)):
        if nucleus_id in before and nucleus_id not in seen:
            seen.add(nucleus_id)
            pieces.append((nucleus_id, box, mask))
        else:  # new, or a further piece of one id: a new nucleus with a fresh id
            pieces.append((next_id, box, mask))
            final[box][mask] = next_id
            next_id += 1
    if next_id >= 2**32:
        raise InputError(window.out_dir, "no nucleus ids are left below 2**32")
    differs = final != window.original
    touched = set(np.unique(final[differs]).tolist()) | set(np.unique(
        window.original[differs]).tolist())
    result.removed = sorted(before - seen)
    result.changed = sorted((seen & touched) - {0})
    result.added = sorted(i for i, _, _ in pieces if i not in before)
    result.labels = final
    rows = output.rows_of(result.changed)
    scores = {int(r["id"]): float(r["score"]) for r in rows}
    kinds = _kinds_of(rows, output.plan.class_set)
    scale = Scale(window.factor, output.plan.mpp)
    remeasure = set(result.changed) | set(result.added)
    # The engine's tile measurements, so edited nuclei get the same columns and outlines.
    nuclei = [(nucleus_id, scores.get(nucleus_id, ADDED_SCORE), window.top + box[0].start,
               window.left + box[1].start, mask)
              for nucleus_id, box, mask in pieces if nucleus_id in remeasure]
    crops = [window.image[box] for nucleus_id, box, _ in pieces if nucleus_id in remeasure]
    columns, outlines = measure_nuclei(nuclei, crops, scale, output.plan.stain,
                                       output.plan.vectors)
    # A changed nucleus keeps its class; one drawn by hand has none until given one.
    classifications = classify_columns(columns, output.plan.class_set,
                                       [kinds.get(n[0], (-1, np.nan)) for n in nuclei])
    features = feature_lines(columns, outlines, classifications)
    if result.count == 0 and result.restored_pixels == 0:
        discard_autosave(window)
        return result
    plan = EditPlan(window.top, window.left, final, sorted(set(result.removed)
                                                          | set(result.changed)),
                    columns, features, {"removed": len(result.removed),
                                     "changed": len(result.changed),
                                     "added": len(result.added),
                                     "level0_region": list(window.level0_region)})
    output.journal(plan)
    apply_pending(output)
    discard_autosave(window)
    window.original = final.copy()
    window.labels = final.copy()
    return result


def _kinds_of(rows: list[dict], classes) -> dict[int, tuple[int, float]]:
    """Class index and probability of each nucleus of the table ``rows`` (none for a
    model of one class, or a nucleus without a class)."""
    if classes is None:
        return {}
    kinds = {}
    for row in rows:
        name = row.get("class")
        if name is not None:
            kinds[int(row["id"])] = (classes.index_of_name(name),
                                     float(row.get("class_probability", np.nan)))
    return kinds
