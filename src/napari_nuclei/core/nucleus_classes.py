"""The kinds of nuclei a data set, a run and its outputs know: names, COCO ids, colours.

One :class:`ClassSet` travels from the training data into the run folder
(``settings.json``'s ``classes``), from the run into every prediction, and from there into
every output (submission and COCO categories, table columns, QuPath path classes, counts).
Models number classes from 0 in the set's order; files use the COCO category ids.

A data set without classes has the one default class, ``nucleus`` (COCO id 1), and
everything made from it is what it was before classes existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .validate.classes import check_categories

# QuPath's own colours for its default classes, so that shared results look as QuPath
# users expect; other names take the palette's colours in order.
_QUPATH_COLOURS = {
    "tumor": (200, 0, 0), "tumour": (200, 0, 0), "stroma": (150, 200, 150),
    "immune cells": (160, 90, 160), "necrosis": (50, 50, 50), "other": (255, 200, 0),
    "region": (0, 0, 180), "ignore": (180, 180, 180), "positive": (200, 50, 50),
    "negative": (112, 112, 225), "nucleus": (200, 40, 160),
}
# Distinct colours, far from each other and from the background of H&E and fluorescence.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 215, 180), (0, 0, 128),
)
DEFAULT_NAME = "nucleus"
# The default class as QuPath has always been handed it.
_DEFAULT_QUPATH = ("Nucleus", _QUPATH_COLOURS[DEFAULT_NAME])


@dataclass(frozen=True)
class NucleusClass:
    """One kind of nucleus.

    Attributes
    ----------
    id : int
        Its COCO category id (at least 1).
    name : str
        What users call it.
    color : tuple of int
        ``(r, g, b)``, 0–255.
    """

    id: int
    name: str
    color: tuple[int, int, int]


# Colours closer than this (Euclidean, in RGB) are hard to tell apart on a picture.
_DISTINCT = 120.0


def default_colours(names, given=None) -> list[tuple[int, int, int]]:
    """Colours for classes ``names``: ``given[i]`` where not None, else QuPath's own for
    its default classes, else the first palette colour far from every colour chosen so
    far (two classes never share a hue by accident, e.g. ``tumor`` and the palette's
    red)."""
    given = list(given or [None] * len(names))
    chosen = [tuple(c) if c is not None else _QUPATH_COLOURS.get(n.strip().casefold())
              for n, c in zip(names, given, strict=True)]
    for index, colour in enumerate(chosen):
        if colour is not None:
            continue
        used = [c for c in chosen if c is not None]
        far = [p for p in PALETTE
               if all(sum((a - b) ** 2 for a, b in zip(p, u, strict=True)) ** 0.5 >= _DISTINCT
                      for u in used)]
        chosen[index] = far[0] if far else PALETTE[index % len(PALETTE)]
    return chosen


@dataclass(frozen=True)
class ClassSet:
    """The classes of a data set or a run, in model order (index 0 first).

    Build one with :meth:`default`, :meth:`from_names` or :meth:`from_categories`.
    """

    classes: tuple[NucleusClass, ...]

    def __post_init__(self):
        if not self.classes:
            raise ValueError("a class set needs at least one class")
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids) or min(ids) < 1:
            raise ValueError(f"class ids must be distinct and at least 1: {ids}")
        names = [c.name.casefold() for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be distinct: {[c.name for c in self.classes]}")

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def default(cls) -> ClassSet:
        """The one class ``nucleus`` (COCO id 1)."""
        return cls((NucleusClass(1, DEFAULT_NAME, _DEFAULT_QUPATH[1]),))

    @classmethod
    def from_names(cls, names: Iterable[str]) -> ClassSet:
        """Classes named ``names`` (in that order), COCO ids 1, 2, …, default colours."""
        names = list(names)
        if not names:
            return cls.default()
        return cls(tuple(NucleusClass(index + 1, name, colour) for index, (name, colour)
                         in enumerate(zip(names, default_colours(names), strict=True))))

    @classmethod
    def from_categories(cls, categories, path: str | Path = "categories") -> ClassSet:
        """The classes of COCO ``categories`` (any ids and names), checked by the gate
        and ordered by id; colours where they give none. No categories: the default."""
        checked = check_categories(categories, path)
        if not checked:
            return cls.default()
        colours = default_colours([e["name"] for e in checked],
                                  [e.get("color") for e in checked])
        return cls(tuple(NucleusClass(entry["id"], entry["name"], colour)
                         for entry, colour in zip(checked, colours, strict=True)))

    # -- what it says ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    @property
    def is_default(self) -> bool:
        """True for the one default class: outputs stay as they were without classes."""
        return self == ClassSet.default()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.classes)

    def name_of(self, index: int) -> str:
        """The name of model class ``index``."""
        return self.classes[int(index)].name

    def index_of_id(self, category_id: int) -> int:
        """The model index of COCO category ``category_id``.

        Raises
        ------
        KeyError
            For an id of no class of the set.
        """
        for index, entry in enumerate(self.classes):
            if entry.id == category_id:
                return index
        raise KeyError(category_id)

    def index_of_name(self, name: str) -> int:
        """The model index of the class called ``name`` (case does not matter)."""
        key = name.strip().casefold()
        for index, entry in enumerate(self.classes):
            if entry.name.casefold() == key:
                return index
        raise KeyError(name)

    def categories(self) -> list[dict]:
        """COCO ``categories``: ``{"id", "name"}`` per class (and its ``color`` when the
        set is not the default, which has always been written without one)."""
        if self.is_default:
            return [{"id": 1, "name": DEFAULT_NAME}]
        return [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]

    def qupath_class(self, index: int) -> dict:
        """QuPath's ``classification`` of model class ``index``: ``{"name", "color"}``."""
        if self.is_default:
            return {"name": _DEFAULT_QUPATH[0], "color": list(_DEFAULT_QUPATH[1])}
        entry = self.classes[int(index)]
        return {"name": entry.name, "color": list(entry.color)}

    def to_json(self) -> list[dict]:
        """The set as run folders and sessions store it (COCO categories with colours)."""
        return [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes]

    @classmethod
    def from_json(cls, data, path: str | Path) -> ClassSet:
        """Read back :meth:`to_json` (through the gate; ``None``: the default set)."""
        if data is None:
            return cls.default()
        return cls.from_categories(data, path)


def merged_names(groups: Sequence[Iterable[str]]) -> list[str]:
    """Class names met in several places (samples, tables), each once, sorted so that the
    order does not depend on which file was read first; case variants are one class,
    spelled as first met in sorted order."""
    seen: dict[str, str] = {}
    for name in sorted(name for group in groups for name in group):
        seen.setdefault(name.casefold(), name)
    return sorted(seen.values(), key=str.casefold)
