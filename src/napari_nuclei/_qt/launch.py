"""Open napari with the dock and the bundled sample data (``napari-nuclei gui``)."""

from __future__ import annotations

from pathlib import Path


def open_viewer(run_dir: Path | None = None, show: bool = True):
    """A viewer with the dock, the sample folders filled in and the fluorescence sample.

    Parameters
    ----------
    run_dir : Path, optional
        A training run to show in the Train section (and to predict with).
    show : bool
        Show the window (False for screenshots and tests).

    Returns
    -------
    tuple
        ``(viewer, dock)``.
    """
    import napari

    from ..core.sample import sample_data_dir

    viewer = napari.Viewer(title="napari-nuclei", show=show)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    sample = sample_data_dir()
    dock.data_tab.set_paths(sample, sample / "test", sample / "test_gt")
    viewer.open_sample("napari-nuclei", "fluorescence")
    if run_dir is not None:
        dock.train_tab.open_run(Path(run_dir))
    return viewer, dock


def main(run_dir: Path | None = None) -> int:
    """Open the viewer and run napari's event loop until the window closes."""
    import napari

    open_viewer(run_dir)
    napari.run()
    return 0
