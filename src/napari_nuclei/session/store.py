"""A session on disk: ``session.json``, ``predictions/<name>.npz`` and ``corrected/``.

With nucleus classes, ``predictions/<name>.csv`` gives each predicted nucleus its class
(``label,class``, label ``i + 1`` for nucleus ``i`` of the ``.npz``) and
``corrected/<name>.csv`` has a ``class`` column; both are read back through the class
table gate (:func:`~napari_nuclei.core.validate.classes.read_class_table`).

Everything is written atomically into the session's output folder, and read back
through the input gate (:mod:`napari_nuclei.core.validate.session`): JSON through its
guarded loader, ``.npz`` files without pickle and with every declared size checked
before anything is allocated. Session folders travel between people, so nothing in
them is trusted: names that are not plain file names, and files outside the folder or
reached through symbolic links, are refused both on reading and on writing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.atomic import atomic_path, write_json_atomic
from ..core.errors import DatasetError, InputError
from ..core.nucleus_classes import ClassSet
from ..core.predict.instances import Prediction
from ..core.validate.fields import InvalidValue
from ..core.validate.session import (
    FOLDER_FIELDS,
    SESSION_NAME,
    VERSION,
    SessionEntry,
    SlideEntry,
    check_session,
    plain_name,
    read_prediction_arrays,
    read_session_file,
)

PREDICTIONS_FOLDER = "predictions"
# What session.json says about one image or slide: the writer's records are the
# reader's entries.
SavedImage = SessionEntry
SavedSlide = SlideEntry


def save_prediction(path: Path, prediction: Prediction) -> Path:
    """Write a prediction's scores and mask crops (bit-packed) to an ``.npz`` file."""
    tops = np.array([c[0] for c in prediction.crops], np.int64)
    lefts = np.array([c[1] for c in prediction.crops], np.int64)
    shapes = np.array([c[2].shape for c in prediction.crops], np.int64).reshape(-1, 2)
    bits = np.packbits(np.concatenate([c[2].ravel() for c in prediction.crops])
                       if prediction.crops else np.zeros(0, bool))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, size=np.array([prediction.height, prediction.width]),
                            scores=prediction.scores, tops=tops, lefts=lefts, shapes=shapes,
                            bits=bits, hit_cap=np.array(prediction.hit_cap))
    return path


def load_prediction(path: Path, size: tuple[int, int] | None = None) -> Prediction:
    """Read a prediction written by :func:`save_prediction`.

    Parameters
    ----------
    path : Path
        The ``.npz`` file (a symbolic link is refused).
    size : tuple of int, optional
        ``(height, width)`` of the image it belongs to, when known: a prediction of
        another size is refused.

    Raises
    ------
    DatasetError
        Naming the file and what is wrong with it.
    """
    arrays = read_prediction_arrays(path, size)
    return Prediction(arrays.height, arrays.width, arrays.scores, arrays.crops,
                      arrays.hit_cap)


def save_prediction_classes(path: Path, prediction: Prediction, classes: ClassSet) -> Path:
    """Write the class of each nucleus of a prediction (``label,class``) beside its
    ``.npz``: the prediction file holds scores and masks only."""
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["label", "class"])
        for index, value in enumerate(prediction.classes.tolist()):
            writer.writerow([index + 1, classes.name_of(value)])
    return path


def load_prediction_classes(path: Path, prediction: Prediction, classes: ClassSet
                            ) -> Prediction:
    """The prediction with the classes its ``<name>.csv`` table gives (unchanged when
    there is no table: a one-class session).

    Raises
    ------
    InputError
        For a table that is a link, damaged, of other nuclei, or naming a class the
        model does not have.
    """
    from dataclasses import replace

    from ..core.validate.classes import read_class_table
    from .image_classes import indices_of_names

    if path.is_symlink():
        raise DatasetError(path, "is a symbolic link; session files must be real files")
    if not path.is_file():
        return prediction
    found = indices_of_names(classes, read_class_table(path), path)
    if sorted(found) != list(range(1, len(prediction) + 1)):
        raise DatasetError(path, f"gives classes to {len(found)} nuclei, not to the "
                           f"{len(prediction)} of its prediction")
    return replace(prediction, classes=np.array([found[i + 1] for i in range(len(found))],
                                                np.int64))


