"""Where the Data section's files go (no Qt)."""

from __future__ import annotations

from pathlib import Path

COCO_JSON_NAME = "annotations.json"


def coco_json_target(dataset_root: Path | None, output_dir: Path | None) -> Path:
    """Where *Save as COCO JSON…* offers to write the checked training data.

    The file names in the JSON are relative to the dataset's root, and a COCO JSON finds
    its images relative to its own folder: saved into the dataset's root it opens again
    (File ▸ Open, or as training data) without naming an image folder. Without a
    dataset root the session's output folder is offered, then the home folder; never
    the folder napari happened to be started from.

    Parameters
    ----------
    dataset_root : Path or None
        The root of the dataset checked (``Dataset.root``).
    output_dir : Path or None
        The session's output folder.

    Returns
    -------
    Path
        A file path for the save dialog to start at.
    """
    for folder in (dataset_root, output_dir):
        if folder is not None and Path(folder).is_dir():
            return Path(folder) / COCO_JSON_NAME
    return Path.home() / COCO_JSON_NAME
