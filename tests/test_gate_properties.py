"""Property-based tests of the gate's loaders on generated hostile files and names.

Each loader either returns checked data or raises the project's one-line error; no other
exception ever escapes, whatever the file holds.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.validate import load_arrays, load_json, parse_json_line
from napari_nuclei.core.validate.fields import InvalidValue
from napari_nuclei.core.validate.paths import inside, relative_name

_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20)


def _hostile_text(draw_value: object, depth: int, junk: str) -> str:
    text = json.dumps(draw_value, allow_nan=True)
    return "[" * depth + text + "]" * depth + junk


@_SETTINGS
@given(value=_json_values, depth=st.sampled_from([0, 1, 50, 200_000]),
       junk=st.sampled_from(["", " ", "}", "NaN", "\x00", "1" * 5000]))
def test_json_lines_parse_or_raise_value_error(value, depth, junk):
    text = _hostile_text(value, depth, junk)
    try:
        parsed = parse_json_line(text)
    except ValueError:
        return
    # What parses holds no NaN or infinity anywhere (a string may spell them).
    assert all(math.isfinite(number) for number in _numbers(parsed))


def _numbers(value):
    """Every float of a parsed JSON value, keys and strings aside."""
    if isinstance(value, float):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)


@_SETTINGS
@given(value=_json_values, depth=st.sampled_from([0, 3, 200_000]),
       junk=st.sampled_from(["", "]", "Infinity", "\udcff"]))
def test_json_files_load_or_raise_one_dataset_error(tmp_path, value, depth, junk):
    path = tmp_path / "doc.json"
    path.write_bytes(_hostile_text(value, depth, junk).encode("utf-8", "surrogateescape"))
    try:
        loaded = load_json(path)
    except DatasetError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert not any(isinstance(v, float) and not math.isfinite(v)
                   for v in _leaves(loaded))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _npy_bytes(shape, dtype) -> bytes:
    """A .npy header declaring ``shape`` and ``dtype``, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                 "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


@_SETTINGS
@given(shape=st.lists(st.integers(0, 10**7), min_size=0, max_size=4),
       dtype=st.sampled_from(["u1", "i8", "f8", "O", "U10"]),
       zipped=st.booleans(), extra=st.binary(max_size=64))
def test_numpy_files_load_or_raise_before_allocating(tmp_path, shape, dtype, zipped, extra):
    data = _npy_bytes(shape, dtype) + extra
    path = tmp_path / ("a.npz" if zipped else "a.npy")
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("labels.npy", data)
    else:
        path.write_bytes(data)
    declared = math.prod(shape) * np.dtype(dtype).itemsize
    try:
        arrays = load_arrays(path, limit=10**6)
    except DatasetError as exc:
        assert str(path) in str(exc)
        return
    # Only small, number-only arrays get through.
    assert declared <= 10**6 and dtype != "O"
    assert all(not a.dtype.hasobject for a in arrays.values())


def test_a_real_array_file_round_trips(tmp_path):
    path = tmp_path / "r.npz"
    np.savez_compressed(path, ids=np.arange(5), hit_cap=np.array(True))
    arrays = load_arrays(path)
    assert arrays["ids"].tolist() == [0, 1, 2, 3, 4] and bool(arrays["hit_cap"])
    np.save(tmp_path / "l.npy", np.ones((3, 4), np.uint32))
    assert load_arrays(tmp_path / "l.npy")[""].shape == (3, 4)
    with pytest.raises(DatasetError, match="declares"):
        load_arrays(path, limit=8)


_NAME_PARTS = st.sampled_from(["a", "b.png", "..", ".", "/", "\\", "C:", "\x00", "~", "é"])


@_SETTINGS
@given(parts=st.lists(_NAME_PARTS, min_size=1, max_size=6))
def test_names_stay_inside_their_folder(tmp_path, parts):
    name = "".join(parts)
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    try:
        path = inside(root, name)
    except InvalidValue:
        return
    resolved = path.resolve()
    assert resolved == root.resolve() or resolved.is_relative_to(root.resolve())
    assert relative_name(name) == name
