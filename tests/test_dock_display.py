"""What the dock draws: the loss plot's legend beside its axes, in distinct colours and a
readable size, saved whole; the Slides nucleus table with room for its rows; napari's
status bar naming the image shown. In a real viewer."""

import numpy as np
import pytest
import test_dock_journeys as journeys
from test_dock_journeys import choose, make_dock, predict_folder

pytestmark = pytest.mark.gui
fake_model = journeys.fake_model
mixed_test_folder = journeys.mixed_test_folder


def reports(n=40, max_iter=100):
    from napari_nuclei.core.training.reports import TrainReport

    keys = ("loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc")
    out = []
    for i in range(1, n + 1):
        losses = {k: 2.0 / (i + j) for j, k in enumerate(keys)}
        val = {"AP": 0.1 + i / 200} if i % 10 == 0 else {}
        out.append(TrainReport(i, max_iter, losses, sum(losses.values()), 0.01 * min(1, i / 5),
                               0.2, 0.01, 12.0, val, f"model_{i - 1:07d}.pth" if val else ""))
    return out


def inside(box, outer):
    return (box.x0 >= outer.x0 - 0.5 and box.y0 >= outer.y0 - 0.5
            and box.x1 <= outer.x1 + 0.5 and box.y1 <= outer.y1 + 0.5)


def test_the_loss_plot_keeps_its_legend_beside_the_curves_and_saves_whole(
        make_napari_viewer, qtbot, tmp_path, monkeypatch):
    import cv2
    from qtpy.QtWidgets import QFileDialog

    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, tmp_path / "run")
    canvas = widget.train_tab.plot
    canvas.set_reports(reports())
    plot, figure = canvas.plot, canvas.figure
    renderer = canvas.get_renderer()
    lines = [plot.total, *plot.terms.values(), plot.lr, plot.ap]
    colours = [line.get_color() for line in lines]
    assert len(set(colours)) == len(lines) == 8
    for legend in (plot.loss_legend, plot.lr_legend):
        assert all(text.get_fontsize() >= 9 for text in legend.get_texts())
        assert legend.get_texts()[0].get_color() == canvas.plot.title.get_color()
    # Beside the loss axes, never over the curves (the total loss among them).
    legend_box = plot.loss_legend.get_window_extent(renderer)
    assert legend_box.x0 >= plot.loss_axes.get_window_extent(renderer).x1
    assert not legend_box.overlaps(plot.lr_axes.get_window_extent(renderer))
    assert inside(legend_box, figure.bbox)

    saved = tmp_path / "loss.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *_a, **_k: (str(saved), "PNG (*.png)"))
    widget.train_tab.save_plot_button.click()
    picture = cv2.imread(str(saved))
    assert picture.shape[1] >= 1600
    # Laid out at the size saved: every label and legend lies within the picture.
    figure.set_dpi(picture.shape[1] / figure.get_figwidth())
    try:
        figure.draw_without_rendering()
        renderer = figure.canvas.get_renderer()
        for artist in (plot.lr_axes.xaxis.label, plot.loss_axes.yaxis.label,
                       plot.ap_axes.yaxis.label, plot.loss_legend, plot.lr_legend):
            assert inside(artist.get_window_extent(renderer), figure.bbox), artist
    finally:
        canvas.redraw()


def test_the_core_plot_saved_by_the_demo_shows_its_x_axis_label(tmp_path):
    import cv2
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from napari_nuclei.core.plots import draw_training, save_training_plot

    save_training_plot(reports(), tmp_path / "plot.png")
    assert cv2.imread(str(tmp_path / "plot.png")).shape[:2] == (600, 800)
    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    plot = draw_training(figure, reports())
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    assert inside(plot.lr_axes.xaxis.label.get_window_extent(renderer), figure.bbox)


def test_the_slides_nucleus_table_shows_ten_rows_and_more(make_napari_viewer, qtbot,
                                                          tmp_path):
    viewer = make_napari_viewer(show=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    widget.tabs.setCurrentIndex(4)  # Slides
    table = widget.slide_section.measurements.table
    qtbot.waitUntil(table.isVisible)
    row = {"id": 7, **{f"measurement_{k}": float(k) for k in range(18)}}
    assert len(row) == 19
    widget.slide_section.measurements.show_row(row)
    qtbot.waitUntil(lambda: table.viewport().height() > 0)
    shown = [k for k in range(table.rowCount())
             if table.rowViewportPosition(k) + table.rowHeight(k)
             <= table.viewport().height()]
    assert len(shown) >= 10


def test_the_status_bar_names_the_image_shown_after_another_is_chosen(
        make_napari_viewer, qtbot, tmp_path, fake_model, mixed_test_folder):
    viewer, widget = make_dock(make_napari_viewer, qtbot, tmp_path, fake_model,
                               mixed_test_folder)
    predict_folder(qtbot, widget)
    choose(qtbot, widget, "gray")
    viewer.mouse_over_canvas = True
    viewer.cursor.position = (20.0, 20.0)
    viewer.update_status_from_cursor()  # the pointer resting over the canvas
    assert viewer.status["layer_name"] == "gray nuclei (predicted)"
    # gray and deep share the reused layers (both one plane of gray): only their names
    # and data change under the resting pointer.
    choose(qtbot, widget, "deep")
    assert viewer.status["layer_name"] == "deep nuclei (predicted)"
    labels = widget.predict_tab.layers.labels_layer
    assert viewer.status["value"].startswith(str(int(labels.data[20, 20])))
    assert np.array_equal(labels.data, widget.session.images["deep"].labels)
