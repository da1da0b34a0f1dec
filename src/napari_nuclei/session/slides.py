"""The slide the dock works on: where its predictions go, the region and window in hand.

Qt-free: the slide section binds to it and runs its slow steps in workers. Each predicted
region gets its own output folder (``<output>/slides/<slide>_x.._y.._WxH``), so predicting
another region never replaces corrections made in an earlier one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from psygnal import Signal

from ..core.slide.engine import slide_name
from ..core.slide.window import MAX_WINDOW_SIDE, SlideWindow

SLIDES_FOLDER = "slides"
WINDOWS_FOLDER = "slide_windows"


class SlideSession:
    """The open slide, its predicted regions and the window being corrected.

    Attributes
    ----------
    slide : Path or None
    mpp : float or None
        Level-0 microns per pixel (the viewer's unit when known, else pixels).
    size : tuple of int
        Level-0 ``(width, height)``.
    outputs : dict of Path to tuple
        Output folder of each region predicted (level-0 ``(x, y, w, h)``), newest last.
    window : SlideWindow or None
    """

    changed = Signal(str)

    def __init__(self, output_root: Callable[[], Path]):
        self._output_root = output_root
        self.slide: Path | None = None
        self.mpp: float | None = None
        self.size = (0, 0)
        self.outputs: dict[Path, tuple] = {}
        self.window: SlideWindow | None = None

    @property
    def output_root(self) -> Path:
        """The session's output folder (it may change while a slide is open)."""
        return Path(self._output_root())

    def open(self, slide: Path, mpp: float | None, size: tuple[int, int]) -> None:
        self.slide, self.mpp, self.size = Path(slide), mpp, size
        self.outputs, self.window = {}, None
        self.changed.emit("slide")

    @property
    def units_per_pixel(self) -> float:
        """World units (µm, or pixels) per level-0 pixel."""
        return self.mpp or 1.0

    def to_level0(self, world_yx) -> tuple[float, float]:
        """A world (layer) position as level-0 ``(y, x)``."""
        return world_yx[0] / self.units_per_pixel, world_yx[1] / self.units_per_pixel

    def region_from_corners(self, corners) -> tuple[int, int, int, int]:
        """The level-0 ``(x, y, w, h)`` of a rectangle given by world ``(y, x)`` points,
        clipped to the slide."""
        ys, xs = zip(*(self.to_level0(c) for c in corners), strict=True)
        x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
        x1, y1 = min(self.size[0], math.ceil(max(xs))), min(self.size[1], math.ceil(max(ys)))
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)

    def region_around(self, world_centre, side: int = MAX_WINDOW_SIDE // 2):
        """A square level-0 region of ``side`` pixels centred on a world position."""
        y, x = self.to_level0(world_centre)
        half = side / 2
        return self.region_from_corners([((y - half) * self.units_per_pixel,
                                          (x - half) * self.units_per_pixel),
                                         ((y + half) * self.units_per_pixel,
                                          (x + half) * self.units_per_pixel)])

    def region_in_view(self, world_centre, canvas_hw, zoom: float):
        """The level-0 region a canvas of ``canvas_hw`` screen pixels shows, centred on a
        world position at ``zoom`` screen pixels per world unit, clipped to the slide."""
        half_h, half_w = canvas_hw[0] / zoom / 2, canvas_hw[1] / zoom / 2
        y, x = world_centre
        return self.region_from_corners([(y - half_h, x - half_w), (y + half_h, x + half_w)])

    def edit_region(self, drawn, world_centre) -> tuple[int, int, int, int]:
        """The level-0 region *Edit region* pulls into a window.

        Parameters
        ----------
        drawn : tuple of int or None
            The rectangle the user drew, level-0 ``(x, y, w, h)``: taken as it is.
        world_centre : tuple of float
            The centre of the view, world ``(y, x)``.

        Returns
        -------
        tuple of int
            With nothing drawn, the newest predicted region holding the centre of the
            view: right after *Predict view* or *Predict region*, the region just
            predicted, whatever its size next to the default square. A region too large
            for one window (the whole tissue) gives the square around the centre,
            clipped to it. Outside every predicted region, that square itself.
        """
        if drawn is not None:
            return tuple(drawn)
        square = self.region_around(world_centre)
        y, x = self.to_level0(world_centre)
        for rx, ry, rw, rh in reversed(list(self.outputs.values())):
            if rx <= x < rx + rw and ry <= y < ry + rh:
                if max(rw, rh) <= MAX_WINDOW_SIDE:
                    return rx, ry, rw, rh
                x0, y0 = max(square[0], rx), max(square[1], ry)
                x1 = min(square[0] + square[2], rx + rw)
                y1 = min(square[1] + square[3], ry + rh)
                return x0, y0, x1 - x0, y1 - y0
        return square

    def output_for(self, region) -> Path:
        """The output folder of a predicted region (None: the whole tissue)."""
        name = slide_name(self.slide)
        if region is None:
            return self.output_root / SLIDES_FOLDER / name
        x, y, w, h = region
        return self.output_root / SLIDES_FOLDER / f"{name}_x{x}_y{y}_{w}x{h}"

    def predicted(self, out_dir: Path, region) -> None:
        self.outputs[Path(out_dir)] = tuple(region)
        self.changed.emit("outputs")

    def output_holding(self, region) -> Path | None:
        """The newest predicted region's folder that contains ``region``."""
        x, y, w, h = region
        for out_dir, (rx, ry, rw, rh) in reversed(list(self.outputs.items())):
            if rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh:
                return out_dir
        return None

    def set_window(self, window: SlideWindow | None) -> None:
        self.window = window
        self.changed.emit("window")

    @property
    def windows_folder(self) -> Path:
        """Where windows added to training go (a training set ``train`` reads)."""
        return self.output_root / WINDOWS_FOLDER

    def training_sample(self, window: SlideWindow) -> Path:
        """The training sample folder *Add region to training set* writes for
        ``window``: one per slide region, so adding it again replaces it (ask first)."""
        from ..core.slide.training_windows import sample_name

        return self.windows_folder / "train" / sample_name(window)


def pull_with_table(out_dir, region):
    """A window and its nuclei's table rows (run in a worker)."""
    from ..core.slide.window import pull_window, window_table

    window = pull_window(out_dir, *region)
    return window, window_table(window)


def autosave_and_count(window, labels) -> int:
    """Autosave a window's edits; returns how many nuclei they touch (run in a worker)."""
    from ..core.slide.window_autosave import autosave_window, touched_nuclei

    autosave_window(window, labels)
    return touched_nuclei(window, labels)


def write_back_with_table(window, labels):
    """Write a window back and read its nuclei's rows again (run in a worker)."""
    from ..core.slide.window import window_table, write_back

    result = write_back(window, labels)
    return result, window_table(window)


def as_features(rows: list[dict]) -> dict:
    """Table rows as a Labels layer's features (``index``: the label value of each row)."""
    columns = {"index": [row["id"] for row in rows]}
    for name in (rows[0] if rows else {}):
        if name != "id":
            columns[name] = [row[name] for row in rows]
    return columns
