"""Paint strokes, undo/redo and whole replacements of the predicted Labels layer, told
to the session so that it counts corrections in proportion to the stroke."""

from __future__ import annotations

from qtpy.QtCore import QObject, QTimer


def stroke_regions(history_item) -> list[tuple]:
    """Bounding boxes (tuples of slices) of the atoms of one napari paint history item."""
    import numpy as np

    regions = []
    for atom in history_item:
        box = getattr(atom, "slice_key", None)  # a masked paint atom knows its box
        if box is None:
            indices = [np.asarray(axis) for axis in atom[0]]
            if not indices or indices[0].size == 0:
                continue
            box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in indices)
        regions.append(tuple(box))
    return regions


def forget_history(layer) -> None:
    """Clear a Labels layer's undo history: undoing a stroke made on another image would
    write it into this one. (napari clears it when a layer stops being editable.)"""
    mode = layer.mode
    layer.editable = False
    layer.editable = True
    layer.mode = mode


class EditEvents(QObject):
    """Listens to the predicted Labels layer and reports its edits to the session.

    Parameters
    ----------
    session : Session
        Told of each edit of the image shown.
    layers : PredictedLayers
        Which image is shown, and its Labels layer.
    """

    def __init__(self, session, layers, parent=None):
        super().__init__(parent)
        self.session, self.layers = session, layers
        self.quiet = False  # set while the dock writes the layer's data itself
        self._strokes: dict[str, list] = {}  # painted regions not counted yet
        self._count_timer = QTimer(self, singleShot=True, interval=0)
        self._count_timer.timeout.connect(self.count_now)

    def connect(self, layer) -> None:
        """Listen to a Labels layer's edits."""
        layer.events.paint.connect(self._on_paint)
        layer.events.set_data.connect(self._on_set_data)
        layer.events.data.connect(self._on_data_replaced)

    def _on_paint(self, event) -> None:
        # napari announces some edits (data_setitem) before it writes them: count them
        # once control is back in the event loop.
        name = self.layers.current
        if not self.quiet and name in self.session.images:
            self._strokes.setdefault(name, []).extend(stroke_regions(event.value))
            self._count_timer.start()
            # A save is due from this stroke on: a close before the strokes are counted
            # still counts and saves them (the save counts what is pending first).
            self.layers.autosave.schedule(restart=False)

    def count_now(self) -> None:
        """Count the strokes painted so far (before saving, or showing another image)."""
        strokes, self._strokes = self._strokes, {}
        for name, regions in strokes.items():
            if name in self.session.images:
                self.session.labels_painted(name, regions)

    def _on_set_data(self, _event=None) -> None:
        # napari's undo and redo write the data and refresh without a paint event.
        if not self.quiet and self.layers.current in self.session.images:
            self.session.labels_rewritten(self.layers.current)

    def _on_data_replaced(self, _event=None) -> None:
        import numpy as np

        if not self.quiet and self.layers.current in self.session.images:
            labels = np.asarray(self.layers.labels_layer.data)
            self.session.labels_replaced(self.layers.current, labels)
