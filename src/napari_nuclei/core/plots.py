"""Pictures without Qt: the training plot (shared by the widget and the demo) and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path

PREDICTION_COLOUR = (255, 220, 0)  # yellow outlines: predicted nuclei
TRUTH_COLOUR = (0, 200, 255)  # cyan outlines: ground truth

_LOSS_NAMES = {"loss_cls": "classification", "loss_box_reg": "box regression",
               "loss_mask": "mask", "loss_rpn_cls": "RPN objectness", "loss_rpn_loc": "RPN box"}


def latest_per_iteration(reports) -> list:
    """One report per iteration (a later line for the same iteration adds validation)."""
    return list({r.iteration: r for r in reports}.values())


def draw_training(figure, reports, text_colour: str = "black") -> None:
    """Draw losses, learning rate and validation AP of a run onto a matplotlib figure.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        Cleared and redrawn (the widget's canvas figure, or a fresh one).
    reports : list of TrainReport
        In iteration order (as read from ``metrics.jsonl``).
    text_colour : str
        Colour of labels and ticks (the widget matches napari's theme).
    """
    figure.clear()
    loss_axes = figure.add_subplot(2, 1, 1)
    lr_axes = figure.add_subplot(2, 1, 2, sharex=loss_axes)
    reports = latest_per_iteration(reports)
    iterations = [r.iteration for r in reports]
    if reports:
        loss_axes.plot(iterations, [r.total_loss for r in reports], color="#d62728",
                       linewidth=2, label="total")
        for key, name in _LOSS_NAMES.items():
            values = [r.losses.get(key, np.nan) for r in reports]
            if not np.all(np.isnan(values)):
                loss_axes.plot(iterations, values, linewidth=1, label=name)
        lr_axes.plot(iterations, [r.lr for r in reports], color="#7f7f7f", label="learning rate")
        evaluated = [r for r in reports if r.val_metrics]
        if evaluated:
            ap_axes = lr_axes.twinx()
            ap_axes.plot([r.iteration for r in evaluated],
                         [r.val_metrics.get("AP", np.nan) for r in evaluated], "o-",
                         color="#2ca02c", label="validation mask AP")
            ap_axes.set_ylabel("val mask AP", color=text_colour)
            ap_axes.tick_params(colors=text_colour)
            ap_axes.legend(loc="upper right", fontsize="small")
        loss_axes.legend(loc="upper right", fontsize="small", ncol=2)
        lr_axes.legend(loc="upper left", fontsize="small")
    loss_axes.set_ylabel("loss", color=text_colour)
    lr_axes.set_ylabel("learning rate", color=text_colour)
    lr_axes.set_xlabel("iteration", color=text_colour)
    title = f"iteration {iterations[-1]} of {reports[-1].max_iter}" if reports else "no data"
    loss_axes.set_title(title, color=text_colour)
    for axes in (loss_axes, lr_axes):
        axes.tick_params(colors=text_colour)
        axes.patch.set_alpha(0.0)
    figure.tight_layout()


def save_training_plot(reports, path: str | Path) -> Path:
    """Save the training plot of ``reports`` as a PNG (written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6), dpi=100)
    FigureCanvasAgg(figure)
    draw_training(figure, reports)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def outlines(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels on the border of each labelled nucleus."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    return edge & (labels > 0)


def overlay(image: np.ndarray, predicted: np.ndarray, truth: np.ndarray | None = None):
    """An RGB picture of an image with predicted (and true) nuclei outlined.

    Parameters
    ----------
    image : numpy.ndarray
        Grayscale or RGB, any bit depth.
    predicted : numpy.ndarray
        Label image of the prediction (yellow outlines).
    truth : numpy.ndarray, optional
        Label image of the ground truth (cyan outlines).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    from .normalize import to_uint8

    rgb = to_uint8(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = rgb.copy()
    if truth is not None:
        rgb[outlines(truth)] = TRUTH_COLOUR
    rgb[outlines(predicted)] = PREDICTION_COLOUR
    return rgb


def save_rgb_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as PNG atomically."""
    import cv2

    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", rgb[:, :, ::-1])
        if not ok:
            raise OSError(f"could not encode {path}")
        tmp.write_bytes(data.tobytes())
    return Path(path)
