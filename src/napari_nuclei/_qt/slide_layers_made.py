"""The Slides section's layers, made in workers (see :mod:`.layer_turns`).

Opening a slide makes its Image layer, the Shapes layer regions are drawn in and the
Labels layer of each finished prediction a restored session shows; predicting a region
first makes the region's empty Labels layer. All of them are napari layer objects made
here, in a worker, hidden; the section puts them in the viewer one step per turn.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from .layer_turns import new_layer

REGION_LAYER = "slide region"


def open_with_layers(path: Path, output_root: Path, restored=None):
    """:func:`~napari_nuclei.session.slide_jobs.open_with_outputs`, with the layers made.

    Returns
    -------
    tuple
        ``(slide layer data, slide layer, region layer, found, labels, problems)``:
        ``labels`` maps each restored output folder to its Labels layer and the labels
        in memory it reads; the others as ``open_with_outputs`` gives them.
    """
    from ..session.slide_jobs import open_with_outputs

    data, found, labels, problems = open_with_outputs(path, output_root, restored)
    levels, meta, kind = data
    slide_layer = new_layer(levels, meta, kind)
    # On the slide's scale and units, ready for drawing a rectangle.
    region_layer = new_layer(None, {"name": REGION_LAYER, "ndim": 2, "scale": meta["scale"],
                                    "units": meta.get("units"), "edge_color": "yellow",
                                    "face_color": "transparent", "edge_width": 2}, "shapes")
    layers = {out_dir: (new_layer(*layer_data), pyramid)
              for out_dir, (layer_data, pyramid) in labels.items()}
    return data, slide_layer, region_layer, found, layers, problems


def empty_region_layer(out_dir: Path, size: tuple[int, int], mpp: float | None):
    """The empty Labels layer of a region about to be predicted (see
    :func:`~napari_nuclei.core.slide.live_labels.empty_labels_layer_data`)."""
    from ..core.slide.live_labels import empty_labels_layer_data

    return new_layer(*empty_labels_layer_data(out_dir, size, mpp))


def redraw_when_decoded(layer) -> None:
    """Have napari draw a slide layer again whenever its decoding thread has decoded
    blocks (see :mod:`napari_nuclei.core.slide.progressive`): the view drawn coarse at
    first becomes sharp. Layers of other arrays are left as they are."""
    from superqt.utils import ensure_main_thread

    first = layer.data[0] if layer.multiscale else layer.data
    store = getattr(first, "store", None)
    if store is None:
        return
    layer_ref = weakref.ref(layer)  # the store must not keep the layer alive

    @ensure_main_thread
    def redraw() -> None:
        shown = layer_ref()
        if shown is not None and shown.visible:
            shown.refresh(thumbnail=False, highlight=False)

    store.listeners.append(redraw)
