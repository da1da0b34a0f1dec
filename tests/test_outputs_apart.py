"""No command writes onto, into or around what it reads, whatever --overwrite says."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SAMPLE_DATA
from napari_nuclei.cli import build_parser, main
from napari_nuclei.cli_commands.path_roles import PATH_ROLES, check_outputs_apart
from napari_nuclei.core.errors import OptionError


def _one_line(capsys, status, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    for word in words:
        assert word in err[0], err[0]
    return err[0]


def _tree_snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def test_evaluate_never_replaces_its_own_ground_truth(tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text('{"images": [], "annotations": [], "categories": []}')
    before = gt.read_bytes()
    status = main(["evaluate", "--gt", str(gt), "--pred", str(gt), "-o", str(gt),
                   "--overwrite"])
    _one_line(capsys, status, "-o", "--gt", str(gt))
    assert gt.read_bytes() == before


def test_predict_labels_are_not_written_into_the_test_folder(tmp_path, capsys):
    images = tmp_path / "test"
    shutil.copytree(SAMPLE_DATA / "test", images)
    before = _tree_snapshot(images)
    status = main(["predict", "--model", str(tmp_path / "no_model"), "--images", str(images),
                   "-o", str(tmp_path / "sub.json"), "--labels-dir", str(images)])
    _one_line(capsys, status, "--labels-dir", "--images")
    assert _tree_snapshot(images) == before
    assert not (tmp_path / "sub.json").exists()


def test_a_run_is_not_written_inside_the_dataset(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA / "train", data / "train")
    before = _tree_snapshot(data)
    status = main(["train", "--data", str(data), "--out", str(data / "run"), "-q"])
    _one_line(capsys, status, "--out", "lies inside", "--data")
    assert _tree_snapshot(data) == before


def test_an_output_folder_that_contains_the_input_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA / "train", data / "train")
    status = main(["train", "--data", str(data), "--out", str(tmp_path), "-q"])
    _one_line(capsys, status, "--out", "contains", "--data")


def test_links_are_followed_before_comparing(tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DATA / "test", data)
    link = tmp_path / "innocent_looking"
    link.symlink_to(data)
    before = _tree_snapshot(data)
    status = main(["convert", str(data), "-o", str(link / "annotations.json")])
    _one_line(capsys, status, "-o", "lies inside")
    assert _tree_snapshot(data) == before


def test_the_demo_does_not_write_into_the_sample_data(capsys):
    status = main(["demo", "--out", str(SAMPLE_DATA / "out")])
    _one_line(capsys, status, "--out", "sample_data")
    assert not (SAMPLE_DATA / "out").exists()


def test_outputs_beside_the_inputs_are_accepted(tmp_path):
    args = argparse.Namespace(command="convert", dataset=tmp_path / "data",
                              image_root=None, output=tmp_path / "data.json")
    check_outputs_apart(args)  # a sibling file: no refusal


def _path_destinations(command: argparse.ArgumentParser) -> set[str]:
    """Options whose values are paths (typed Path, or named as paths are)."""
    found = set()
    for action in command._actions:
        if action.type is Path or action.dest in ("weights", "checkpoint"):
            found.add(action.dest)
    return found


def test_every_path_option_of_every_command_has_a_role():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(PATH_ROLES), "a command is missing from PATH_ROLES"
    for name, command in sub.choices.items():
        roles = PATH_ROLES[name]
        classified = set(roles.inputs) | set(roles.outputs) | set(roles.in_place)
        # --checkpoint is a file name within the run folder, compared through --model.
        unclassified = _path_destinations(command) - classified - {"checkpoint"}
        assert not unclassified, f"{name}: path options without a role: {unclassified}"


_PART = st.sampled_from(["a", "b", "c", ".", ".."])


@settings(max_examples=300, deadline=None)
@given(out_parts=st.lists(_PART, min_size=1, max_size=5),
       in_parts=st.lists(_PART, min_size=1, max_size=5))
def test_refused_exactly_when_one_path_is_within_the_other(tmp_path_factory, out_parts,
                                                           in_parts):
    base = tmp_path_factory.getbasetemp() / "roles"
    base.mkdir(exist_ok=True)

    def components(parts):
        # Lexical normalisation from the root's own parts: no links in this tree.
        stack = ["d"] * 6
        for part in parts:
            if part == "..":
                if stack:
                    stack.pop()
            elif part != ".":
                stack.append(part)
        return stack

    out_c, in_c = components(out_parts), components(in_parts)
    related = out_c[:len(in_c)] == in_c or in_c[:len(out_c)] == out_c
    # The base folder is deep enough that ".." never climbs above it.
    root = base.joinpath(*["d"] * 6)
    args = argparse.Namespace(command="evaluate", gt=root.joinpath(*in_parts), pred=None,
                              test_ids=None, output=root.joinpath(*out_parts))
    if related:
        with pytest.raises(OptionError):
            check_outputs_apart(args)
    else:
        check_outputs_apart(args)


def test_a_link_loop_does_not_break_the_check(tmp_path):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    args = argparse.Namespace(command="evaluate", gt=loop, pred=None, test_ids=None,
                              output=tmp_path / "m.json")
    check_outputs_apart(args)  # unrelated paths: the loop is the reader's to refuse
