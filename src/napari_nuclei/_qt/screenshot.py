"""Screenshot of napari with the dock, a run's plot and predicted nuclei over an image.

Run as ``python -m napari_nuclei._qt.screenshot OUT.png RUN_DIR IMAGE LABELS.tif [TAB]``
(the demo does, under Xvfb when there is no display).
"""

from __future__ import annotations

import sys
from pathlib import Path

TABS = {"data": 0, "train": 1, "predict": 2, "export": 3}


def take(out: Path, run_dir: Path, image: Path, labels: Path, tab: str = "train") -> Path:
    """Open the viewer, show the image with its predicted nuclei, save a screenshot."""
    import numpy as np
    import tifffile
    from qtpy.QtWidgets import QApplication

    from ..core.image_io import read_image
    from .launch import open_viewer

    viewer, dock = open_viewer(run_dir, show=True)
    viewer.window.resize(1600, 1000)
    viewer.layers.clear()
    pixels = read_image(image)
    viewer.add_image(pixels, name=image.stem, rgb=pixels.ndim == 3)
    viewer.add_labels(np.asarray(tifffile.imread(labels)), name=f"{image.stem} nuclei",
                      opacity=0.45)
    dock.tabs.setCurrentIndex(TABS[tab])
    viewer.reset_view()
    for _ in range(10):
        QApplication.processEvents()
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    return out


if __name__ == "__main__":
    arguments = [Path(a) for a in sys.argv[1:5]]
    take(*arguments, *(sys.argv[5:6] or []))
