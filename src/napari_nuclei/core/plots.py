"""Pictures without Qt: the training plot (shared by the widget and the demo) and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path

PREDICTION_COLOUR = (255, 220, 0)  # yellow outlines: predicted nuclei
TRUTH_COLOUR = (0, 200, 255)  # cyan outlines: ground truth

_LOSS_NAMES = {"loss_cls": "classification", "loss_box_reg": "box regression",
               "loss_mask": "mask", "loss_rpn_cls": "RPN objectness", "loss_rpn_loc": "RPN box"}
# One colour per curve, none repeated (matplotlib's cycle would give a term the total's
# red), each seen on napari's dark and light themes alike.
CURVE_COLOURS = {"total": "#d62728", "loss_cls": "#1f77b4", "loss_box_reg": "#ff7f0e",
                 "loss_mask": "#9467bd", "loss_rpn_cls": "#17becf", "loss_rpn_loc": "#e377c2",
                 "lr": "#7f7f7f", "ap": "#2ca02c"}
# Per-class validation AP: colours none of the curves above uses.
CLASS_CURVE_COLOURS = ("#8c564b", "#bcbd22", "#393b79", "#ad494a", "#637939", "#7b4173")
LEGEND_POINTS = 9  # legend text size: readable in a narrow dock


def latest_per_iteration(reports) -> list:
    """One report per iteration (a later line for the same iteration adds validation)."""
    return list({r.iteration: r for r in reports}.values())


class TrainingPlot:
    """Losses, learning rate and validation AP of a run on a matplotlib figure.

    The axes and lines are made once; :meth:`update` only replaces their data, so a live
    plot redraws in a few tens of milliseconds.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to draw on (the widget's canvas figure, or a fresh one).
    text_colour : str
        Colour of labels and ticks (the widget matches napari's theme).
    """

    def __init__(self, figure, text_colour: str = "black"):
        self.figure = figure
        figure.clear()
        # The layout makes room for the labels and the legends beside the axes, on screen
        # and in a saved picture alike (fixed margins cut the x-axis label off).
        figure.set_layout_engine("constrained")
        self.loss_axes = figure.add_subplot(2, 1, 1)
        self.lr_axes = figure.add_subplot(2, 1, 2, sharex=self.loss_axes)
        self.ap_axes = self.lr_axes.twinx()
        self.total = self.loss_axes.plot([], [], color=CURVE_COLOURS["total"], linewidth=2,
                                         label="total")[0]
        self.terms = {key: self.loss_axes.plot([], [], color=CURVE_COLOURS[key], linewidth=1,
                                               label=name)[0]
                      for key, name in _LOSS_NAMES.items()}
        self.lr = self.lr_axes.plot([], [], color=CURVE_COLOURS["lr"],
                                    label="learning rate")[0]
        self.ap = self.ap_axes.plot([], [], "o-", color=CURVE_COLOURS["ap"],
                                    label="validation mask AP")[0]
        # Beside the loss axes, where no curve can pass: over them, it hid the total loss.
        self.loss_legend = self.loss_axes.legend(
            loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
            fontsize=LEGEND_POINTS, frameon=False, handlelength=1.2)
        # Above its axes, where no curve can pass either.
        self.lr_legend = self.lr_axes.legend(
            handles=[self.lr, self.ap], loc="lower left", fontsize=LEGEND_POINTS,
            frameon=False, ncol=2, bbox_to_anchor=(0.0, 1.0), borderaxespad=0.2,
            handlelength=1.2)
        self.loss_axes.set_ylabel("loss")
        self.lr_axes.set_ylabel("learning rate")
        self.ap_axes.set_ylabel("val mask AP")
        self.lr_axes.set_xlabel("iteration")
        self.class_lines: dict = {}  # each class's validation AP, once a report has one
        self._legend_changed = False
        self._text_colour = text_colour
        self.title = self.loss_axes.set_title("no data")
        for axes in (self.loss_axes, self.lr_axes, self.ap_axes):
            axes.patch.set_alpha(0.0)
        self.set_text_colour(text_colour)

    def set_text_colour(self, colour: str) -> None:
        """Colour the ticks, axis labels, title and legend text (napari's theme)."""
        self._text_colour = colour
        for axes in (self.loss_axes, self.lr_axes, self.ap_axes):
            axes.tick_params(colors=colour)
            for label in (axes.xaxis.label, axes.yaxis.label):
                label.set_color(colour)
        for legend in (self.loss_legend, self.lr_legend):
            for text in legend.get_texts():
                text.set_color(colour)
        self.title.set_color(colour)

    @property
    def moving_artists(self) -> list:
        """What changes with each report: the lines and the title."""
        return [self.total, *self.terms.values(), self.lr, self.ap,
                *self.class_lines.values(), self.title]

    def set_data(self, reports) -> None:
        """Give the lines and the title the data of ``reports`` (limits unchanged)."""
        reports = latest_per_iteration(reports)
        iterations = [r.iteration for r in reports]
        self.total.set_data(iterations, [r.total_loss for r in reports])
        for key, line in self.terms.items():
            line.set_data(iterations, [r.losses.get(key, np.nan) for r in reports])
        self.lr.set_data(iterations, [r.lr for r in reports])
        evaluated = [r for r in reports if r.val_metrics]
        self.ap.set_data([r.iteration for r in evaluated],
                         [r.val_metrics.get("AP", np.nan) for r in evaluated])
        self._set_class_data(evaluated)
        self.title.set_text(f"iteration {iterations[-1]} of {reports[-1].max_iter}"
                            if reports else "no data")

    def _set_class_data(self, evaluated) -> None:
        """One dashed line per class's validation AP (runs with several classes)."""
        from .training.reports import class_aps

        names = list(dict.fromkeys(name for r in evaluated for name in class_aps(r.val_metrics)))
        added = [name for name in names if name not in self.class_lines]
        for name in added:
            colour = CLASS_CURVE_COLOURS[len(self.class_lines) % len(CLASS_CURVE_COLOURS)]
            self.class_lines[name] = self.ap_axes.plot([], [], "o--", color=colour,
                                                       markersize=3, linewidth=1,
                                                       label=f"AP {name}")[0]
            # Drawn over the saved axes like the other curves (a live plot blits them).
            self.class_lines[name].set_animated(self.total.get_animated())
        for name, line in self.class_lines.items():
            line.set_data([r.iteration for r in evaluated],
                          [class_aps(r.val_metrics).get(name, np.nan) for r in evaluated])
        if added:
            self._legend_changed = True
            self.lr_legend.remove()
            self.lr_legend = self.lr_axes.legend(
                handles=[self.lr, self.ap, *self.class_lines.values()], loc="lower left",
                fontsize=LEGEND_POINTS, frameon=False, ncol=2, bbox_to_anchor=(0.0, 1.0),
                borderaxespad=0.2, handlelength=1.2)
            self.set_text_colour(self._text_colour)

    def _tops(self, reports) -> tuple[float, float, float]:
        """Largest loss, learning rate and validation AP in ``reports``."""
        losses = [r.total_loss for r in reports] + [
            v for r in reports for v in r.losses.values()]
        finite = [v for v in losses if np.isfinite(v)] or [1.0]
        from .training.reports import class_aps

        aps = [value for r in reports if r.val_metrics
               for value in (r.val_metrics.get("AP", 0.0), *class_aps(r.val_metrics).values())]
        return max(finite), max([r.lr for r in reports] or [1e-3]), max(aps or [0.0])

    def fit_limits(self, reports, headroom: float = 1.05, lr_top: float | None = None) -> None:
        """Axes limits covering ``reports``, with ``headroom`` above the largest values
        (a live plot leaves room to grow, so it seldom has to redraw its axes).

        ``lr_top``, the schedule's base learning rate when known, fixes the learning-rate
        axis from the start (warm-up would otherwise keep outgrowing it)."""
        top_loss, top_lr, top_ap = self._tops(reports)
        top_lr = max(top_lr, lr_top or 0.0)
        max_iter = reports[-1].max_iter if reports else 1
        self.loss_axes.set_xlim(0, max_iter)
        self.loss_axes.set_ylim(0, top_loss * headroom)
        self.lr_axes.set_ylim(0, top_lr * headroom)
        self.ap_axes.set_ylim(0, max(0.05, top_ap) * max(headroom, 1.15))

    def fits(self, reports) -> bool:
        """Whether the current limits show all of ``reports`` (and no class's curve was
        added since the last full drawing, which changes the legend)."""
        top_loss, top_lr, top_ap = self._tops(reports)
        legend_changed, self._legend_changed = self._legend_changed, False
        return (not legend_changed and top_loss <= self.loss_axes.get_ylim()[1]
                and top_lr <= self.lr_axes.get_ylim()[1]
                and top_ap <= self.ap_axes.get_ylim()[1]
                and (not reports or reports[-1].max_iter == self.loss_axes.get_xlim()[1]))

    def update(self, reports) -> None:
        """Show ``reports`` (in iteration order, as read from ``metrics.jsonl``)."""
        self.set_data(reports)
        self.fit_limits(latest_per_iteration(reports))


def draw_training(figure, reports, text_colour: str = "black") -> TrainingPlot:
    """Draw a run's training plot onto ``figure`` (see :class:`TrainingPlot`)."""
    plot = TrainingPlot(figure, text_colour)
    plot.update(reports)
    return plot


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


def class_overlay(image: np.ndarray, labels: np.ndarray, label_classes: dict[int, int],
                  classes) -> np.ndarray:
    """An RGB picture of an image with each nucleus tinted and outlined in its class's
    colour (``label_classes``: class index per label value; ``classes``: a ClassSet).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    """
    from .normalize import to_uint8

    rgb = to_uint8(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = rgb.astype(np.float32)
    palette = np.zeros((int(labels.max(initial=0)) + 1, 3), np.float32)
    for label, index in label_classes.items():
        if 0 < label < len(palette):
            palette[label] = classes.classes[index].color
    inside = labels > 0
    rgb[inside] = 0.55 * rgb[inside] + 0.45 * palette[labels[inside]]
    edges = outlines(labels)
    rgb[edges] = palette[labels[edges]]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def enlarged(rgb: np.ndarray, min_side: int = 768) -> np.ndarray:
    """Small pictures scaled up by a whole factor (nearest neighbour), to be seen."""
    factor = max(1, -(-min_side // max(rgb.shape[:2])))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1) if factor > 1 else rgb


def save_rgb_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as PNG atomically."""
    import cv2

    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", rgb[:, :, ::-1])
        if not ok:
            raise OSError(f"could not encode {path}")
        tmp.write_bytes(data.tobytes())
    return Path(path)
