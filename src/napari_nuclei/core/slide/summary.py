"""The cohort summary of ``predict-slide``: one CSV row per slide of an output folder."""

from __future__ import annotations

import csv
from pathlib import Path

from ..atomic import atomic_path
from .job import SlideResult

SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS = ("slide", "output", "tissue_mm2", "tiles", "tiles_predicted",
                   "tiles_skipped_share", "nuclei", "wider_than_overlap", "seconds")


def write_summary(path: Path, results: list[SlideResult]) -> Path:
    """The cohort summary: one CSV row per slide, and with a model of several classes a
    ``nuclei_<class>`` column per class."""
    names = list(dict.fromkeys(name for r in results for name in r.nuclei_per_class))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*SUMMARY_COLUMNS, *(f"nuclei_{name}" for name in names)])
            for r in results:
                writer.writerow([r.slide, str(r.out_dir),
                                 "" if r.tissue_mm2 is None else f"{r.tissue_mm2:.4f}",
                                 r.tiles, r.predicted, f"{r.skipped_share:.4f}", r.nuclei,
                                 r.wider_than_overlap, r.seconds,
                                 *(r.nuclei_per_class.get(name, "") for name in names)])
    return path
