"""Developer tool: the README's pictures, taken by the plugin itself in a real viewer.

Run under Xvfb after ``make demo`` (it reuses the demo's trained run)::

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1200x24" \\
        .venv/bin/python scripts/make_screenshots.py demo_output/run docs

Writes ``dock_training.png`` (a tiny training running in the dock, with the live plot),
``predicted_he.png`` (nuclei predicted on the H&E tile, ready for correction) and
``slide_view.png`` (a generated H&E slide in the Slides tab: the view predicted, a
nucleus clicked and its row shown).
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


def slide_picture(run_dir: Path, out: Path) -> None:
    """A generated slide in the Slides tab: the view predicted, a nucleus clicked."""
    from types import SimpleNamespace

    import numpy as np

    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.slide.synthetic import write_test_slide

    viewer, dock = open_viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.layers.clear()
    section = dock.slide_section
    with tempfile.TemporaryDirectory() as tmp:
        tile = read_image(Path(__file__).parent.parent / "sample_data" / "test" /
                          "he_tile_1000.png")
        slide = write_test_slide(Path(tmp) / "case_01.tif", tile, 4096, seed=1, block=512)
        dock.session.output_dir = Path(tmp) / "output"
        dock.train_tab.open_run(run_dir)
        dock.tabs.setCurrentIndex(dock.tabs.count() - 1)
        section.open_slide(slide)
        wait(lambda: section.state.slide is not None)
        viewer.scene.camera.center = (200.0, 200.0)  # µm
        viewer.scene.camera.zoom = 4.0
        for _ in range(20):
            QApplication.processEvents()
        section.buttons["view"].click()
        wait(lambda: bool(section.state.outputs))
        out_dir = next(iter(section.state.outputs))
        layer = section.labels_layers[out_dir]
        layer.opacity = 0.5
        x, y, w, h = section.state.outputs[out_dir]
        labels = np.asarray(layer.data[0][y + h // 2 - 64 : y + h // 2 + 64,
                                          x + w // 2 - 64 : x + w // 2 + 64])
        found = np.argwhere(labels > 0)
        if len(found):  # click the nucleus nearest the centre of the view
            r, c = found[np.abs(found - 64).sum(axis=1).argmin()]
            position = ((y + h // 2 - 64 + r + 0.5) * section.state.units_per_pixel,
                        (x + w // 2 - 64 + c + 0.5) * section.state.units_per_pixel)
            section.measurements._on_click(viewer, SimpleNamespace(position=position))
            wait(lambda: section.measurements.row is not None)
        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(str(out / "slide_view.png"), canvas_only=False)
    viewer.close()


PICTURES = {"train": training_picture, "predict": prediction_picture,
            "slide": slide_picture}

if __name__ == "__main__":
    # One picture per process: a viewer that trained and then changed its layers has
    # crashed in glDrawArrays under Xvfb's software OpenGL.
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) > 3:
        if sys.argv[3] == "train":
            training_picture(out_dir)
        else:
            PICTURES[sys.argv[3]](Path(sys.argv[1]), out_dir)
    else:
        for part in PICTURES:
            subprocess.run([sys.executable, __file__, sys.argv[1], sys.argv[2], part],
                           check=True)
