"""Corrected images added to the training set: what would be written or replaced, then
the writing (no Qt).

Adding never deletes what the user made. An image whose name is free becomes a new
sample; one whose sample holds another image becomes ``<name>_corrected_<n>``; a sample
holding the same image (the image was opened from the training set, or added before) is
replaced only once the user agreed, and is then moved into the training folder's
``.replaced/<date>/``. Corrections added before and not edited since are left alone.

With nucleus classes, each nucleus goes into its class's folder (``masks/<class>/``), as
the data set reader expects them, so that the corrected classes are trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.atomic import staging_folder
from .actions import ImageSnapshot


@dataclass(frozen=True)
class Replacement:
    """A training sample that adding an image would replace.

    Attributes
    ----------
    image : str
        The corrected image.
    sample : str
        The sample folder it would replace.
    masks : int
        Masks in that sample now.
    nuclei : int
        Nuclei in the corrected labels that would take their place.
    """

    image: str
    sample: str
    masks: int
    nuclei: int


@dataclass(frozen=True)
class TrainingPlan:
    """What adding the corrected images to the training set would do; nothing written.

    Attributes
    ----------
    folder : Path
        The folder of sample folders.
    new : tuple of (str, str)
        ``(image, sample)`` per new sample.
    replaced : tuple of Replacement
        Samples that would be replaced: the user is asked first.
    tests : tuple of str
        Test images, refused: training on them would leak the test set.
    no_file : tuple of str
        Corrected images with no file behind them (pixels of a layer).
    unchanged : tuple of str
        Samples added from these corrections before, not edited since.
    other_layout : tuple of str
        Images whose masks would be laid out otherwise than the folder's samples (in
        class folders among plain masks, or the reverse): the data set reader refuses
        such a folder, so they are not added.
    """

    folder: Path
    new: tuple = ()
    replaced: tuple = ()
    tests: tuple = ()
    no_file: tuple = ()
    unchanged: tuple = ()
    other_layout: tuple = ()

    @property
    def aside(self) -> Path:
        """Where replaced samples are moved (into a dated folder)."""
        from ..core.corrections import REPLACED_FOLDER

        return self.folder / REPLACED_FOLDER


@dataclass(frozen=True)
class TrainingAdded:
    """What adding the corrected images to the training set did.

    Attributes
    ----------
    added : tuple of str
        Samples written (new or replacing).
    kept : tuple of str
        Samples left as they were, not to be replaced.
    aside : Path or None
        Where the replaced samples were moved (None when none was).
    tests, no_file, unchanged, other_layout : tuple of str
        As in :class:`TrainingPlan`.
    written : tuple
        ``(image, sample folder, generation)`` per sample written.
    """

    added: tuple = ()
    kept: tuple = ()
    aside: Path | None = None
    tests: tuple = ()
    no_file: tuple = ()
    unchanged: tuple = ()
    written: tuple = ()
    other_layout: tuple = ()


def training_folder(train_dir: Path) -> Path:
    """The folder of sample folders: ``train/`` of a dataset root, or the folder itself."""
    train_dir = Path(train_dir)
    return train_dir / "train" if (train_dir / "train").is_dir() else train_dir


def _is_test(image: ImageSnapshot, test_dir: Path | None) -> bool:
    from .model import lies_in  # the rule Session.is_test_image follows

    return lies_in(image.image_path, test_dir)


def training_plan(train_dir: Path, test_dir: Path | None,
                  images: list[ImageSnapshot]) -> TrainingPlan:
    """Decide, writing nothing, what adding the corrected images would write and replace.

    Parameters
    ----------
    train_dir : Path
        The training folder chosen in the Data section.
    test_dir : Path or None
        The test folder: its images are refused.
    images : list of ImageSnapshot
        The session's images (the uncorrected ones are left out).

    Returns
    -------
    TrainingPlan
    """
    from ..core.corrections import plan_sample

    folder = training_folder(train_dir)
    new, replaced, tests, no_file, unchanged, other = [], [], [], [], [], []
    layout = _masks_layout(folder)
    for image in images:
        if not image.edited:
            continue
        added = image.in_training
        if added is not None and added[1] == image.generation and added[0].is_dir():
            unchanged.append(added[0].name)
        elif image.image_path is None:
            no_file.append(image.name)
        elif _is_test(image, test_dir):
            tests.append(image.name)
        elif layout is not None and layout != image.classed:
            other.append(image.name)
        else:
            plan = plan_sample(folder, image.name, image.image_path)
            if plan.replaces is None:
                new.append((image.name, plan.sample))
            else:
                nuclei = int(np.count_nonzero(np.unique(image.labels)))
                replaced.append(Replacement(image.name, plan.sample, plan.replaces, nuclei))
    return TrainingPlan(folder, tuple(new), tuple(replaced), tuple(tests), tuple(no_file),
                        tuple(unchanged), tuple(other))


def _masks_layout(folder: Path) -> bool | None:
    """Whether the samples of a training folder keep their masks in class folders
    (True), as plain files (False), or it has no mask yet to tell (None)."""
    if not folder.is_dir():
        return None
    for sample in sorted(folder.iterdir()):
        masks = sample / "masks"
        if sample.name.startswith(".") or not masks.is_dir():
            continue
        for entry in masks.iterdir():
            if not entry.name.startswith("."):
                return entry.is_dir()
    return None


def add_to_training(train_dir: Path, test_dir: Path | None, images: list[ImageSnapshot],
                    replace: frozenset = frozenset()) -> TrainingAdded:
    """Write the corrected images with files into a DSB training folder.

    The plan is made again here, so that a sample that appeared since the user was
    asked is not replaced unasked.

    Parameters
    ----------
    train_dir, test_dir, images
        As for :func:`training_plan`.
    replace : frozenset of str
        Samples the user agreed to replace; other samples holding the same image are
        kept as they are.

    Returns
    -------
    TrainingAdded
    """
    from ..core.aside import stamp
    from ..core.corrections import REPLACED_FOLDER

    plan = training_plan(train_dir, test_dir, images)
    by_name = {image.name: image for image in images}
    when, written, kept, aside = stamp(), [], [], None
    for name, sample in plan.new:
        image = by_name[name]
        path = write_sample(plan.folder, sample, image)
        written.append((name, path, image.generation))
    for replacement in plan.replaced:
        if replacement.sample not in replace:
            kept.append(replacement.sample)
            continue
        image = by_name[replacement.image]
        path = write_sample(plan.folder, replacement.sample, image, replace=True, when=when)
        written.append((image.name, path, image.generation))
        aside = plan.folder / REPLACED_FOLDER / when
    return TrainingAdded(tuple(path.name for _, path, _ in written), tuple(kept), aside,
                         plan.tests, plan.no_file, plan.unchanged, tuple(written),
                         plan.other_layout)


def write_sample(folder: Path, sample: str, image: ImageSnapshot, replace: bool = False,
                 when: str | None = None) -> Path:
    """Write one corrected image as sample ``sample`` of a DSB training folder: one mask
    per nucleus, in ``masks/<class>/`` when its model has several classes.

    Built aside and moved into place, as a sample without classes is: a failure leaves
    nothing half-written, and a sample replaced is moved into ``.replaced/<when>/``.

    Returns
    -------
    Path
        The sample folder.

    Raises
    ------
    InputError
        When the sample exists and ``replace`` is False, or a class name cannot be a
        folder name.
    """
    import shutil

    from ..core.aside import replace_keeping_old
    from ..core.corrections import REPLACED_FOLDER, add_to_training_set
    from ..core.errors import InputError
    from .image_classes import present_labels

    folder = Path(folder)
    if not image.classed:
        return add_to_training_set(folder, sample, image.image_path, image.labels,
                                   replace=replace, when=when)
    target = folder / sample
    if (target.exists() or target.is_symlink()) and not replace:
        raise InputError(target, "is already in the training set; it is replaced only "
                         "when asked")
    members: dict[int, list[int]] = {}
    for value in present_labels(image.labels).tolist():
        members.setdefault((image.label_classes or {}).get(value, 0), []).append(value)
    folders = {index: _class_folder(target, image.class_set.name_of(index))
               for index in members}
    folder.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(folder, f".{sample}.")
    try:
        built = staging / sample
        # One sample per class (the nuclei of that class alone), through the one writer
        # of samples; their masks/ folders become the class folders of one sample.
        for index, values in sorted(members.items()):
            part = np.where(np.isin(image.labels, values), image.labels, 0)
            written = add_to_training_set(staging / f"class-{index}", sample,
                                          image.image_path, part)
            if not built.exists():
                (built / "masks").mkdir(parents=True)
                (written / "images").rename(built / "images")
            (written / "masks").rename(built / "masks" / folders[index])
        if not built.exists():  # no nucleus left: the image alone, with empty masks/
            built = add_to_training_set(staging, sample, image.image_path, image.labels)
        return replace_keeping_old(built, target, folder / REPLACED_FOLDER, when)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _class_folder(sample: Path, name: str) -> str:
    from ..core.errors import InputError

    if Path(name).name != name or name in (".", "..") or "\\" in name:
        raise InputError(sample, f"class {name!r} cannot be a folder name of masks/<class>/")
    return name


def added_message(added: TrainingAdded) -> str:
    """One truthful line on what adding the corrected images did.

    Nothing added because every corrected image was refused (test images, images with no
    file) is said as that, never as "no corrected image": the user did correct them.
    """
    parts = []
    if added.added:
        parts.append(f"added {len(added.added)} corrected image(s) to the training set: "
                     f"{', '.join(added.added)}")
    if added.aside is not None:
        parts.append(f"the samples replaced are in {added.aside}")
    if added.kept:
        parts.append(f"kept as they were (not replaced): {', '.join(added.kept)}")
    if added.unchanged:
        parts.append("already in the training set, not edited since: "
                     f"{', '.join(added.unchanged)}")
    refused = []
    if added.tests:
        refused.append(f"test images are never added (training on them would leak the test "
                       f"set): {', '.join(added.tests)}")
    if added.other_layout:
        refused.append("their model's classes do not match the training folder's masks "
                       "(class folders masks/<class>/ and plain mask files cannot mix in "
                       f"one data set): {', '.join(added.other_layout)}")
    if added.no_file:
        refused.append(f"images with no file behind them cannot be added: "
                       f"{', '.join(added.no_file)}")
    if not parts and not refused:
        return "No corrected image to add yet: correct a predicted image first."
    if not parts:
        return "Nothing added to the training set: " + "; ".join(refused) + "."
    text = "; ".join(parts + [f"not added, as {line}" for line in refused])
    return text[0].upper() + text[1:] + "."


def record_added(session, added: TrainingAdded) -> None:
    """Record in the session which corrections are in the training set (GUI thread), so
    that adding again leaves them alone until they are edited."""
    for name, sample, generation in added.written:
        session.mark_added(name, sample, generation)
