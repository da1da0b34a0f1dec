"""The Labels layers of the session's predicted images, kept in step with the session.

Each predicted image gets one Labels layer painting into the session's own label array.
Paint strokes, undo/redo and whole replacements are reported to the session (which
counts the corrections in proportion to the stroke), and every corrected image is
autosaved into the session's output folder shortly after the last edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, QTimer, Signal

from .workers import start_job

if TYPE_CHECKING:
    import napari

    from ..session import Session

AUTOSAVE_DELAY_MS = 1500


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


class PredictedLayers(QObject):
    """Binds the session's predicted images to Labels layers and autosaves corrections.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    session : Session
        The session the layers show.
    """

    saved = Signal(str)  # one-line summary of an autosave

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.labels: dict[str, object] = {}  # image name -> its Labels layer
        self.images: dict[str, object] = {}  # image name -> its Image layer
        self._quiet = False  # set while this object writes a layer's data itself
        self._saving = None
        self._strokes: dict[str, list] = {}  # painted regions not counted yet
        self._count_timer = QTimer(self, singleShot=True, interval=0)
        self._count_timer.timeout.connect(self._on_count_due)
        self.autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self.autosave_timer.timeout.connect(self._on_autosave_due)
        session.image_added.connect(self._on_image_added)
        session.image_changed.connect(self._on_image_changed)
        session.image_removed.connect(self._on_image_removed)

    def register_image(self, name: str, layer) -> None:
        """The Image layer a prediction of ``name`` belongs to."""
        self.images[name] = layer

    def _on_image_added(self, name: str) -> None:
        image = self.session.images[name]
        image_layer = self.images.get(name)
        metadata = {"source_file": str(image.image_path) if image.image_path else None}
        layer = self.viewer.add_labels(
            image.labels, name=f"{name} nuclei (predicted)", features=image.features(),
            metadata=metadata, opacity=0.6,
            **({"scale": image_layer.scale[-2:], "translate": image_layer.translate[-2:]}
               if image_layer is not None else {}))
        image.share(layer.data)  # napari may hold its own copy: edits land there
        layer.events.paint.connect(lambda event, n=name: self._on_paint(n, event))
        layer.events.set_data.connect(lambda _event, n=name: self._on_set_data(n))
        layer.events.data.connect(lambda _event, n=name: self._on_data_replaced(n))
        self.labels[name] = layer
        self.show(name)
        self.autosave_timer.start()  # the session (with this prediction) is saved too

    def _on_image_changed(self, name: str) -> None:
        image, layer = self.session.images.get(name), self.labels.get(name)
        if image is None or layer is None:
            return
        if layer.data is not image.labels:  # a new threshold made new labels
            self._quiet = True
            try:
                layer.data = image.labels
                layer.features = image.features()
                image.share(layer.data)
            finally:
                self._quiet = False
        if image.dirty and not self.autosave_timer.isActive():
            self.autosave_timer.start()

    def _on_image_removed(self, name: str) -> None:
        layer = self.labels.pop(name, None)
        if layer is not None and layer.unique_id in {lyr.unique_id for lyr in self.viewer.layers}:
            self.viewer.layers.remove(layer)

    def _on_paint(self, name: str, event) -> None:
        # napari announces some edits (data_setitem) before it writes them: count them
        # once control is back in the event loop.
        if not self._quiet and name in self.session.images:
            self._strokes.setdefault(name, []).extend(stroke_regions(event.value))
            self._count_timer.start()

    def _on_count_due(self) -> None:
        strokes, self._strokes = self._strokes, {}
        for name, regions in strokes.items():
            if name in self.session.images:
                self.session.labels_painted(name, regions)

    def _on_set_data(self, name: str) -> None:
        # napari's undo and redo write the data and refresh without a paint event.
        if not self._quiet and name in self.session.images:
            self.session.labels_rewritten(name)

    def _on_data_replaced(self, name: str) -> None:
        import numpy as np

        if not self._quiet and name in self.session.images:
            self.session.labels_replaced(name, np.asarray(self.labels[name].data))

    def show(self, name: str) -> None:
        """Show one predicted image (with its labels) and hide the other layers, so
        that images do not pile up over each other at the origin."""
        # The viewer a plugin gets hands out a new proxy at each access: compare ids.
        keep = {layer.unique_id for layer in (self.labels.get(name), self.images.get(name))
                if layer is not None}
        for layer in self.viewer.layers:
            layer.visible = layer.unique_id in keep
        if name in self.labels:
            self.viewer.layers.selection.active = self.labels[name]

    def name_of(self, layer) -> str | None:
        """The predicted image a Labels layer shows, if it is one of these."""
        for name, labels in self.labels.items():
            if layer is not None and labels.unique_id == layer.unique_id:
                return name
        return None

    def shown_name(self) -> str | None:
        """The predicted image whose labels are selected, or visible, now."""
        name = self.name_of(self.viewer.layers.selection.active)
        if name is not None:
            return name
        visible = [n for n, layer in self.labels.items() if layer.visible]
        return visible[-1] if visible else None

    # -- autosave -----------------------------------------------------------------------
    def _on_autosave_due(self) -> None:
        from ..session.actions import save_session, session_snapshot

        if self._saving is not None:  # one save at a time; try again shortly
            self.autosave_timer.start()
            return
        if not self.session.images:
            return
        state = session_snapshot(self.session)
        self._saving = start_job(save_session, state, on_return=self._on_saved,
                                 on_finish=self._on_save_finished)

    def _on_saved(self, saved) -> None:
        for name, path, generation in saved:
            self.session.mark_saved(name, path, generation)
        if saved:
            self.saved.emit(f"Saved corrections of {', '.join(n for n, _, _ in saved)} in "
                            f"{saved[0][1].parent}")

    def _on_save_finished(self) -> None:
        self._saving = None

    def save_now(self) -> None:
        """Save pending corrections and the session at once (closing napari or the dock)."""
        from ..session.actions import save_session, session_snapshot

        self.autosave_timer.stop()
        self._on_count_due()
        # A save still running in a worker is not waited for: every file is written
        # atomically, so saving the same image here too leaves one whole file either way.
        if self.session.images and self.session.unsaved():
            self._on_saved(save_session(session_snapshot(self.session)))
