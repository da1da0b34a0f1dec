"""(Corrected) label images of a set of images to COCO instances JSON or a submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import write_json_atomic
from .coco import coco_document, make_annotation
from .dataset import Dataset
from .errors import DatasetError
from .label_files import HAND_MADE_SCORE, find_label_file, read_corrected, read_label_classes
from .labels import iter_label_rles
from .nucleus_classes import ClassSet, merged_names
from .submission import image_ids_by_name, submission_entries, write_submission


def _label_paths(labels: Path | list[Path], dataset: Dataset) -> dict[str, Path]:
    """Label file per image name (stem), from a folder or a list of files.

    Raises
    ------
    DatasetError
        For a folder or file that does not exist, a file that matches no image, or a
        folder holding no label image of any image of the dataset.
    """
    if isinstance(labels, Path) and labels.is_dir():
        found = {r.name: find_label_file(labels, r.name) for r in dataset.records}
        paths = {name: path for name, path in found.items() if path is not None}
        if not paths:
            raise DatasetError(labels, f"holds no label image of the images of {dataset.root} "
                               "(expected <image name>.tif or <image name>_labels.*)")
        return paths
    files = [labels] if isinstance(labels, Path) else list(labels)
    names = {r.name for r in dataset.records}
    by_stem = {}
    for path in files:
        if not path.is_file():
            raise DatasetError(path, "no such label image or folder")
        stem = path.stem[: -len("_labels")] if path.stem.endswith("_labels") else path.stem
        if stem not in names:
            raise DatasetError(path, f"matches no image of {dataset.root}")
        by_stem[stem] = path
    return by_stem


def label_image_entries(image_id: int, labels, scores: dict[int, float],
                        categories: dict[int, int] | None = None,
                        default_category: int = 1) -> list[dict]:
    """Submission entries of one label image, best score first.

    Parameters
    ----------
    image_id : int
        The image's id.
    labels : numpy.ndarray
        ``(H, W)`` label image (corrected by hand or not).
    scores : dict of int to float
        Score per label value; labels absent from it (drawn by hand) get 1.0.
    categories : dict of int to int, optional
        COCO category id per label value; labels absent from it get
        ``default_category``.
    default_category : int
        The category of labels no class was given to.

    Returns
    -------
    list of dict
    """
    import numpy as np

    values, rles = [], []
    for value, rle in iter_label_rles(labels):
        values.append(value)
        rles.append(rle)
    label_scores = [scores.get(v, HAND_MADE_SCORE) for v in values]
    label_categories = [(categories or {}).get(v, default_category) for v in values]
    order = np.argsort(-np.asarray(label_scores, dtype=float), kind="stable")
    return submission_entries(image_id, [rles[i] for i in order],
                              [label_scores[i] for i in order],
                              [label_categories[i] for i in order])


def image_entries(image_id: int, prediction, score_thresh: float, corrected=None,
                  scores: dict[int, float] | None = None, classes: ClassSet | None = None,
                  label_classes: dict[int, int] | None = None) -> list[dict]:
    """Submission entries of one image: the one way every command and the dock make them.

    Uncorrected, they are the nuclei shown at ``score_thresh`` (the resolved set of
    :meth:`~napari_nuclei.core.predict.instances.Prediction.above`: the same pixels as
    the label image, the table and the GeoJSON); corrected, the nuclei of the label
    image as it is now, each keeping its predicted score (1.0 when drawn by hand).

    Parameters
    ----------
    image_id : int
    prediction : Prediction
        What the network predicted.
    score_thresh : float
        The threshold the nuclei are shown at.
    corrected : numpy.ndarray, optional
        The label image once edited by hand.
    scores : dict of int to float, optional
        Predicted score per label value of ``corrected``.
    classes : ClassSet, optional
        The model's classes (the one default class unless given): each entry's
        ``category_id`` is its nucleus' class.
    label_classes : dict of int to int, optional
        Class index per label value of ``corrected`` (class 0 where absent).

    Returns
    -------
    list of dict
    """
    classes = classes or ClassSet.default()
    ids = np.asarray(classes.ids, np.int64)
    if corrected is not None:
        categories = {label: int(ids[index]) for label, index in (label_classes or {}).items()}
        return label_image_entries(image_id, corrected, scores or {}, categories,
                                   int(ids[0]))
    shown = prediction.above(score_thresh)
    return submission_entries(image_id, shown.rles(), shown.scores,
                              ids[shown.classes].tolist())


def export_labels(
    labels: Path | list[Path],
    dataset: Dataset,
    output: str | Path,
    submission: bool = False,
    test_ids: str | Path | None = None,
    classes: ClassSet | None = None,
) -> tuple[int, int, list[str]]:
    """Write the nuclei of label images as COCO instances JSON or as a submission.

    Parameters
    ----------
    labels : Path or list of Path
        A folder of label images (``<image name>.tif`` or ``<image name>_labels.*``, with
        an optional ``<name>.csv`` score table beside each) or the files themselves.
    dataset : Dataset
        The images the labels belong to.
    output : str or Path
        The JSON file (validated, written atomically).
    submission : bool
        Write the competition submission list instead of a COCO document.
    test_ids : str or Path, optional
        ``test_img_ids.json`` for the image ids (default: the one in the image folder,
        else the dataset's ids).
    classes : ClassSet, optional
        The classes of the run that predicted the labels, whose COCO ids the files use;
        by default the classes the tables name, numbered in the order of their names.

    Returns
    -------
    tuple
        ``(images written, nuclei written, image names without a label image)``.
    """
    from .image_io import image_size

    paths = _label_paths(labels, dataset)
    ids = image_ids_by_name(dataset, test_ids)
    # Classes from the tables' class columns (none: the one default class).
    named = {name: read_label_classes(path) for name, path in paths.items()}
    found = merged_names([t.values() for t in named.values()])
    if classes is None:
        classes = ClassSet.from_names(found)
    elif found:
        unknown = [n for n in found if n.casefold() not in {c.casefold() for c in classes.names}]
        if unknown:
            raise DatasetError(next(p for n, p in paths.items()
                                    if unknown[0] in named[n].values()).with_suffix(".csv"),
                               f"names the class {unknown[0]!r}, which the run does not have "
                               f"({', '.join(classes.names)})")
    images, annotations, entries, sizes, missing = [], [], [], {}, []
    for record in dataset.records:
        path = paths.get(record.name)
        if path is None:
            missing.append(record.name)
            continue
        height, width = image_size(record.path)
        label_image, table = read_corrected(path, height, width)
        categories = {label: classes.classes[classes.index_of_name(name)].id
                      for label, name in named[record.name].items()}
        _check_every_label_classed(path, label_image, categories, classes)
        image_id = ids[Path(record.file_name).name]
        sizes[image_id] = (height, width)
        images.append({"id": image_id, "file_name": record.file_name, "height": height,
                       "width": width})
        if submission:
            entries += label_image_entries(image_id, label_image, table, categories)
        else:
            annotations += [make_annotation(len(annotations) + 1, image_id, rle,
                                            categories.get(value, classes.ids[0]))
                            for value, rle in iter_label_rles(label_image)]
    if submission:
        write_submission(output, entries, sizes, classes.ids)
        return len(images), len(entries), missing
    write_json_atomic(output, coco_document(images, annotations, classes))
    return len(images), len(annotations), missing


def _check_every_label_classed(path: Path, labels: np.ndarray, categories: dict[int, int],
                               classes: ClassSet) -> None:
    """With classes, every nucleus needs one: a label drawn by hand outside the dock has
    no row in the table, and handing it in as some class would be a silent guess."""
    if classes.is_default:
        return
    values = np.unique(labels)
    missing = [int(v) for v in values[values > 0] if int(v) not in categories]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise DatasetError(path.with_suffix(".csv"), f"gives no class to label(s) {shown} "
                           f"of {path.name}: add a row (label,class) for each")
