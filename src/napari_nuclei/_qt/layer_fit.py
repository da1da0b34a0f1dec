"""napari's side of :mod:`napari_nuclei.session.layers`: what a layer is, a layer
replaced where it stands, and the labels kept above their image."""

from __future__ import annotations

from ..session.layers import LayerFit, labels_move


def fit_of(layer) -> LayerFit:
    """The :class:`LayerFit` of a napari Image or Labels layer."""
    from napari.layers import Labels

    kind = "labels" if isinstance(layer, Labels) else "image"
    return LayerFit(kind, bool(getattr(layer, "rgb", False)), int(layer.ndim),
                    tuple(float(s) for s in layer.scale))


def index_of(viewer, layer) -> int | None:
    """Where ``layer`` is in the viewer's layer list, or None (the viewer a plugin gets
    hands out a new proxy at each access: layers are compared by id)."""
    if layer is None:
        return None
    ids = [other.unique_id for other in viewer.layers]
    return ids.index(layer.unique_id) if layer.unique_id in ids else None


def put_in_place_of(viewer, old, new):
    """Insert ``new`` where ``old`` is (on top when ``old`` is not in the viewer), then
    remove ``old``; returns ``new``."""
    index = index_of(viewer, old)
    if index is None:
        viewer.layers.append(new)
    else:
        viewer.layers.insert(index, new)
        viewer.layers.pop(index + 1)
    return new


def keep_labels_above(viewer, image_layer, labels_layer) -> None:
    """Move the Labels layer right above its Image layer when it is below (the nuclei
    would be hidden under the image)."""
    image_index, labels_index = index_of(viewer, image_layer), index_of(viewer, labels_layer)
    if image_index is None or labels_index is None:
        return
    move = labels_move(image_index, labels_index)
    if move is not None:
        viewer.layers.move(*move)
