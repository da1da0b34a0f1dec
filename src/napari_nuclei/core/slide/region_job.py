"""Predict a region of a slide as a job for a child process (the viewer's slide section).

The job loads the model in the child, then streams the region's tiles through the same
engine as ``predict-slide --region`` into the slide's output folder, yielding the
engine's progress; after each tile it brings the live coarse levels of the labels up to
date (:mod:`.live_labels`), so that the viewer shows them filling in. Stopped, it keeps
its finished tiles; started again with the same region, it continues.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from .engine import SlideOptions, TileDone, iter_predict_slide
from .live_labels import LivePyramid, remove_live_levels


def iter_predict_region(model_path: str | Path, slide: str | Path, out_dir: str | Path,
                        region: tuple[int, int, int, int] | None = None,
                        checkpoint: str | Path | None = None, device: str = "auto",
                        overwrite: bool = False) -> Generator:
    """Load a model and predict a region of a slide (the whole tissue when ``region`` is
    None).

    Parameters
    ----------
    model_path : str or Path
        A training run folder or weights file.
    slide : str or Path
    out_dir : str or Path
        The slide's output folder.
    region : tuple of int, optional
        ``(x, y, width, height)`` in level-0 pixels.
    checkpoint : str or Path, optional
    device : str
    overwrite : bool
        Replace an earlier job of another region in ``out_dir``.

    Yields
    ------
    TileDone or Notice

    Returns
    -------
    SlideResult
    """
    from ..models import load_model

    model = load_model(model_path, checkpoint=checkpoint, device=device)
    return (yield from predict_region_with(model, slide, out_dir, region, overwrite))


def predict_region_with(model, slide, out_dir, region=None, overwrite: bool = False):
    """:func:`iter_predict_region` with a model already loaded."""
    options = SlideOptions(region=tuple(int(v) for v in region) if region else None,
                           overwrite=overwrite)
    steps = iter_predict_slide(model, slide, out_dir, options)
    live = None
    try:
        while True:
            try:
                report = next(steps)
            except StopIteration as finished:
                remove_live_levels(out_dir)
                return finished.value
            if isinstance(report, TileDone):
                live = live or LivePyramid(out_dir)
                live.update()
            yield report
    finally:
        steps.close()  # stopped between tiles: the engine closes the slide
