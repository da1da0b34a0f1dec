"""The class set and the gate for the classes users declare."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.nucleus_classes import ClassSet, merged_names
from napari_nuclei.core.validate.classes import MAX_CLASSES, read_class_table


def test_default_set_is_the_one_nucleus_category():
    default = ClassSet.default()
    assert default.is_default and len(default) == 1
    assert default.categories() == [{"id": 1, "name": "nucleus"}]
    assert default.qupath_class(0) == {"name": "Nucleus", "color": [200, 40, 160]}
    assert ClassSet.from_categories([{"id": 1, "name": "nucleus"}]).is_default
    assert ClassSet.from_json(None, "x").is_default


def test_categories_keep_their_ids_in_id_order_and_round_trip():
    classes = ClassSet.from_categories(
        [{"id": 7, "name": "Lymphocyte"}, {"id": 3, "name": "Tumor", "color": [1, 2, 3]}])
    assert classes.ids == (3, 7) and classes.names == ("Tumor", "Lymphocyte")
    assert classes.index_of_id(7) == 1 and classes.index_of_name("tumor") == 0
    assert classes.classes[0].color == (1, 2, 3)
    assert ClassSet.from_json(classes.to_json(), "x") == classes
    assert classes.qupath_class(1)["name"] == "Lymphocyte"
    with pytest.raises(KeyError):
        classes.index_of_id(1)


@pytest.mark.parametrize(("categories", "problem"), [
    ([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}], "id 1 appears twice"),
    ([{"id": 1, "name": "a"}, {"id": 2, "name": "A"}], "appears twice"),
    ([{"id": 0, "name": "a"}], "at least 1"),
    ([{"id": True, "name": "a"}], "integer"),
    ([{"id": 1, "name": ""}], "empty"),
    ([{"id": 1, "name": "a\nb"}], "control character"),
    ([{"id": 1, "name": "Tumor: big"}], "colon"),
    ([{"id": 1, "name": "x" * 81}], "longer"),
    ([{"id": 1, "name": "a", "color": [0, 0, 256]}], "larger than 255"),
    ([{"id": 1}], "lacks name"),
    ({"id": 1}, "must be a list"),
    ([{"id": i, "name": f"c{i}"} for i in range(1, MAX_CLASSES + 2)], "at most"),
])
def test_bad_categories_get_one_line_naming_the_file(categories, problem):
    with pytest.raises(DatasetError) as caught:
        ClassSet.from_categories(categories, "data/annotations.json")
    message = str(caught.value)
    assert "annotations.json" in message and problem in message and "\n" not in message


@given(st.lists(st.text(min_size=1, max_size=90), min_size=1, max_size=8))
def test_any_names_either_make_a_set_or_one_line(names):
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    try:
        classes = ClassSet.from_categories(categories, "c.json")
    except DatasetError as exc:
        assert "\n" not in str(exc).strip() and "c.json" in str(exc)
    else:
        assert len(classes) == len(names)
        assert all(n.isprintable() and 0 < len(n) <= 80 for n in classes.names)


def test_merged_names_are_sorted_and_case_folded():
    assert merged_names([["tumor", "Stroma"], ["stroma", "Tumor", "dead"]]) == [
        "dead", "Stroma", "Tumor"]


def test_class_table(tmp_path):
    table = tmp_path / "a_classes.csv"
    table.write_text("label,class\n1,tumor\n2, stroma \n", encoding="utf-8")
    assert read_class_table(table) == {1: "tumor", 2: "stroma"}
    for text, problem in [("label,kind\n1,a\n", "no class column"),
                          ("label,class\n1,a\n1,b\n", "appears twice"),
                          ("label,class\n-1,a\n", "not a positive integer"),
                          ("label,class\n1,\n", "empty"),
                          ("", "is empty")]:
        table.write_text(text, encoding="utf-8")
        with pytest.raises(DatasetError, match=problem):
            read_class_table(table)
    table.write_bytes(b"label,class\n1,\xff\n")
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_class_table(table)


def test_default_colours_keep_classes_apart():
    classes = ClassSet.from_names(["lymphocyte", "tumor", "stroma", "dead", "other"])
    colours = [c.color for c in classes]
    assert classes.classes[1].color == (200, 0, 0)  # QuPath's Tumor
    assert classes.classes[4].color == (255, 200, 0)  # QuPath's Other
    for i, a in enumerate(colours):
        for b in colours[i + 1:]:
            assert sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5 >= 100
    many = ClassSet.from_names([f"c{i}" for i in range(30)])
    assert len(many) == 30  # past the palette, colours repeat rather than fail


def test_class_overlay_outlines_each_nucleus_in_its_class_colour():
    import numpy as np

    from napari_nuclei.core.plots import class_overlay, outlines

    classes = ClassSet.from_names(["lymphocyte", "tumor"])
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8], labels[10:18, 10:18] = 1, 2
    picture = class_overlay(np.full((20, 20), 128, np.uint8), labels, {1: 1, 2: 0}, classes)
    edges = outlines(labels)
    assert (picture[edges & (labels == 1)] == classes.classes[1].color).all()
    assert (picture[edges & (labels == 2)] == classes.classes[0].color).all()
    assert (picture[labels == 0] == 128).all()
