"""Find the images and annotations of a dataset in any of the supported layouts.

Layouts
-------
``dsb``
    Data Science Bowl training set: ``<root>/train/<id>/images/<id>.png`` and
    ``<root>/train/<id>/masks/*.png`` (one binary PNG per nucleus). ``<root>`` may also
    be the ``train`` folder itself, or a single ``<id>`` folder. With nucleus classes,
    each class has its own folder: ``masks/<class>/*.png``.
``test``
    A folder of images with ``test_img_ids.json``: ``[{"id", "file_name", "height",
    "width"}]``. Image ids come from that file.
``labels``
    A folder of images with one instance label image each: ``<name>_labels.tif`` (or
    ``.png``) beside ``<name>.png``, or ``labels/<name>.tif`` (or ``<name>_labels.*``).
    With nucleus classes, ``<name>_classes.csv`` beside the label image gives each label
    its class (``label,class`` columns).
``coco``
    A COCO instances JSON; images are found relative to an image root (by default the
    JSON's folder). Its ``categories`` are the nucleus classes (any ids and names).
``geojson``
    A folder of images with nuclei outlined in QuPath: ``<name>.geojson`` beside
    ``<name>.png`` (QuPath's *Export objects as GeoJSON*: detections, and annotations
    with a classification; each ``classification`` a nucleus class).
``images``
    A plain folder of images without annotations.

Opening a dataset lists files, checks every JSON entry (:mod:`.validate.schemas`), keeps
file names inside the dataset folder (symbolic links may lead elsewhere inside it, never
out of it, nowhere or round in a loop) and compares declared image sizes with the image
headers; pixels are read (and validated) by the conversion job, which reports problems
one file at a time.

Every dataset has a :class:`~.nucleus_classes.ClassSet`: the one default class unless the
layout names classes. Records carry the COCO category id of each nucleus source, so that
the conversion (run in worker processes) needs nothing but the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import DatasetError
from .image_io import IMAGE_SUFFIXES, image_size, is_image_file, list_image_files
from .nucleus_classes import ClassSet, merged_names
from .qupath_input import geojson_beside
from .validate import in_file, load_json
from .validate.classes import class_name
from .validate.paths import check_links, inside
from .validate.schemas import check_test_ids

TEST_IDS_NAME = "test_img_ids.json"
LABEL_SUFFIX = "_labels"
CLASS_TABLE_SUFFIX = "_classes.csv"
_LABEL_FILE_SUFFIXES = (".tif", ".tiff", ".png")
_IGNORED_DIRS = ("__MACOSX",)


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset and where its nuclei are described.

    Attributes
    ----------
    image_id : int
        COCO image id (deterministic: sorted names, or the test ids file).
    name : str
        Short name (the DSB id or the file stem), used for layers and outputs.
    path : Path
        The image file.
    file_name : str
        ``path`` relative to the dataset root, with forward slashes.
    mask_paths : tuple of Path
        One file per nucleus (``dsb`` layout), sorted by name.
    label_path : Path or None
        Instance label image (``labels`` layout).
    annotations : tuple of dict
        COCO annotations of this image (``coco`` layout).
    height, width : int or None
        Size declared by the dataset (test ids or COCO), checked against the pixels.
    mask_categories : tuple of int
        COCO category id of each mask file (``dsb`` layout with class folders); empty:
        every nucleus is of the dataset's one class.
    label_categories : tuple of (int, int)
        ``(label, category id)`` pairs from the image's class table (``labels`` layout);
        empty: every nucleus is of the dataset's one class.
    class_table : Path or None
        The class table those pairs were read from (named in errors).
    geojson_path : Path or None
        QuPath GeoJSON outlining the image's nuclei (``geojson`` layout).
    geojson_categories : tuple of int
        COCO category id of each nucleus of that file, in file order; empty: every
        nucleus is of the dataset's one class.
    """

    image_id: int
    name: str
    path: Path
    file_name: str
    mask_paths: tuple[Path, ...] = ()
    label_path: Path | None = None
    annotations: tuple[dict, ...] = ()
    height: int | None = None
    width: int | None = None
    mask_categories: tuple[int, ...] = ()
    label_categories: tuple[tuple[int, int], ...] = ()
    class_table: Path | None = None
    geojson_path: Path | None = None
    geojson_categories: tuple[int, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """Images of a dataset in one layout, with the root their file names are relative to,
    and the nucleus classes its annotations use."""

    root: Path
    layout: str
    records: tuple[ImageRecord, ...]
    warnings: tuple[str, ...] = field(default=())
    classes: ClassSet = field(default_factory=ClassSet.default)

    def __post_init__(self):
        # Outputs (labels, tables, predictions, corrections) are named after each image:
        # two images of one name would write over each other's and mix in hand-ins.
        seen: dict[str, ImageRecord] = {}
        for record in self.records:
            other = seen.setdefault(record.name, record)
            if other is not record:
                raise DatasetError(self.root, f"holds two images named {record.name!r} "
                                   f"({other.file_name} and {record.file_name}): each "
                                   "image's outputs are named after it, so names must "
                                   "differ; rename one")

    @property
    def annotated(self) -> bool:
        """True when the layout carries nuclei annotations."""
        return self.layout in ("dsb", "labels", "coco", "geojson")

    def __len__(self) -> int:
        return len(self.records)


def open_dataset(path: str | Path, image_root: str | Path | None = None) -> Dataset:
    """Detect the layout of ``path`` and list its images and annotation files.

    Parameters
    ----------
    path : str or Path
        A dataset folder, a single DSB sample folder, ``test_img_ids.json``, a COCO
        JSON file or a single image.
    image_root : str or Path, optional
        For a COCO JSON: the folder its ``file_name`` entries are relative to.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        When the folder matches no layout or its structure is broken.
    """
    from .dataset_layouts import open_coco_layout, open_geojson_layout, open_labels_layout

    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DatasetError(path, "no such file or folder")
    if path.is_file():
        if path.name == TEST_IDS_NAME:
            return _open_test(path.parent)
        if path.suffix.lower() == ".json":
            return open_coco_layout(path, Path(image_root) if image_root else path.parent)
        if is_image_file(path):
            return Dataset(path.parent, "images", (_plain_record(1, path, path.parent),))
        raise DatasetError(path, "not a dataset folder, a COCO JSON or an image")
    if _followed(path, path / "train").is_dir():
        return _open_dsb(path / "train", root=path)
    if (path / "images").is_dir():
        return _open_dsb_samples(path.parent, [path], root=path.parent)
    if (path / TEST_IDS_NAME).is_file():
        return _open_test(path)
    subdirs = _sample_dirs(path)
    if any((d / "images").is_dir() or (d / "masks").is_dir() for d in subdirs):
        return _open_dsb(path, root=path)
    if any(geojson_beside(p).is_file() for p in list_image_files(path)):
        return open_geojson_layout(path)
    if (path / "labels").is_dir() or any(
        p.stem.endswith(LABEL_SUFFIX) for p in list_image_files(path)
    ):
        return open_labels_layout(path)
    images = _image_files(path, path)
    if images:
        records = tuple(_plain_record(i, p, path) for i, p in enumerate(images, start=1))
        return Dataset(path, "images", records)
    raise DatasetError(
        path,
        "no images found: expected train/<id>/images + masks, a folder with "
        f"{TEST_IDS_NAME}, images with label images, or a COCO JSON",
    )


def _followed(root: Path, path: Path) -> Path:
    """``path`` under ``root``, refused when it is a symbolic link leading outside
    ``root``, nowhere or round in a loop (such a file would otherwise be skipped as
    missing, or read from outside the dataset)."""
    return check_links(root, path) if path.is_symlink() else path


def _sample_dirs(folder: Path, root: Path | None = None) -> list[Path]:
    """The sample folders of ``folder``; with ``root``, links among them are checked."""
    entries = [d for d in folder.iterdir()
               if not d.name.startswith(".") and d.name not in _IGNORED_DIRS]
    if root is not None:
        entries = [_followed(root, d) for d in entries]
    return sorted((d for d in entries if d.is_dir()), key=lambda d: d.name)


def _image_files(folder: Path, root: Path) -> list[Path]:
    """The image files of ``folder``, links among them checked (one that loops or
    dangles would otherwise be left out without a word)."""
    for entry in folder.iterdir():
        if not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_SUFFIXES:
            _followed(root, entry)
    return list_image_files(folder)


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _plain_record(image_id: int, path: Path, root: Path) -> ImageRecord:
    return ImageRecord(image_id, path.stem, path, _relative(path, root))


def _open_dsb(train_dir: Path, root: Path) -> Dataset:
    samples = _sample_dirs(train_dir, root)
    if not samples:
        raise DatasetError(train_dir, "no sample folders (<id>/images/<id>.png) found")
    return _open_dsb_samples(train_dir, samples, root)


def _open_dsb_samples(train_dir: Path, samples: list[Path], root: Path) -> Dataset:
    found = []
    warnings = []
    for image_id, sample in enumerate(samples, start=1):
        images_dir = _followed(root, sample / "images")
        if not images_dir.is_dir():
            raise DatasetError(sample, "missing images/ folder")
        image_path = _find_sample_image(sample.name, images_dir, root)
        masks_dir = _followed(root, sample / "masks")
        if masks_dir.is_dir():
            masks = _sample_masks(masks_dir, root)
        else:
            masks = []
            warnings.append(f"{sample}: no masks/ folder, image counted as having no nuclei")
        found.append((image_id, sample, image_path, masks))
    classified = [sample for _, sample, _, masks in found
                  if any(name is not None for _, name in masks)]
    if not classified:
        records = tuple(
            ImageRecord(image_id, sample.name, image_path, _relative(image_path, root),
                        mask_paths=tuple(path for path, _ in masks))
            for image_id, sample, image_path, masks in found)
        return Dataset(root, "dsb", records, tuple(warnings))
    classes = ClassSet.from_names(merged_names(
        [[name for _, name in masks] for _, _, _, masks in found]))
    records = []
    for image_id, sample, image_path, masks in found:
        if masks and any(name is None for _, name in masks):
            raise DatasetError(sample / "masks", "holds mask files outside class folders, "
                               f"while {classified[0].name}/masks has class folders: put "
                               "every mask in masks/<class>/")
        records.append(ImageRecord(
            image_id, sample.name, image_path, _relative(image_path, root),
            mask_paths=tuple(path for path, _ in masks),
            mask_categories=tuple(classes.classes[classes.index_of_name(name)].id
                                  for _, name in masks)))
    return Dataset(root, "dsb", tuple(records), tuple(warnings), classes)


def _sample_masks(masks_dir: Path, root: Path) -> list[tuple[Path, str | None]]:
    """A sample's mask files, each with its class folder's name (None for a file
    directly in ``masks/``)."""
    masks: list[tuple[Path, str | None]] = [(p, None) for p in _image_files(masks_dir, root)]
    for folder in _sample_dirs(masks_dir, root):
        with in_file(folder, "class folder"):
            name = class_name(folder.name, "name")
        masks += [(p, name) for p in _image_files(folder, root)]
    if any(name is None for _, name in masks) and any(name for _, name in masks):
        raise DatasetError(masks_dir, "mixes mask files and class folders: put every mask "
                           "in masks/<class>/")
    return masks


def _find_sample_image(sample_id: str, images_dir: Path, root: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        candidate = _followed(root, images_dir / f"{sample_id}{suffix}")
        if candidate.is_file():
            return candidate
    raise DatasetError(images_dir / f"{sample_id}.png", "image file missing for this id")


def _open_test(folder: Path) -> Dataset:
    ids_path = folder / TEST_IDS_NAME
    entries = read_test_ids(ids_path)
    records = []
    for number, entry in enumerate(entries):
        with in_file(ids_path, f"entry {number}"):
            image_path = inside(folder, entry["file_name"])
        if not image_path.is_file():
            raise DatasetError(ids_path, f"lists {entry['file_name']}, which is not in {folder}")
        check_declared_size(ids_path, f"entry {number}", image_path,
                            entry["height"], entry["width"])
        records.append(
            ImageRecord(
                entry["id"],
                image_path.stem,
                image_path,
                _relative(image_path, folder),
                height=entry["height"],
                width=entry["width"],
            )
        )
    listed = {entry["file_name"] for entry in entries}
    unlisted = [p.name for p in _image_files(folder, folder) if p.name not in listed]
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (" ..." if len(unlisted) > 5 else "")
        raise DatasetError(
            ids_path, f"does not list {len(unlisted)} image(s) of the folder: {shown}"
        )
    records.sort(key=lambda r: r.file_name)
    return Dataset(folder, "test", tuple(records))


def read_test_ids(ids_path: Path) -> list[dict]:
    """Read and check ``test_img_ids.json``: ``[{"id", "file_name", "height", "width"}]``."""
    return check_test_ids(load_json(ids_path), ids_path)


def check_declared_size(document: Path, where: str, image_path: Path,
                        height: int | None, width: int | None) -> tuple[int, int]:
    """Compare the size a document declares for an image with the image's own header.

    Returns
    -------
    tuple of int
        The image's real ``(height, width)``.
    """
    real = image_size(image_path)
    if height is not None and (height, width) != real:
        raise DatasetError(
            document,
            f"{where}: declares {image_path.name} as {height}x{width} (height x width) "
            f"but the image is {real[0]}x{real[1]}",
        )
    return real
