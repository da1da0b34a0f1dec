"""The two NGFF versions of the slide labels: which zarr format each uses and where each
keeps its metadata.

NGFF 0.5 is zarr format 3 with the OME metadata under the group attribute ``ome`` (its
``version`` there); NGFF 0.4 is zarr format 2 with the same keys at the top of the group
attributes (``.zattrs``) and the version inside each ``multiscales`` entry. Everything in
the project that reads or updates the labels' metadata goes through this module, so that
a store keeps the version it was written in.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

NGFF_VERSIONS = ("0.5", "0.4")
DEFAULT_NGFF = "0.5"
_ZARR_FORMATS = {"0.5": 3, "0.4": 2}


def zarr_format(version: str) -> int:
    """The zarr format of an NGFF version (3 for 0.5, 2 for 0.4).

    Raises
    ------
    ValueError
        For a version the project does not write.
    """
    try:
        return _ZARR_FORMATS[version]
    except KeyError:
        raise ValueError(f"NGFF version must be one of {', '.join(NGFF_VERSIONS)} "
                         f"(got {version!r})") from None


def ngff_version(group) -> str:
    """The NGFF version a zarr group is written in, told by its zarr format."""
    return "0.5" if group.metadata.zarr_format == 3 else "0.4"


def is_zarr_group(path: Path) -> bool:
    """Whether a folder holds a zarr group of either format (without opening it)."""
    return (Path(path) / "zarr.json").is_file() or (Path(path) / ".zgroup").is_file()


def ngff_attrs(group) -> dict:
    """The OME metadata of a group in either version: ``attrs["ome"]`` (0.5) or the
    attributes themselves (0.4)."""
    attrs = group.attrs.asdict()
    ome = attrs.get("ome")
    return dict(ome) if isinstance(ome, dict) else attrs


def ngff_multiscales(group) -> list[dict]:
    """The ``multiscales`` entries of a group in either version (empty when it has none,
    as while a slide job runs)."""
    multiscales = ngff_attrs(group).get("multiscales")
    return list(multiscales) if isinstance(multiscales, list) else []


@contextlib.contextmanager
def _compact_json():
    # The label colours list one entry per nucleus: written without indentation they take
    # less than half the bytes (and reading them back, the time).
    import zarr

    with zarr.config.set({"json_indent": None}):
        yield


def update_ngff_attrs(group, values: dict) -> None:
    """Set OME metadata keys of a group, in the layout of the group's own version.

    Parameters
    ----------
    group : zarr.Group
        Opened for writing.
    values : dict
        Keys (``multiscales``, ``image-label``, ``omero``...) and their values; the
        other keys are kept.
    """
    version = ngff_version(group)
    with _compact_json():
        if version == "0.5":
            group.attrs["ome"] = {**ngff_attrs(group), **values, "version": version}
        else:
            group.attrs.update(values)


def label_colours(ids: np.ndarray) -> list[dict]:
    """NGFF ``image-label`` colours of nucleus ids: a bright colour for each id (the same
    for the same id whenever it is written) and a transparent background.

    Parameters
    ----------
    ids : numpy.ndarray
        Nucleus ids (non-zero).

    Returns
    -------
    list of dict
        ``{"label-value": id, "rgba": [r, g, b, a]}`` entries, background (0) first.
    """
    ids = np.unique(np.asarray(ids, np.uint64))
    ids = ids[ids != 0]
    # A multiplicative hash spreads neighbouring ids (one tile's nuclei) over the hues.
    mixed = (ids * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    hue = (mixed & np.uint64(0xFFFF)).astype(np.float64) / 65536.0
    value = 0.7 + 0.3 * ((mixed >> np.uint64(16)) & np.uint64(0xFF)).astype(np.float64) / 255
    rgb = _hsv_to_rgb(hue, 0.85, value)
    colours = [{"label-value": 0, "rgba": [0, 0, 0, 0]}]
    colours += [{"label-value": int(i), "rgba": [int(r), int(g), int(b), 255]}
                for i, (r, g, b) in zip(ids.tolist(), rgb.tolist(), strict=True)]
    return colours


def _hsv_to_rgb(hue: np.ndarray, saturation: float, value: np.ndarray) -> np.ndarray:
    """``(n, 3)`` uint8 RGB of hues in [0, 1) at one saturation and per-id values."""
    sector = np.floor(hue * 6).astype(int) % 6
    f = hue * 6 - np.floor(hue * 6)
    p = value * (1 - saturation)
    q = value * (1 - saturation * f)
    t = value * (1 - saturation * (1 - f))
    choices = [(value, t, p), (q, value, p), (p, value, t), (p, q, value), (t, p, value),
               (value, p, q)]
    rgb = np.zeros((len(hue), 3))
    for k, channels in enumerate(choices):
        chosen = sector == k
        for c in range(3):
            rgb[chosen, c] = channels[c][chosen]
    return np.round(rgb * 255).astype(np.uint8)
