"""The layers showing the session's predicted images, kept in step with the session.

The Labels layer paints into the session's own label array of the image shown. Paint
strokes, undo/redo and whole replacements are reported to the session
(:mod:`.edit_events`), and every corrected image is autosaved into the session's output
folder shortly after the last edit (:mod:`.autosave`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal

from ..session.layers import image_fit, labels_fit
from .autosave import Autosaver
from .edit_events import EditEvents, forget_history
from .layer_fit import fit_of, keep_labels_above, put_in_place_of
from .layer_preparation import LayerPreparation
from .pixel_store import PixelStore

if TYPE_CHECKING:
    import napari

    from ..session import Session

class PredictedLayers(QObject):
    """Shows the session's predicted images, one at a time, and autosaves corrections.

    One Labels layer and one Image layer are reused for every predicted image: showing
    another image swaps their data. Adding a layer per image cost napari a layer
    insertion, a garbage collection and new visuals on the GUI thread for each image of
    a folder, and piled the images up at the origin. A layer that cannot show the next
    image as it is (grayscale after RGB, another scale) is replaced where it stands (see
    :mod:`napari_nuclei.session.layers`), and the labels are kept above their image. An
    image predicted from a layer the user opened is shown in that layer instead of the
    reused Image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer.
    session : Session
        The session the layers show.
    """

    shown = Signal(str)  # an image's labels are in view (perhaps in a new Labels layer)

    def __init__(self, viewer: napari.viewer.Viewer, session: Session, parent=None):
        super().__init__(parent)
        self.viewer, self.session = viewer, session
        self.current: str | None = None  # the predicted image shown
        self.follow = True  # show each new prediction (False: only when none is shown)
        self.labels_layer = self.image_layer = None  # created at the first prediction
        self.images: dict[str, object] = {}  # image name -> the user's Image layer
        self.pixels = PixelStore()  # image name -> its pixels, from the child or its file
        self.edits = EditEvents(session, self, parent=self)
        self.autosave = Autosaver(session, before_save=self.edits.count_now, parent=self)
        self.saved = self.autosave.saved
        self._preparation = LayerPreparation(self)
        self.left = False  # napari's window has closed: nothing more is shown
        session.image_added.connect(self._on_image_added)
        session.image_changed.connect(self._on_image_changed)
        session.image_removed.connect(self._on_image_removed)
        session.image_moved.connect(self._on_image_moved)

    def register_image(self, name: str, layer) -> None:
        """The user's Image layer a prediction of ``name`` belongs to."""
        self.images[name] = layer

    def register_pixels(self, name: str, pixels) -> None:
        """The pixels of ``name``, read from its file (shown in the reused Image layer)."""
        self.pixels.keep(name, pixels)

    def _on_image_added(self, name: str) -> None:
        # A folder's predictions are listed as they come; only the first is shown, so
        # the view does not change under the user's brush (nor redraws for each image).
        if self.follow or self.shown_name() is None:
            self.show(name)
        self.autosave.schedule()  # the session (with this prediction) is saved too

    def _on_image_changed(self, name: str) -> None:
        image = self.session.images.get(name)
        if image is None:
            return
        if name == self.current and self.labels_layer.data is not image.labels:
            self._show_labels(name)  # a new threshold or prediction made new labels
            self.viewer.update_status_from_cursor()
        if image.dirty or not image.prediction_saved:  # an edit, or a new prediction
            self.autosave.schedule(restart=False)

    def _on_image_moved(self, name: str) -> None:
        # Its file found at its folder's new place: the pixels are read from there.
        self.pixels.forget(name)
        if name == self.current:
            self.show(name)

    def _on_image_removed(self, name: str) -> None:
        self.images.pop(name, None)
        self.pixels.forget(name)
        if name == self.current:
            self.current = None
            for layer in (self.labels_layer, self.image_layer):
                if self.in_viewer(layer):
                    layer.visible = False

    def in_viewer(self, layer) -> bool:
        """Whether ``layer`` is one of the viewer's layers (not None, not removed)."""
        return layer is not None and layer.unique_id in {
            lyr.unique_id for lyr in self.viewer.layers}

    def prepare(self, name: str, path, then) -> None:
        """Make the reused layers before a prediction starts (see :mod:`.layer_preparation`)."""
        self._preparation.prepare(name, path, then)

    def leave(self) -> None:
        """napari's window is closing: results arriving later (an image read in a
        worker) are not shown in it."""
        self.left = True

    # -- showing one image ----------------------------------------------------------------
    def show(self, name: str) -> None:
        """Show one predicted image with its labels and hide the other layers, so that
        images do not pile up over each other and no ground truth is drawn over."""
        if name not in self.session.images or self.left:
            return
        self.current = name
        image_layer = self._show_pixels(name)
        self._show_labels(name, image_layer)
        keep_labels_above(self.viewer, image_layer, self.labels_layer)
        # The viewer a plugin gets hands out a new proxy at each access: compare ids.
        keep = {layer.unique_id for layer in (self.labels_layer, image_layer)
                if layer is not None}
        for layer in self.viewer.layers:
            visible = layer.unique_id in keep
            if layer.visible != visible:
                layer.visible = visible
        self.viewer.layers.selection.active = self.labels_layer
        # The reused layers took another image's name and data: napari refreshes its
        # status bar only when the pointer moves or another layer is chosen.
        self.viewer.update_status_from_cursor()

    def _show_pixels(self, name: str):
        """Put the image's pixels in view; returns the Image layer showing them."""
        if name in self.images and self.in_viewer(self.images[name]):
            return self.images[name]
        pixels = self.pixels.get(name)
        if pixels is None:
            self._read_pixels(name)  # shown once read, off the GUI thread
            return None
        path = self.session.images[name].image_path
        metadata = {"source_file": str(path) if path else None}
        layer, wanted = self.image_layer, image_fit(pixels.shape)
        if not self.in_viewer(layer) or not fit_of(layer).takes(wanted):
            from napari.layers import Image

            self.image_layer = put_in_place_of(self.viewer, layer, Image(
                pixels, name=name, metadata=metadata, rgb=wanted.rgb))
        else:
            if layer.data is not pixels:
                layer.data = pixels
                layer.reset_contrast_limits()
            layer.name, layer.metadata = name, metadata
        return self.image_layer

    def _read_pixels(self, name: str) -> None:
        path = self.session.images[name].image_path
        if path is None:
            return

        def on_read(_pixels, name=name):
            if self.current == name:
                self.show(name)

        def on_finish(name=name):
            if self.current not in (None, name) and self.current not in self.pixels:
                self.show(self.current)  # another image was chosen meanwhile

        def on_error(exc, path=path):
            from .workers import one_line

            # Once per file, and not at all when its folder's problem was said.
            self.session.notices.error(one_line(exc), about=path)

        self.pixels.read(name, path, on_read, on_finish, on_error=on_error)

    def _show_labels(self, name: str, image_layer=None) -> None:
        image = self.session.images[name]
        path = image.image_path
        metadata = {"source_file": str(path) if path else None}
        placed = ({"scale": image_layer.scale[-2:], "translate": image_layer.translate[-2:]}
                  if image_layer is not None else {})
        layer = self.labels_layer
        # Until its image is read, the labels keep the scale they have.
        scale = placed.get("scale", layer.scale if self.in_viewer(layer) else None)
        wanted = labels_fit(image.labels.shape, scale)
        self.edits.quiet = True
        try:
            if not self.in_viewer(layer) or not fit_of(layer).takes(wanted):
                from napari.layers import Labels

                if self.in_viewer(layer):
                    self.edits.count_now()  # strokes belong to the image shown until now
                self.labels_layer = put_in_place_of(self.viewer, layer, Labels(
                    image.labels, name=f"{name} nuclei (predicted)", opacity=0.6,
                    features=image.features(), metadata=metadata, **placed))
                self.edits.connect(self.labels_layer)
            else:
                if layer.data is not image.labels:
                    self.edits.count_now()  # strokes belong to the image shown until now
                    layer.data = image.labels
                    forget_history(layer)
                layer.features = image.features()
                layer.name, layer.metadata = f"{name} nuclei (predicted)", metadata
                for key, value in placed.items():
                    setattr(layer, key, value)
            image.share(self.labels_layer.data)  # napari may hold its own copy
        finally:
            self.edits.quiet = False
        self.shown.emit(name)

    def name_of(self, layer) -> str | None:
        """The predicted image a layer shows, if it is the predicted labels or image."""
        if layer is None or self.current is None:
            return None
        ids = {other.unique_id for other in (self.labels_layer, self.image_layer,
                                             self.images.get(self.current))
               if other is not None}
        return self.current if layer.unique_id in ids else None

    def image_layer_of(self, name: str):
        """The Image layer showing ``name`` now, if any."""
        if name in self.images:
            return self.images[name]
        return self.image_layer if name == self.current and name in self.pixels else None

    def shown_name(self) -> str | None:
        """The predicted image in view now."""
        layer = self.labels_layer
        return self.current if self.in_viewer(layer) and layer.visible else None
