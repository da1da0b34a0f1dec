"""Which image the user means: the one in view, as one 2D plane."""

from __future__ import annotations

from pathlib import Path


def _image_under(viewer, labels) -> object | None:
    """The Image layer a Labels layer belongs to (same source file), if any."""
    from napari.layers import Image

    source = labels.metadata.get("source_file")
    for layer in viewer.layers:
        if isinstance(layer, Image) and source and layer.metadata.get("source_file") == source:
            return layer
    return None


def image_in_view(viewer, predicted_layers) -> object:
    """The selected Image layer, or the image under the selected Labels layer, or else
    the top visible Image layer; never a hidden one.

    Raises
    ------
    ValueError
        With a one-line hint when no image is in view.
    """
    from napari.layers import Image, Labels

    active = viewer.layers.selection.active
    if isinstance(active, Image) and active.visible:
        return active
    if isinstance(active, Labels):
        name = predicted_layers.name_of(active)
        image = predicted_layers.image_layer_of(name) if name else None
        if image is not None:
            return image
        under = _image_under(viewer, active)
        if under is not None:
            return under
    visible = [layer for layer in viewer.layers if isinstance(layer, Image) and layer.visible]
    if not visible:
        raise ValueError("Open or show an image first (Data section or File ▸ Open).")
    return visible[-1]


def plane_in_view(viewer, layer):
    """The 2D plane of ``layer`` the viewer shows (z-stacks and time series: the
    current slice; an RGB image: all of it)."""
    import numpy as np

    data = layer.data
    spatial = 3 if layer.rgb else 2
    leading = data.ndim - spatial
    if leading <= 0:
        return np.asarray(data), ""
    steps = viewer.dims.current_step[-data.ndim:][:leading]
    index = tuple(min(max(int(s), 0), n - 1) for s, n in zip(steps, data.shape, strict=False))
    where = "[" + ", ".join(str(i) for i in index) + "]"
    return np.asarray(data[index]), where


def source_in_view(viewer, predicted_layers):
    """An :class:`ImageSource` for the image in view, and its Image layer.

    A stack is predicted plane by plane: the plane shown now, named after it.
    """
    from ..core.predict.outputs import ImageSource, single_plane

    layer = image_in_view(viewer, predicted_layers)
    pixels, where = plane_in_view(viewer, layer)
    try:
        pixels = single_plane(pixels, layer.name)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    source = layer.metadata.get("source_file") or layer.source.path
    path = Path(source) if source and not where else None
    return ImageSource(f"{layer.name}{where}", path, pixels), layer
