"""What the dock hands in: the test folder's submission and its scores (no Qt).

Each image's entries are its corrections if any, else its prediction at the threshold it
is shown at, with each nucleus' class, so that the dock and ``napari-nuclei predict`` give
the same file for the same model and threshold.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from ..core.nucleus_classes import ClassSet
from .actions import ImageSnapshot, snapshot
from .model import Session


def images_snapshot(session: Session) -> list[ImageSnapshot]:
    """Every predicted image, copied for a worker."""
    return [snapshot(image) for image in session.images.values()]


def image_entries(image_id: int, image: ImageSnapshot) -> list[dict]:
    """Submission entries of an image: its corrections if any, else the prediction at
    the threshold it was shown at (so the same model and threshold give the same file
    as ``napari-nuclei predict``)."""
    from ..core.export import image_entries as entries_of

    return entries_of(image_id, image.prediction, image.score_thresh,
                      image.labels if image.edited else None, image.scores,
                      classes=image.class_set, label_classes=image.label_classes)


def test_folder_submission(test_dir: Path, images: list[ImageSnapshot],
                           test_ids: Path | None = None):
    """Entries for every predicted image of the test folder.

    Returns
    -------
    tuple
        ``(entries, image sizes by id, names of test images not predicted)``.

    Raises
    ------
    InputError
        When the images were predicted by models of different classes: one file
        cannot hand in both.
    """
    entries, sizes, missing, _ = _test_submission(test_dir, images, test_ids)
    return entries, sizes, missing


def _test_submission(test_dir: Path, images: list[ImageSnapshot], test_ids=None):
    from ..core.dataset import open_dataset
    from ..core.submission import image_ids_by_name

    dataset = open_dataset(test_dir)
    ids = image_ids_by_name(dataset, test_ids)
    by_name = {image.name: image for image in images}
    handed = [by_name[r.name] for r in dataset.records if r.name in by_name]
    sets = {image.class_set for image in handed}
    if len(sets) > 1:
        raise InputError(test_dir, "its images were predicted by models of different "
                         "classes; predict them again with one model")
    entries, sizes, missing = [], {}, []
    for record in dataset.records:
        image = by_name.get(record.name)
        if image is None:
            missing.append(record.name)
            continue
        image_id = ids[Path(record.file_name).name]
        sizes[image_id] = (image.prediction.height, image.prediction.width)
        entries += image_entries(image_id, image)
    return entries, sizes, missing, (sets.pop() if sets else ClassSet.default())


def write_test_submission(path: Path, test_dir: Path, images: list[ImageSnapshot]) -> str:
    """Validate and write the submission of the test folder (each nucleus' category its
    class, as corrected); returns a one-line summary."""
    from ..core.submission import write_submission

    entries, sizes, missing, classes = _test_submission(test_dir, images)
    write_submission(path, entries, sizes, classes.ids)
    note = f"; not predicted yet: {', '.join(missing)}" if missing else ""
    return f"Wrote {path}: {len(entries)} nuclei in {len(sizes)} images{note}"


def evaluate_test_folder(test_dir: Path, gt_dir: Path, images: list[ImageSnapshot]) -> dict:
    """Score the predictions (with corrections) of the test folder against ground truth."""
    from ..core.ground_truth import load_ground_truth
    from ..core.metrics import evaluate

    entries, _, _, classes = _test_submission(test_dir, images)
    ids = test_dir / "test_img_ids.json"
    truth = load_ground_truth(gt_dir, ids if ids.is_file() else None)
    # Ground truth of several classes scores the model's classes: they must be its own.
    known = {c["id"]: c["name"] for c in truth.get("categories") or []}
    if len(known) > 1:
        foreign = [c.name for c in classes if known.get(c.id, "").casefold()
                   != c.name.casefold()]
        if foreign:
            raise InputError(gt_dir, f"its classes ({', '.join(known.values())}) are not the "
                             f"model's ({', '.join(classes.names)}): they cannot be scored "
                             "against each other")
    return evaluate(truth, entries)


def scores_text(result: dict) -> str:
    """The scores of :func:`evaluate_test_folder` as the dock shows them: one line overall
    and, with classes, one per class and mPQ / bPQ."""
    o = result["overall"]
    lines = [f"AP {o['AP']:.3f} · AP50 {o['AP50']:.3f} · AJI {o['AJI']:.3f} · "
             f"F1 {o['F1']:.3f} ({o['gt_nuclei']} true nuclei, {o['predicted_nuclei']} "
             "predicted)"]

    def shown(value) -> str:
        return "-" if value is None else f"{value:.3f}"

    for name, scores in o.get("per_class", {}).items():
        lines.append(f"{name}: AP {shown(scores['AP'])} · AP50 {shown(scores['AP50'])} · "
                     f"PQ {shown(scores['PQ'])} · F_c {shown(scores['F_c'])} "
                     f"({scores['gt_nuclei']} true, {scores['predicted_nuclei']} predicted)")
    if "mPQ" in o:
        lines.append(f"mPQ {shown(o['mPQ'])} · bPQ {shown(o['bPQ'])} · class accuracy "
                     f"{shown(o['class_accuracy'])}")
    return "\n".join(lines)
