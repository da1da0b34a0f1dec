"""One gate for every file a user hands in: JSON documents, images, score tables.

Every reader of user files goes through this package, so that a wrong type, an
impossible value, a path leaving its folder or a size that would exhaust memory is
refused with one line naming the file, the entry and the problem
(:class:`~napari_nuclei.core.errors.DatasetError`), before any library sees the data.

Modules
-------
``fields``
    Checks of single values (integers, numbers, texts, boxes) raising
    :class:`InvalidValue`; :func:`in_file` turns those into a ``DatasetError``.
``json_input``
    :func:`load_json`: the only JSON loader for user files (size and depth guard), and
    :func:`parse_json_line` for JSON-lines files.
``arrays``
    :func:`load_arrays`: the only NumPy file loader (no pickles; declared sizes checked
    from the headers before any data is read).
``limits``
    The largest image and JSON file accepted, raised by ``--max-pixels`` and
    ``--max-json-mb``.
``paths``
    File names from JSON documents that must stay inside their dataset folder.
``segmentation``
    COCO polygons and RLE (compressed and uncompressed) checked against the image size.
``image_header``
    Image sizes read from file headers, before any pixel is decoded.
``classes``
    Nucleus classes: COCO ``categories``, a run's class list, ``label,class`` tables.
``schemas``
    The file kinds: ``test_img_ids.json``, COCO instances, submissions, score tables.
``session``
    Saved dock sessions: ``session.json`` (:func:`read_session_file`, at most
    ``MAX_SESSION_IMAGES`` images, plain names, files inside the folder and reached
    through no link) and its predictions (:func:`read_prediction_arrays`).
``session_paths``, ``session_slides``
    A session's names and paths; its ``slides`` entries.
``prediction_arrays``
    A session's ``predictions/<name>.npz`` files, every declared size checked first.
"""

from .arrays import load_arrays
from .fields import InvalidValue, in_file
from .json_input import load_json, parse_json_line
from .limits import add_limit_options, apply_limit_options, check_pixels, max_pixels
from .prediction_arrays import read_prediction_arrays
from .session import MAX_SESSION_IMAGES, check_session, read_session_file

__all__ = [
    "MAX_SESSION_IMAGES",
    "InvalidValue",
    "add_limit_options",
    "apply_limit_options",
    "check_pixels",
    "check_session",
    "in_file",
    "load_arrays",
    "load_json",
    "max_pixels",
    "parse_json_line",
    "read_prediction_arrays",
    "read_session_file",
]
