"""The dock's reused pair of layers, made before a prediction starts.

napari's insertion of an Image or a Labels layer builds its controls and visuals, and its
first draw builds its shaders: together a third of a second on the GUI thread here. Done
when the first prediction arrived, that stalled the viewer in the middle of a folder's
prediction. Now each of these steps runs in an event-loop turn of its own before the
prediction starts, and the first prediction only swaps the layers' data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..session.layers import image_fit
from .layer_turns import run_in_turns

if TYPE_CHECKING:
    from .predicted_layers import PredictedLayers

class LayerPreparation:
    """Makes the Image and Labels layers that :class:`PredictedLayers` reuses.

    Parameters
    ----------
    layers : PredictedLayers
        The layers' owner; the layers made become its ``image_layer`` and
        ``labels_layer``.
    """

    def __init__(self, layers: PredictedLayers):
        self.layers = layers

    def prepare(self, name: str, path, then) -> None:
        """Make the layers (those missing) before a prediction starts, showing its first
        image, then call ``then``.

        Parameters
        ----------
        name : str
            The first image to be predicted.
        path : Path or None
            Its file; None when the image is a layer the user opened.
        then : callable
            Called once the layers are made (or could not be: the prediction says why).
        """
        labels_steps = [self._add_empty_labels, self._draw_empty_labels]
        layers, in_viewer = self.layers, self.layers.in_viewer
        if in_viewer(layers.labels_layer):
            then()
        elif (path is None or in_viewer(layers.images.get(name))
              or in_viewer(layers.image_layer)):
            self._in_turns(labels_steps, then)  # the image is shown already
        else:
            read = []
            image_steps = [lambda: self._add_first(name, path, read[0]), self._draw_first]

            def after_reading():
                self._in_turns([*image_steps, *labels_steps] if read else labels_steps, then)

            if not layers.pixels.read(name, path, read.append, after_reading, quiet=True):
                self._in_turns(labels_steps, then)  # another image is being read

    def _in_turns(self, steps: list, then) -> None:
        """Run each step in a turn of its own (the viewer redraws in between), then
        ``then``; the remaining steps are left when a prediction is shown meanwhile."""
        run_in_turns(steps, then, go_on=lambda: self.layers.current is None)

    def _add_first(self, name: str, path, pixels) -> None:
        if not self.layers.in_viewer(self.layers.image_layer):
            self.layers.image_layer = self.layers.viewer.add_image(
                pixels, name=name, metadata={"source_file": str(path)},
                rgb=image_fit(pixels.shape).rgb, visible=False)  # drawn in the next turn

    def _draw_first(self) -> None:
        if self.layers.in_viewer(self.layers.image_layer):
            self.layers.image_layer.visible = True

    def _add_empty_labels(self) -> None:
        if not self.layers.in_viewer(self.layers.labels_layer):
            # One pixel until :meth:`show` gives it an image's labels: napari builds a
            # Labels layer's visuals and controls in half the time for such data.
            self.layers.labels_layer = self.layers.viewer.add_labels(
                np.zeros((1, 1), np.int32), name="nuclei (predicting…)", opacity=0.6,
                visible=False)  # drawn in the next turn
            self.layers.edits.connect(self.layers.labels_layer)

    def _draw_empty_labels(self) -> None:
        if self.layers.in_viewer(self.layers.labels_layer):
            self.layers.labels_layer.visible = True  # label 0 is transparent: nothing shows yet
