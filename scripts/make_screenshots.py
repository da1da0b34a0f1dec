"""Developer tool: the README's pictures, taken by the plugin itself in a real viewer.

Run under Xvfb after ``make demo`` (it reuses the demo's trained run)::

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1200x24" \\
        .venv/bin/python scripts/make_screenshots.py demo_output/run docs

Writes ``dock_training.png`` (a tiny training running in the dock, with the live plot)
and ``predicted_he.png`` (nuclei predicted on the H&E tile, ready for correction).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qtpy.QtWidgets import QApplication

from napari_nuclei._qt.launch import open_viewer


def wait(condition, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the viewer did not get there in time")
        QApplication.processEvents()
        time.sleep(0.02)


def training_picture(out: Path) -> None:
    """The dock while a tiny run trains on the sample data."""
    viewer, dock = open_viewer(show=True)
    viewer.window.resize(1600, 1000)
    train = dock.train_tab
    with tempfile.TemporaryDirectory() as tmp:
        train.form.output.set_text(str(Path(tmp) / "run"), emit=False)
        dock.tabs.setCurrentIndex(1)
        train.start_button.click()
        wait(lambda: len(train.plot.reports) >= 110)
        train.plot.redraw()
        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(str(out / "dock_training.png"), canvas_only=False)
        train.stop_button.click()
        wait(lambda: not train.worker.is_running)
    viewer.close()


def prediction_picture(run_dir: Path, out: Path) -> None:
    """Nuclei predicted on the H&E tile by the demo's run."""
    viewer, dock = open_viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.layers.clear()
    viewer.open_sample("napari-nuclei", "he_tile")
    dock.train_tab.open_run(run_dir)
    dock.tabs.setCurrentIndex(2)
    dock.predict_tab.threshold.setValue(50)
    # Let the canvas draw the new layers first: Mesa's software OpenGL has crashed here
    # when it compiled shaders while torch was building the model in the worker.
    settle = time.monotonic() + 3
    wait(lambda: time.monotonic() > settle)
    dock.predict_tab.current_button.click()
    wait(lambda: "he_tile_1000" in dock.session.images)
    wait(lambda: not dock.predict_tab.worker.is_running)
    layer = dock.predict_tab.layers.labels_layer
    layer.opacity = 0.5
    for _ in range(20):
        QApplication.processEvents()
    viewer.screenshot(str(out / "predicted_he.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    # One picture per process: a viewer that trained and then changed its layers has
    # crashed in glDrawArrays under Xvfb's software OpenGL.
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) > 3:
        prediction_picture(Path(sys.argv[1]), out_dir) if sys.argv[3] == "predict" else \
            training_picture(out_dir)
    else:
        for part in ("train", "predict"):
            subprocess.run([sys.executable, __file__, sys.argv[1], sys.argv[2], part],
                           check=True)
