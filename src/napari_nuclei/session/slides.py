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
from .store import SavedSlide as SlideEntry

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
        Output folder of each region predicted (level-0 ``(x, y, w, h)``), newest last:
        those found finished on disk when the slide was opened, then those predicted.
    window : SlideWindow or None
    earlier : dict of Path to dict
        The outputs of the slides opened before this one (saved with the session).
    restoring : list of SlideEntry
        Slides a restored session brings back, not opened yet (the last one ends open).
    generation, saved_generation : int
        Stamps of the last change and of the last one saved with the session.
    """

    changed = Signal(str)

    def __init__(self, output_root: Callable[[], Path]):
        self._output_root = output_root
        self.slide: Path | None = None
        self.mpp: float | None = None
        self.size = (0, 0)
        self.outputs: dict[Path, tuple] = {}
        self.window: SlideWindow | None = None
        self.earlier: dict[Path, dict[Path, tuple]] = {}
        self.restoring: list = []
        self.generation = self.saved_generation = 0

    def _changed(self, what: str) -> None:
        self.generation += 1
        self.changed.emit(what)

    @property
    def needs_saving(self) -> bool:
        """Whether the session on disk lists the slides as they are now."""
        return self.generation != self.saved_generation

    def entries(self) -> list[SlideEntry]:
        """The slides opened, as the session saves them (the one open last)."""
        slides = [SlideEntry(slide, tuple(outputs.items()))
                  for slide, outputs in self.earlier.items()]
        if self.slide is not None:
            window = None
            if self.window is not None and self.window.out_dir in self.outputs:
                window = (self.window.out_dir, self.window.level0_region)
            slides.append(SlideEntry(self.slide, tuple(self.outputs.items()), window))
        return slides + self.restoring  # not open yet, but the session's all the same

    def restore(self, slides: list[SlideEntry]) -> None:
        """A restored session's slides, in place of those opened so far: announced
        (``restored``) for the section to open them one by one (:meth:`next_restored`)."""
        self.slide, self.mpp, self.size = None, None, (0, 0)
        self.outputs, self.window, self.earlier = {}, None, {}
        self.restoring = list(slides)
        self.saved_generation = self.generation = self.generation + 1
        self.changed.emit("restored")

    def next_restored(self) -> SlideEntry | None:
        """The next slide a restore brings back (None when none is left)."""
        return self.restoring.pop(0) if self.restoring else None

    @property
    def output_root(self) -> Path:
        """The session's output folder (it may change while a slide is open)."""
        return Path(self._output_root())

    def open(self, slide: Path, mpp: float | None, size: tuple[int, int],
             found=(), restored: SlideEntry | None = None) -> None:
        """A slide is open (in place of the one open before).

        Parameters
        ----------
        slide : Path
        mpp : float or None
        size : tuple of int
            Level-0 ``(width, height)``.
        found : iterable of tuple
            ``(output folder, region or None)`` of this slide's finished predictions
            found in the output folder (None: the whole tissue), oldest first: *Edit
            region* and the exports work on them at once.
        restored : SlideEntry, optional
            The slide as a restored session lists it: its outputs come last, in its
            order (the newest is the one a window is pulled from).
        """
        if self.slide is not None and self.outputs:
            self.earlier[self.slide] = dict(self.outputs)
        slide = Path(slide)
        self.earlier.pop(slide, None)
        self.slide, self.mpp, self.size = slide, mpp, size
        outputs = {Path(out_dir): tuple(region) if region else (0, 0, *size)
                   for out_dir, region in found}
        if restored is not None:
            for out_dir, region in restored.outputs:
                if out_dir in outputs:
                    outputs.pop(out_dir)
                    outputs[out_dir] = tuple(region)
        self.outputs, self.window = outputs, None
        self._changed("slide")

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
        self.outputs.pop(Path(out_dir), None)  # predicted again: the newest
        self.outputs[Path(out_dir)] = tuple(region)
        self._changed("outputs")

    def output_holding(self, region) -> Path | None:
        """The newest predicted region's folder that contains ``region``."""
        x, y, w, h = region
        for out_dir, (rx, ry, rw, rh) in reversed(list(self.outputs.items())):
            if rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh:
                return out_dir
        return None

    def set_window(self, window: SlideWindow | None) -> None:
        self.window = window
        self._changed("window")

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


def write_back_with_table(window, labels, pyramid=None):
    """Write a window back and read its nuclei's rows again (run in a worker); the
    labels in memory of the output's layer (``pyramid``) take the labels written."""
    from ..core.slide.window import window_table, write_back

    result = write_back(window, labels)
    if pyramid is not None and result.labels is not None:
        pyramid.paint(window.top, window.left, result.labels)
    return result, window_table(window)


def as_features(rows: list[dict]) -> dict:
    """Table rows as a Labels layer's features (``index``: the label value of each row)."""
    columns = {"index": [row["id"] for row in rows]}
    for name in (rows[0] if rows else {}):
        if name != "id":
            columns[name] = [row[name] for row in rows]
    return columns
