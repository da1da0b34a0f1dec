"""What a training run tells its caller (no torch import: the GUI and plots use these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

# A run yields notices among its reports; they are defined with the jobs, as every long
# job yields them.
from ..jobs import Notice as Notice
from ..validate import parse_json_line

METRICS_NAME = "metrics.jsonl"
# detectron2's evaluator names each class's mask AP "AP-<class name>".
CLASS_AP_PREFIX = "AP-"


@dataclass(frozen=True)
class TrainReport:
    """One training iteration, as reported after it finished.

    Attributes
    ----------
    iteration : int
        Iterations done so far (1-based: the first report has ``iteration == 1``).
    max_iter : int
        Iterations of the whole schedule.
    losses : dict of str to float
        Each loss term (``loss_cls``, ``loss_box_reg``, ``loss_mask``, ...).
    total_loss : float
        Their sum.
    lr : float
        Learning rate used for this iteration.
    seconds_per_iter : float
        Wall time of this iteration.
    data_time : float
        Of which waiting for data.
    eta_seconds : float
        Estimated time to the end of the schedule.
    val_metrics : dict of str to float
        Validation results when they were computed at this iteration (mask AP and
        friends, as fractions in [0, 1]), else empty.
    checkpoint : str
        File name of the checkpoint written at this iteration, if any.
    """

    iteration: int
    max_iter: int
    losses: dict[str, float]
    total_loss: float
    lr: float
    seconds_per_iter: float
    data_time: float
    eta_seconds: float
    val_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""

    def to_json(self) -> dict:
        """The report as a JSON-ready dict (one line of ``metrics.jsonl``)."""
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """How a run ended.

    Attributes
    ----------
    run_dir : Path
        The run folder.
    iteration : int
        Iterations done (equals ``max_iter`` when the schedule finished).
    max_iter : int
        Iterations of the schedule.
    stopped : bool
        True when stopped early; the run can be resumed.
    checkpoint : Path or None
        The latest checkpoint written.
    """

    run_dir: Path
    iteration: int
    max_iter: int
    stopped: bool
    checkpoint: Path | None


def read_metrics(run_dir: str | Path) -> list[TrainReport]:
    """The reports a run folder's ``metrics.jsonl`` holds, in order (empty if none).

    A line that does not parse (the last one, cut short when a run was killed mid-write)
    is skipped: the file is a log, and every other line stays usable.
    """
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return []
    reports = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                reports.append(TrainReport(**parse_json_line(line)))
            except (ValueError, TypeError, RecursionError):
                continue
    return reports


def checkpoint_rows(run_dir: str | Path, reports=None) -> list[tuple[Path, float | None]]:
    """``(checkpoint file, validation mask AP or None)`` for each checkpoint of a run.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    reports : list of TrainReport, optional
        Its reports (read from ``metrics.jsonl`` when not given).

    Returns
    -------
    list of tuple
        Oldest checkpoint first; ``model_final.pth`` last.
    """
    metrics = checkpoint_metrics(run_dir, reports)
    files = sorted(Path(run_dir).glob("model_*.pth"), key=lambda p: (p.name == "model_final.pth",
                                                                      p.name))
    return [(path, metrics.get(path.name, {}).get("AP")) for path in files]


def checkpoint_metrics(run_dir: str | Path, reports=None) -> dict[str, dict[str, float]]:
    """The validation results of each checkpoint that has some, by file name (mask AP,
    AP50, AP75 and, with several classes, ``AP-<class>``)."""
    reports = read_metrics(run_dir) if reports is None else reports
    found: dict[str, dict[str, float]] = {}
    for report in reports:
        if report.checkpoint and report.val_metrics:
            found[report.checkpoint] = report.val_metrics
        if report.iteration == report.max_iter and report.val_metrics:
            found["model_final.pth"] = report.val_metrics
    return found


def class_aps(val_metrics: dict[str, float]) -> dict[str, float]:
    """The per-class validation APs of one report, by class name (empty for one class)."""
    return {key[len(CLASS_AP_PREFIX):]: value for key, value in val_metrics.items()
            if key.startswith(CLASS_AP_PREFIX)}
