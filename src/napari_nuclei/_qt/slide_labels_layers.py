"""The multiscale Labels layer of each predicted region, shown while its tiles finish.

The layer is made before the region's job starts (:meth:`SlideLabelsLayers.prepare`:
empty, made in a worker, inserted in turns of the event loop, see :mod:`.layer_turns`),
so that napari builds no layer while the job runs. Its progress reports then refresh it,
at most once per ``min_interval`` seconds, by handing napari fresh lazy arrays (nothing
is read until napari draws what is in view, and then from memory); when the job
finishes, the layer takes the finished OME-Zarr pyramid. The layer data is made in the
job's relay worker: opening the zarr arrays reads their metadata from disk.
"""

from __future__ import annotations

from pathlib import Path

from .layer_turns import insertion_steps, new_layer, run_in_turns


class SlideLabelsLayers:
    """The Labels layer of each output folder, live while its job runs.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    min_interval : float
        Seconds between two refreshes of a live layer.
    """

    def __init__(self, viewer, min_interval: float = 1.0):
        self.viewer = viewer
        self.min_interval = min_interval
        self.layers: dict[Path, object] = {}
        self.refreshes = 0
        self.pyramids: dict[Path, object] = {}  # finished outputs' labels in memory
        self._inserting: set[Path] = set()  # layers made, going into the viewer in turns
        self._generation = 0

    def get(self, out_dir: Path):
        return self.layers.get(Path(out_dir))

    def __getitem__(self, out_dir: Path):
        return self.layers[Path(out_dir)]

    def __contains__(self, out_dir) -> bool:
        return Path(out_dir) in self.layers

    def shown(self, out_dir: Path) -> bool:
        """Whether ``out_dir`` has a layer in the viewer, or on its way there."""
        out_dir = Path(out_dir)
        layer = self.layers.get(out_dir)
        return layer is not None and (out_dir in self._inserting or layer in self.viewer.layers)

    def prepare(self, out_dir: Path, layer, then) -> None:
        """Put ``layer`` (made hidden in a worker, see
        :func:`~.layer_turns.new_layer`) in the viewer as ``out_dir``'s, in turns, then
        call ``then`` (which starts the job that fills it)."""
        self._insert(Path(out_dir), layer, then)

    def tiles_done(self, out_dir: Path, data) -> None:
        """Show the labels of ``out_dir``'s running job, or refresh them.

        ``data`` is their live layer data, made in a worker
        (:func:`~napari_nuclei.session.slide_jobs.relay_region`) at most once per
        ``min_interval`` seconds.
        """
        out_dir = Path(out_dir)
        levels, meta, _ = data
        layer = self.layers.get(out_dir)
        if self.shown(out_dir) and _pyramid_of(layer.data) is not None and \
                _pyramid_of(layer.data) is _pyramid_of(levels):
            layer.refresh()  # the same labels in memory, painted since: drawn again
        elif not self._swap(out_dir, levels, meta):
            self._insert(out_dir, new_layer(levels, meta, "labels"))
        self.refreshes += 1

    def finished(self, out_dir: Path, finished) -> None:
        """Show a finished job's OME-Zarr pyramid in its layer (made if there is none).

        ``finished`` is ``(layer data, pyramid)``, made in a worker (see
        :func:`~napari_nuclei.core.slide.lazy.cached_labels_layer_data`).
        """
        out_dir = Path(out_dir)
        (levels, meta, _), self.pyramids[out_dir] = finished
        if not self._swap(out_dir, levels, meta):
            self._insert(out_dir, new_layer(levels, meta, "labels"))

    def show_made(self, out_dir: Path, layer, pyramid) -> None:
        """Show a finished output's layer made in a worker (a slide opened with its
        predictions, a restored session), with its labels in memory."""
        out_dir = Path(out_dir)
        self.pyramids[out_dir] = pyramid
        self._insert(out_dir, layer)

    def pyramid(self, out_dir: Path):
        """The labels in memory of a finished output's layer (None when not shown)."""
        return self.pyramids.get(Path(out_dir))

    def rewritten(self, out_dir: Path) -> None:
        """The output's labels were written to (a window written back): its layer reads
        them again, from the blocks in memory the write-back updated."""
        out_dir = Path(out_dir)
        layer, pyramid = self.layers.get(out_dir), self.pyramids.get(out_dir)
        if layer is None or pyramid is None or not self.shown(out_dir):
            return
        self._generation += 1
        levels = pyramid.levels(f"labels-{out_dir.name}-written-{self._generation}")
        layer.data = levels if layer.multiscale else levels[0]

    def _swap(self, out_dir: Path, levels, meta: dict) -> bool:
        """Give ``out_dir``'s layer new data (and pixel size): no layer for napari to
        build. False when there is no such layer, or when it cannot take the data
        (a single level where it has several, or the reverse)."""
        layer = self.layers.get(out_dir)
        if not self.shown(out_dir) or layer.multiscale != isinstance(levels, list):
            return False
        layer.data = levels
        if tuple(layer.scale) != tuple(meta["scale"]):
            layer.scale = meta["scale"]
        if "units" in meta:
            layer.units = meta["units"]
        layer.metadata = meta["metadata"]
        return True

    def _insert(self, out_dir: Path, layer, then=None) -> None:
        """Insert ``layer`` as ``out_dir``'s, in place of the one it had (keeping its
        name), in turns of the event loop."""
        old = self.layers.get(out_dir)
        self.layers[out_dir] = layer
        self._inserting.add(out_dir)

        def inserted(layer):
            self._inserting.discard(out_dir)
            if old is not None and old is not layer and old in self.viewer.layers:
                name = old.name
                self.viewer.layers.remove(old)
                layer.name = name  # added beside the old one, napari had given it a suffix

        def current() -> bool:  # a newer layer took its place meanwhile: left out
            return self.layers.get(out_dir) is layer

        run_in_turns(insertion_steps(self.viewer, layer, on_inserted=inserted), then,
                     go_on=current)


def _pyramid_of(levels):
    """The labels in memory a layer's data reads (None for other arrays)."""
    try:
        first = levels[0] if not hasattr(levels, "pyramid") else levels
    except (TypeError, IndexError, KeyError):
        return None
    return getattr(first, "pyramid", None)
