"""The multiscale Labels layer of each predicted region, shown while its tiles finish.

While a job runs, its layer reads the level-0 labels and the job's live coarse levels
(:mod:`napari_nuclei.core.slide.live_labels`); a progress report may refresh it, at most
once per ``min_interval`` seconds, by handing napari fresh lazy arrays (nothing is read
until napari draws what is in view). When the job finishes, the layer takes the finished
OME-Zarr pyramid. The layer data is made in the job's relay worker: opening the zarr
arrays reads their metadata from disk.
"""

from __future__ import annotations

from pathlib import Path


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
        self._live: dict[Path, bool] = {}  # the layers showing a running job
        self.pyramids: dict[Path, object] = {}  # finished outputs' labels in memory
        self._generation = 0

    def get(self, out_dir: Path):
        return self.layers.get(Path(out_dir))

    def __getitem__(self, out_dir: Path):
        return self.layers[Path(out_dir)]

    def __contains__(self, out_dir) -> bool:
        return Path(out_dir) in self.layers

    def tiles_done(self, out_dir: Path, data) -> None:
        """Show the labels of ``out_dir``'s running job, or refresh them.

        ``data`` is their live layer data, made in a worker
        (:func:`~napari_nuclei.session.slide_jobs.relay_region`) at most once per
        ``min_interval`` seconds.
        """
        out_dir = Path(out_dir)
        levels, meta, _ = data
        layer = self.layers.get(out_dir)
        if layer is None or out_dir not in self._live or layer not in self.viewer.layers:
            self._replace(out_dir, self.viewer.add_labels(levels, **meta))
        elif _pyramid_of(layer.data) is not None and \
                _pyramid_of(layer.data) is _pyramid_of(levels):
            layer.refresh()  # the same labels in memory, painted since: drawn again
        else:
            layer.data = levels
        self._live[out_dir] = True
        self.refreshes += 1

    def finished(self, out_dir: Path, finished) -> None:
        """Show a finished job's OME-Zarr pyramid in place of its live layer.

        ``finished`` is ``(layer data, pyramid)``, made in a worker (see
        :func:`~napari_nuclei.core.slide.lazy.cached_labels_layer_data`).
        """
        out_dir = Path(out_dir)
        self._live.pop(out_dir, None)
        (levels, meta, _), self.pyramids[out_dir] = finished
        layer = self.layers.get(out_dir)
        if layer is not None and layer in self.viewer.layers and \
                tuple(layer.scale) == meta["scale"] and len(layer.data) == len(levels):
            # The live layer takes the finished pyramid: no second layer for napari to
            # build (adding a multiscale Labels layer stalls the GUI for about a second).
            layer.data = levels
            layer.metadata = meta["metadata"]
            return
        self._replace(out_dir, self.viewer.add_labels(levels, **meta))

    def pyramid(self, out_dir: Path):
        """The labels in memory of a finished output's layer (None when not shown)."""
        return self.pyramids.get(Path(out_dir))

    def rewritten(self, out_dir: Path) -> None:
        """The output's labels were written to (a window written back): its layer reads
        them again, from the blocks in memory the write-back updated."""
        out_dir = Path(out_dir)
        layer, pyramid = self.layers.get(out_dir), self.pyramids.get(out_dir)
        if layer is None or pyramid is None or layer not in self.viewer.layers:
            return
        self._generation += 1
        levels = pyramid.levels(f"labels-{out_dir.name}-written-{self._generation}")
        layer.data = levels if layer.multiscale else levels[0]

    def _replace(self, out_dir: Path, layer) -> None:
        old = self.layers.get(out_dir)
        if old is not None and old in self.viewer.layers:
            name = old.name
            self.viewer.layers.remove(old)
            layer.name = name  # added beside the old one, napari had given it a suffix
        self.layers[out_dir] = layer


def _pyramid_of(levels):
    """The labels in memory a layer's data reads (None for other arrays)."""
    try:
        first = levels[0] if not hasattr(levels, "pyramid") else levels
    except (TypeError, IndexError, KeyError):
        return None
    return getattr(first, "pyramid", None)
