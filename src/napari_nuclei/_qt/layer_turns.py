"""napari layers made in a worker and put in the viewer one step per event-loop turn.

Making a napari layer object (``Layer.create``) needs no Qt: the first Labels layer of a
process costs about a second (imports, colour tables), later ones tens of milliseconds,
and a worker can pay for it. Inserting it cannot leave the GUI thread: napari builds its
controls and visuals there (150 to 250 ms here for each layer), and its first draw
builds its shaders and slices its data (50 to 300 ms more). Each of these steps runs in
a turn of its own, so the viewer redraws and answers in between, and none of them runs
while a job is streaming results: the dock makes the layers a job needs before the job
starts, and the job only swaps their data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from qtpy.QtCore import QTimer

# Between two steps: long enough for the viewer to redraw and take input.
STEP_MS = 40


def new_layer(data, meta: dict, kind: str):
    """A napari layer from a layer data tuple's parts, made hidden.

    Called in a worker; :func:`insertion_steps` puts it in the viewer and shows it.
    """
    from napari.layers import Layer

    return Layer.create(data, {**meta, "visible": False}, kind)


def run_in_turns(steps: Iterable[Callable[[], object]], then: Callable[[], object] | None = None,
                 go_on: Callable[[], bool] = lambda: True) -> None:
    """Run each step in an event-loop turn of its own, then ``then``.

    ``go_on`` is asked before each step: when it says no, the remaining steps are left
    (``then`` still runs).
    """
    steps = list(steps)
    if steps and go_on():
        steps[0]()
        QTimer.singleShot(STEP_MS, lambda: run_in_turns(steps[1:], then, go_on))
    elif then is not None:
        then()


def insertion_steps(viewer, layer, visible: bool = True, on_inserted=None) -> list:
    """The two steps that show a hidden layer made by :func:`new_layer`: inserting it
    (napari builds its controls and visuals), then making it visible (napari slices and
    draws it). ``on_inserted(layer)`` is called right after the insertion."""

    def insert():
        viewer.layers.append(layer)
        if on_inserted is not None:
            on_inserted(layer)

    def show():
        if layer in viewer.layers:
            layer.visible = visible

    return [insert, show]