def session_target(folder: Path, subfolder: str, name: str, suffix: str) -> Path:
    """``folder/subfolder/<name><suffix>``: where a save writes an image's file.

    Raises
    ------
    InputError
        For a name that is not a plain file name, or a subfolder that is a symbolic
        link (it could lead anywhere): a save writes only inside its folder.
    """
    folder = Path(folder)
    try:
        plain_name(name, "image name")
    except InvalidValue as exc:
        raise InputError(folder, f"cannot save this image: {exc}") from None
    target = folder / subfolder
    if target.is_symlink():
        raise InputError(target, "is a symbolic link; a session is saved only inside its "
                         "own folder")
    return target / f"{name}{suffix}"


def write_session(folder: Path, fields: dict, images: list[SavedImage],
                  slides: list[SavedSlide] = ()) -> Path:
    """Write ``session.json``: folder fields, threshold, the images' files and the
    slides opened (their predicted regions' folders and the window being corrected).

    The document is checked by the same gate that reads it, so that a name that is not
    a plain file name, a file outside the folder or a threshold outside [0, 1] is
    refused here and nothing is written.

    Raises
    ------
    InputError
        Naming what the reader would refuse.
    """
    folder = Path(folder)
    path = folder / SESSION_NAME

    def rel(file):
        if file is None:
            return None
        try:
            return Path(file).relative_to(folder).as_posix()
        except ValueError:
            raise InputError(path, f"not written: {file} is outside the session "
                             "folder") from None

    document = {
        "version": VERSION,
        **{k: (str(fields[k]) if fields.get(k) else None) for k in FOLDER_FIELDS},
        "score_thresh": _plain_number(fields["score_thresh"]),
        "images": [{"name": i.name, "image_path": str(i.image_path) if i.image_path else None,
                    "score_thresh": _plain_number(i.score_thresh),
                    "prediction": rel(i.prediction), "labels": rel(i.labels)}
                   for i in images],
    }
    if slides:
        document["slides"] = [_slide_document(slide, rel) for slide in slides]
    check_session(document, path, folder, strict=True)
    return write_json_atomic(path, document, indent=2)


def _slide_document(slide: SavedSlide, rel) -> dict:
    def output(out_dir, region):
        return {"folder": rel(out_dir), "region": [int(v) for v in region]}

    return {"slide": str(slide.slide),
            "outputs": [output(*item) for item in slide.outputs],
            "window": output(*slide.window) if slide.window else None}


def _plain_number(value):
    # numpy scalars (a threshold taken from an array) are not JSON; the gate judges the rest.
    return float(value) if isinstance(value, np.floating | np.integer) else value


def read_session(folder: Path) -> tuple[dict, list[SavedImage], list[str]]:
    """Read ``session.json`` of an output folder.

    Returns
    -------
    tuple
        ``(fields, images, skipped)``: the folder fields and threshold, the sound
        image entries, and one line per damaged entry that was skipped (the slides:
        :func:`read_session_slides`).

    Raises
    ------
    InputError
        When the folder holds no session, or the file as a whole is not one.
    """
    checked = read_session_file(Path(folder))
    return checked.fields, list(checked.entries), list(checked.skipped)


def read_session_slides(folder: Path) -> tuple[dict, list[SavedImage], list[SavedSlide],
                                                list[str]]:
    """:func:`read_session` with the slides: ``(fields, images, slides, skipped)``."""
    checked = read_session_file(Path(folder))
    return (checked.fields, list(checked.entries), list(checked.slides),
            list(checked.skipped))
