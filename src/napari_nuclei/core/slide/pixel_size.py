"""Which pixel size to predict a slide at: the one the model was trained at.

A model trained at 0.5 µm/px sees nuclei about twice as large on a 0.25 µm/px slide as it
learned them; tiles are therefore resampled to the run's training pixel size
(``train --mpp``). The slide's own value comes from its file unless ``--mpp`` overrides
it. When either is unknown the slide is used as it is, and the user is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

# Pixel sizes closer than this are treated as equal: resampling by 1% only blurs.
_SAME_SCALE = 0.02


@dataclass(frozen=True)
class PixelSize:
    """How a slide is predicted.

    Attributes
    ----------
    slide_mpp : float or None
        Microns per level-0 pixel (the file's, or ``--mpp``).
    model_mpp : float or None
        Microns per pixel of the training images.
    factor : float
        Prediction pixels per level-0 pixel (1: the slide as it is).
    message : str
        One line for the user on what was decided.
    """

    slide_mpp: float | None
    model_mpp: float | None
    factor: float
    message: str


def run_training_mpp(run_dir: Path | None) -> float | None:
    """The training pixel size a run recorded (``settings.json``), if any."""
    from ..runs import recorded_number

    return None if run_dir is None else recorded_number(run_dir, "mpp")


def resolve_pixel_size(slide_path: Path, file_mpp: float | None, override_mpp: float | None,
                       model_mpp: float | None) -> PixelSize:
    """Decide the prediction scale of a slide.

    Parameters
    ----------
    slide_path : Path
        For messages.
    file_mpp : float or None
        The pixel size the slide file records.
    override_mpp : float or None
        ``--mpp``: the slide's pixel size as the user states it.
    model_mpp : float or None
        The run's training pixel size.

    Raises
    ------
    InputError
        When the run was trained at a known pixel size and the slide's is unknown: the
        nuclei would be the wrong size for the model.
    """
    if override_mpp is not None and override_mpp <= 0:
        raise InputError(slide_path, f"--mpp must be positive, got {override_mpp}")
    slide_mpp = override_mpp or file_mpp
    source = "--mpp" if override_mpp else "the file"
    if model_mpp is None:
        where = f"{slide_mpp:g} µm/px from {source}" if slide_mpp else "unknown"
        return PixelSize(slide_mpp, None, 1.0,
                         f"the run does not record its training pixel size (train --mpp); "
                         f"the slide (pixel size {where}) is used as it is")
    if slide_mpp is None:
        raise InputError(slide_path, f"the slide's pixel size is unknown and the model was "
                         f"trained at {model_mpp:g} µm/px: give it with --mpp")
    factor = slide_mpp / model_mpp
    if abs(factor - 1) <= _SAME_SCALE:
        return PixelSize(slide_mpp, model_mpp, 1.0,
                         f"slide at {slide_mpp:g} µm/px ({source}), as the model was trained")
    return PixelSize(slide_mpp, model_mpp, factor,
                     f"slide at {slide_mpp:g} µm/px ({source}) resampled by {factor:.3g} to "
                     f"the model's training pixel size {model_mpp:g} µm/px")
