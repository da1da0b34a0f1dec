"""The predicted Labels layer and nucleus classes: colours by class, a click or a number
key gives a nucleus a class. Every rule is the session's; this only binds and calls."""

from __future__ import annotations

from qtpy.QtCore import QObject, Signal

MAX_KEYS = 9
PAN_ZOOM = "pan_zoom"


class ClassLayer(QObject):
    """Binds the classes of the image shown to the predicted Labels layer.

    While ``setting`` is on, the layer pans instead of painting (a click must not paint
    too), a click gives the nucleus under it the current class, and keys 1–9 give the
    nucleus under the pointer (else the label selected) class 1–9. Those keys are
    napari's mode keys at other times, so they are taken only meanwhile; the modes keep
    their letter keys.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Its cursor says which nucleus a key is for.
    session : Session
        Where classes are set.
    layers : PredictedLayers
        The image shown and its Labels layer (which may be replaced by another).
    """

    said = Signal(str)  # one-line hints for the panel

    def __init__(self, viewer, session, layers, parent=None):
        super().__init__(parent)
        self.viewer, self.session, self.layers = viewer, session, layers
        self.by_class = False
        self.setting = False
        self._layer = None  # the layer the callbacks are on
        self._instance_colours = None  # the layer's own colormap, given back later
        self._mode_before = None

    # -- which layer ----------------------------------------------------------------------
    def follow(self) -> None:
        """Bind to the Labels layer showing the current image (call when it may have
        changed) and colour it as chosen."""
        layer = self.layers.labels_layer
        if layer is not self._layer:
            self._unbind()
            self._layer = layer
            if layer is not None:
                layer.mouse_drag_callbacks.append(self._on_click)
                layer.events.mode.connect(self._on_mode)
                if self.setting:
                    self._take_keys(True)
        self.recolour()

    def _unbind(self) -> None:
        layer, self._layer = self._layer, None
        if layer is None:
            return
        if self._on_click in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._on_click)
        layer.events.mode.disconnect(self._on_mode)
        self._keys(layer, False)
        if self._instance_colours is not None:
            layer.colormap, self._instance_colours = self._instance_colours, None

    def _image(self):
        name = self.layers.current
        return self.session.images.get(name) if name is not None else None

    # -- colours --------------------------------------------------------------------------
    def colour_by_class(self, on: bool) -> None:
        self.by_class = on
        self.recolour()

    def recolour(self) -> None:
        """Colour the layer by class (or give it back its instance colours)."""
        from napari.utils.colormaps import DirectLabelColormap

        layer, image = self._layer, self._image()
        if layer is None:
            return
        if self.by_class and image is not None and image.nucleus_classes.several:
            if self._instance_colours is None:
                self._instance_colours = layer.colormap
            colours = image.nucleus_classes.colours(image.present())
            layer.colormap = DirectLabelColormap(color_dict=colours)
        elif self._instance_colours is not None:
            layer.colormap, self._instance_colours = self._instance_colours, None

    # -- setting classes ----------------------------------------------------------------
    def set_setting(self, on: bool) -> None:
        """Turn on or off giving classes by clicking and by number keys."""
        if on == self.setting:
            return
        self.setting = on
        layer = self._layer
        if layer is not None:
            if on:
                self._mode_before = layer.mode
                layer.mode = PAN_ZOOM
            elif self._mode_before is not None and layer.mode == PAN_ZOOM:
                layer.mode = self._mode_before
        self._take_keys(on)

    def _take_keys(self, on: bool) -> None:
        if self._layer is not None:
            self._keys(self._layer, on)

    def _keys(self, layer, on: bool) -> None:
        for number in range(1, MAX_KEYS + 1):
            layer.bind_key(str(number), self._number_key(number - 1) if on else None,
                           overwrite=True)

    def _number_key(self, index: int):
        # napari names its key actions by their functions' names: a partial has none.
        def give_class(layer):
            self._on_number(index, layer)

        give_class.__name__ = f"give_class_{index + 1}"
        return give_class

    def _on_mode(self, _event=None) -> None:
        # Another tool chosen (paint, fill…): clicks are that tool's again.
        if self.setting and self._layer is not None and str(self._layer.mode) != PAN_ZOOM:
            self._mode_before = None
            self.set_setting(False)
            self.said.emit("Setting classes is off while another tool is chosen.")

    def _on_click(self, layer, event) -> None:
        if not self.setting or event.type != "mouse_press":
            return
        self._give(_label_of(layer.get_value(event.position, world=True)),
                   self.session.current_class)

    def _on_number(self, index: int, layer) -> None:
        label = _label_of(layer.get_value(self.viewer.cursor.position, world=True))
        self._give(label or int(layer.selected_label), index)

    def _give(self, label: int, index: int) -> None:
        image, name = self._image(), self.layers.current
        if image is None or not label:
            self.said.emit("No nucleus there: point at one.")
            return
        if index >= len(image.class_set):
            self.said.emit(f"There is no class {index + 1}: the model has "
                           f"{len(image.class_set)}.")
            return
        if self.session.set_class(name, [label], index):
            self.said.emit(f"Nucleus {label} is {image.class_set.name_of(index)} now.")


def _label_of(value) -> int:
    """The label a layer's ``get_value`` gives (a tuple on multiscale or 3D layers)."""
    if isinstance(value, tuple):
        value = value[-1]
    return int(value) if value is not None else 0
