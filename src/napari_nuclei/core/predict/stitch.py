"""Stitch tiles into one set of nuclei: the steps an image in tiles and a slide share.

Both cut the image on the same grid (:func:`~.tiles.regular_grid`), split each tile's
detections into the nuclei it owns and candidates (:func:`split_detections`), settle each
tile's candidates against the tiles around it (:func:`settle_candidates`) and paint the
result by the one rule for overlaps (:mod:`.resolve`). An image in memory runs the steps
in one loop (:mod:`.predictor`); a slide runs them tile by tile from its job folder
(:mod:`napari_nuclei.core.slide.work`). The same pixels therefore give the same nuclei,
whether read as an image or as a slide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .paste import paste_in_box, tight
from .tiles import Candidate, Neighbourhood, Tile, centred, cut_off, resolve_candidate


@dataclass
class TileFindings:
    """What one tile's detections give before its neighbours are known.

    Attributes
    ----------
    owned : list of tuple
        ``(score, top, left, mask, class_index, class_probability)`` of the nuclei the
        tile owns, in image pixels.
    candidates : list of Candidate
        Detections no tile owns outright (cut by the tile's edge, or centred in another
        tile's core).
    """

    owned: list = field(default_factory=list)
    candidates: list = field(default_factory=list)


def split_detections(window: Tile, index: int, raw, height: int, width: int) -> TileFindings:
    """Split a tile's detections into the nuclei it owns and candidates.

    Parameters
    ----------
    window : Tile
    index : int
        The tile's index in its grid (breaks ties between candidates).
    raw : RawDetections
        The network's detections in tile coordinates.
    height, width : int
        Size of the tile's pixels.

    Returns
    -------
    TileFindings
    """
    bounds = tile_bounds(window)
    cut = cut_off(window, raw.boxes)
    mine = centred(window, raw.boxes) & ~cut
    findings = TileFindings()
    for rank in range(len(raw.scores)):
        region = tight(*paste_in_box(raw.mask_probs[rank], raw.boxes[rank], height, width))
        if region is None:
            continue
        top, left, mask = region[0] + window.top, region[1] + window.left, region[2]
        score = float(raw.scores[rank])
        kind, probability = int(raw.classes[rank]), raw.class_probability(rank)
        if mine[rank]:
            findings.owned.append((score, top, left, mask, kind, probability))
        else:
            findings.candidates.append(Candidate(top, left, mask, score, not cut[rank],
                                                 bounds, (index, rank), kind, probability))
    return findings


def settle_candidates(candidates: list[Candidate], owned_around: list,
                      candidates_around: list[Candidate]) -> list[Candidate]:
    """The candidates of a tile that are kept (each nucleus once, see
    :func:`~.tiles.resolve_candidate`).

    Parameters
    ----------
    candidates : list of Candidate
        The tile's own candidates.
    owned_around : list of tuple
        ``(top, left, mask, window)`` of the nuclei owned by the tile and the tiles
        around it (those within one row and column).
    candidates_around : list of Candidate
        The candidates of the same tiles (the tile's own included).
    """
    around = Neighbourhood(owned_around, candidates_around)
    return [k for k in (resolve_candidate(c, around) for c in candidates) if k is not None]


def grid_neighbours(index: int, rows: int, cols: int, radius: int) -> list[int]:
    """Tile indices within ``radius`` rows and columns of a tile (itself included) in a
    grid of ``rows`` by ``cols`` tiles numbered row by row."""
    row, col = divmod(index, cols)
    return [r * cols + c
            for r in range(max(0, row - radius), min(rows, row + radius + 1))
            for c in range(max(0, col - radius), min(cols, col + radius + 1))]


def grid_shape(height: int, width: int, tile: int, overlap: int) -> tuple[int, int]:
    """Rows and columns of :func:`~.tiles.regular_grid`."""
    stride = tile - overlap
    return max(1, height // stride), max(1, width // stride)


def stitch_findings(tiles: list[Tile], findings: list[TileFindings], rows: int,
                    cols: int) -> tuple[list, int]:
    """All nuclei of a grid of tiles: those owned and the candidates kept.

    Returns
    -------
    nuclei : list of tuple
        ``(score, top, left, mask, class_index, class_probability)``, owned nuclei first,
        tile by tile.
    wider : int
        How many came from candidates (nuclei wider than the overlap).
    """
    nuclei = [n for found in findings for n in found.owned]
    kept = 0
    for index, found in enumerate(findings):
        if not found.candidates:
            continue
        around = grid_neighbours(index, rows, cols, 1)
        owned = [(top, left, mask, tile_bounds(tiles[other]))
                 for other in around for _, top, left, mask, *_ in findings[other].owned]
        candidates = [c for other in around for c in findings[other].candidates]
        for c in settle_candidates(found.candidates, owned, candidates):
            nuclei.append((c.score, c.top, c.left, c.mask, c.class_index,
                           c.class_probability))
            kept += 1
    return nuclei, kept


def tile_bounds(tile: Tile) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of a tile's window."""
    return tile.top, tile.left, tile.bottom, tile.right
