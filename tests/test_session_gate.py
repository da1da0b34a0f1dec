"""Session folders are untrusted input: ``session.json`` and its predictions pass the gate."""

import io
import json
import math
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from napari_nuclei.core.errors import DatasetError, InputError
from napari_nuclei.core.predict.instances import Prediction
from napari_nuclei.core.validate import session as gate
from napari_nuclei.session import Session, actions, store
from napari_nuclei.session.restore import MAX_NAMED_PROBLEMS, restore_session

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # a test tool like pytest; the property tests below need it
    given = None


def make_prediction(height=64, width=64):
    crops = [(2, 2, np.ones((8, 8), bool)), (20, 20, np.eye(10, dtype=bool)),
             (40, 5, np.ones((6, 6), bool))]
    return Prediction(height, width, np.array([0.95, 0.9, 0.3], np.float32), crops)


def saved_folder(tmp_path, names=("img",), corrected=()) -> Path:
    """A session saved by the dock: ``tmp_path/out`` with one prediction per name."""
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    for name in names:
        session.add_prediction(name, None, make_prediction())
    for name in corrected:
        session.images[name].labels[60:63, 0:3] = 77
        session.labels_painted(name, [(slice(60, 63), slice(0, 3))])
    actions.save_session(actions.session_snapshot(session))
    return tmp_path / "out"


def edit(folder: Path, change) -> Path:
    path = folder / "session.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    return path


def files_under(folder: Path) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def restore(folder):
    session = Session()
    problems = restore_session(session, folder)
    return session, problems


def assert_one_line(exc_info, *words):
    message = str(exc_info.value)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message


# -- names and paths --------------------------------------------------------------------
def test_a_climbing_image_name_is_skipped_and_the_next_save_stays_inside(tmp_path):
    folder = saved_folder(tmp_path, names=("img", "other"))
    edit(folder, lambda d: d["images"][0].update(name="../../x"))
    outside = files_under(tmp_path)
    session, problems = restore(folder)
    assert list(session.images) == ["other"]
    assert len(problems) == 1 and "image 0 ('../../x')" in problems[0]
    assert "plain file name" in problems[0] and "session.json" in problems[0]
    actions.save_session(actions.session_snapshot(session))
    assert files_under(tmp_path) == outside  # the save wrote no new file anywhere
    assert not (tmp_path / "x.npz").exists() and not (tmp_path.parent / "x.npz").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".", "x\x00y", "C:x", ""])
def test_names_that_are_not_plain_file_names_are_skipped(tmp_path, name):
    folder = saved_folder(tmp_path, names=("img", "other"))
    edit(folder, lambda d: d["images"][1].update(name=name))
    session, problems = restore(folder)
    assert list(session.images) == ["img"] and len(problems) == 1
    assert "image 1" in problems[0]


def test_a_repeated_name_keeps_the_first_entry(tmp_path):
    folder = saved_folder(tmp_path, names=("img", "other"))
    edit(folder, lambda d: d["images"][1].update(name="img"))
    session, problems = restore(folder)
    assert list(session.images) == ["img"]
    assert len(problems) == 1 and "appears twice" in problems[0]


@pytest.mark.parametrize("where", ["absolute", "climbing", "backslash", "drive", "folder"])
def test_a_prediction_outside_the_folder_is_not_read(tmp_path, where):
    folder = saved_folder(tmp_path, names=("img", "other"))
    stolen = tmp_path / "elsewhere.npz"
    store.save_prediction(stolen, make_prediction())
    value = {"absolute": str(stolen), "climbing": "../elsewhere.npz",
             "backslash": "..\\elsewhere.npz", "drive": "C:elsewhere.npz", "folder": "."}[where]
    edit(folder, lambda d: d["images"][0].update(prediction=value))
    session, problems = restore(folder)
    assert list(session.images) == ["other"]
    assert len(problems) == 1 and "prediction" in problems[0]


def test_a_symlinked_prediction_or_labels_file_is_refused(tmp_path):
    folder = saved_folder(tmp_path, names=("img", "other", "third"), corrected=("other",))
    outside = tmp_path / "outside"
    outside.mkdir()
    store.save_prediction(outside / "p.npz", make_prediction())
    (folder / "predictions" / "img.npz").unlink()
    (folder / "predictions" / "img.npz").symlink_to(outside / "p.npz")
    labels = folder / "corrected" / "other.tif"
    (outside / "l.tif").write_bytes(labels.read_bytes())
    labels.unlink()
    labels.symlink_to(outside / "l.tif")
    # A link that stays inside the folder is refused too: the folder may be copied.
    (folder / "linked").symlink_to(folder / "predictions")
    edit(folder, lambda d: d["images"][2].update(prediction="linked/third.npz"))
    session, problems = restore(folder)
    assert session.images == {}
    assert len(problems) == 3 and all("symbolic link" in line for line in problems)


def test_a_symlinked_prediction_found_by_the_reader_itself_is_refused(tmp_path):
    target = tmp_path / "real.npz"
    store.save_prediction(target, make_prediction())
    (tmp_path / "link.npz").symlink_to(target)
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(tmp_path / "link.npz")
    assert_one_line(exc_info, "link.npz", "symbolic link")


def test_a_symlinked_session_file_is_refused(tmp_path):
    folder = saved_folder(tmp_path)
    (tmp_path / "real.json").write_bytes((folder / "session.json").read_bytes())
    (folder / "session.json").unlink()
    (folder / "session.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(InputError) as exc_info:
        restore(folder)
    assert_one_line(exc_info, "symbolic link")


# -- values -----------------------------------------------------------------------------
def test_a_threshold_of_400_digits_is_one_line(tmp_path):
    folder = saved_folder(tmp_path)
    path = folder / "session.json"
    path.write_text(path.read_text().replace('"score_thresh": 0.5', '"score_thresh": 1'
                                             + "0" * 400, 1))
    with pytest.raises(InputError) as exc_info:
        restore(folder)
    assert_one_line(exc_info, "session.json", "score_thresh")


def test_a_nan_threshold_refuses_the_document_in_one_line(tmp_path):
    folder = saved_folder(tmp_path)
    path = folder / "session.json"
    path.write_text(path.read_text().replace('"score_thresh": 0.5', '"score_thresh": NaN', 1))
    session = Session()
    session.add_prediction("kept", None, make_prediction())
    with pytest.raises(InputError) as exc_info:
        restore_session(session, folder)
    assert_one_line(exc_info, "session.json", "NaN")
    assert list(session.images) == ["kept"]  # a refused document leaves the session as it was


@pytest.mark.parametrize("value", [5.0, -0.1, float("nan"), float("inf"), "0.5", True, None,
                                   10**400])
def test_an_entry_threshold_outside_0_1_skips_that_entry(tmp_path, value):
    folder = saved_folder(tmp_path, names=("img", "other"))
    document = json.loads((folder / "session.json").read_text())
    document["images"][0]["score_thresh"] = value
    checked = gate.check_session(document, folder / "session.json")
    assert [e.name for e in checked.entries] == ["other"]
    assert len(checked.skipped) == 1 and "score_thresh" in checked.skipped[0]


@pytest.mark.parametrize("value", [5.0, float("nan"), "high", [0.5], 10**400])
def test_a_session_threshold_outside_0_1_refuses_the_document(tmp_path, value):
    folder = saved_folder(tmp_path)
    document = json.loads((folder / "session.json").read_text())
    document["score_thresh"] = value
    with pytest.raises(DatasetError) as exc_info:
        gate.check_session(document, folder / "session.json")
    assert_one_line(exc_info, "score_thresh")


@pytest.mark.parametrize("value", [7, None, ["img"], {"a": 1}, True])
def test_a_name_that_is_not_a_string_skips_that_entry(tmp_path, value):
    folder = saved_folder(tmp_path, names=("img", "other"))
    edit(folder, lambda d: d["images"][0].update(name=value))
    session, problems = restore(folder)
    assert list(session.images) == ["other"]
    assert len(problems) == 1 and "name" in problems[0]


@pytest.mark.parametrize("key, value", [("train_dir", 3), ("run_dir", ["a"]),
                                        ("checkpoint", "x\x00y"), ("version", 2),
                                        ("version", "1"), ("version", None), ("images", {})])
def test_document_fields_of_the_wrong_type_refuse_it(tmp_path, key, value):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d.update({key: value}))
    with pytest.raises(InputError) as exc_info:
        restore(folder)
    assert_one_line(exc_info, "session.json", key if key != "version" else "version")


@pytest.mark.parametrize("text", ["[1, 2, 3]", '"session"', "42", "null", "{", ""])
def test_a_document_that_is_not_an_object_is_one_line(tmp_path, text):
    (tmp_path / "session.json").write_text(text)
    with pytest.raises(InputError) as exc_info:
        restore(tmp_path)
    assert_one_line(exc_info, "session.json")


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    (tmp_path / "session.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError) as exc_info:
        restore(tmp_path)
    assert_one_line(exc_info, "session.json", "nested too deeply")
    (tmp_path / "session.json").write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError):
        restore(tmp_path)


def test_200000_entries_are_refused_quickly_by_the_cap(tmp_path):
    folder = saved_folder(tmp_path)
    entry = json.loads((folder / "session.json").read_text())["images"][0]
    edit(folder, lambda d: d.update(images=[{**entry, "name": f"i{n}"}
                                            for n in range(200_000)]))
    assert (folder / "session.json").stat().st_size > 10 * 2**20
    before = files_under(folder)
    session = Session()
    start = time.perf_counter()
    with pytest.raises(InputError) as exc_info:
        restore_session(session, folder)
    assert time.perf_counter() - start < 10  # it parses the file, and checks no entry
    assert_one_line(exc_info, "200,000 images", f"{gate.MAX_SESSION_IMAGES:,}")
    assert session.images == {} and files_under(folder) == before


def test_a_session_file_larger_than_any_session_is_refused_before_parsing(tmp_path,
                                                                          monkeypatch):
    folder = saved_folder(tmp_path)
    monkeypatch.setattr(gate, "MAX_SESSION_BYTES", 100)
    with pytest.raises(InputError) as exc_info:
        restore(folder)
    assert_one_line(exc_info, "session.json", "bytes")


def test_a_partial_restore_names_each_bad_entry_and_keeps_the_rest(tmp_path):
    folder = saved_folder(tmp_path, names=("a", "b", "c", "d"), corrected=("d",))

    def damage(document):
        document["images"][0]["score_thresh"] = 5.0
        document["images"][2] = "not an entry"
        document["images"].append({"name": "e"})  # no prediction

    edit(folder, damage)
    (folder / "predictions" / "b.npz").write_bytes(b"not a zip")
    session, problems = restore(folder)
    assert list(session.images) == ["d"] and session.images["d"].edited
    assert len(problems) == 4
    assert "image 0 ('a')" in problems[0] and "score_thresh" in problems[0]
    assert "image 2:" in problems[1] and "must be an object" in problems[1]
    assert "image 4 ('e')" in problems[2] and "lacks" in problems[2]
    assert problems[3].startswith("b: ") and "b.npz" in problems[3]
    assert all("\n" not in line and "Traceback" not in line for line in problems)


def test_thousands_of_bad_entries_are_named_up_to_a_count(tmp_path):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["images"].extend({"name": f"bad{n}"} for n in range(30)))
    session, problems = restore(folder)
    assert list(session.images) == ["img"]
    assert len(problems) == MAX_NAMED_PROBLEMS + 1
    assert problems[-1] == f"and {30 - MAX_NAMED_PROBLEMS} more images"


def test_labels_of_another_size_than_the_prediction_are_not_restored(tmp_path):
    folder = saved_folder(tmp_path, names=("img", "other"), corrected=("img",))
    store.save_prediction(folder / "predictions" / "img.npz", make_prediction(32, 48))
    session, problems = restore(folder)
    assert list(session.images) == ["other"]
    assert len(problems) == 1 and "32x48" in problems[0] and "64x64" in problems[0]


# -- the writer -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "x\ny"])
def test_the_writer_refuses_a_name_that_is_not_a_plain_file_name(tmp_path, name):
    folder = saved_folder(tmp_path)
    record = store.SavedImage(name, None, 0.5, folder / "predictions" / "img.npz", None)
    before = (folder / "session.json").read_bytes()
    with pytest.raises(InputError):
        store.write_session(folder, {"score_thresh": 0.5}, [record])
    assert (folder / "session.json").read_bytes() == before


def test_the_writer_refuses_files_outside_the_folder_and_bad_thresholds(tmp_path):
    folder = saved_folder(tmp_path)
    outside = store.SavedImage("img", None, 0.5, tmp_path / "elsewhere.npz", None)
    with pytest.raises(InputError, match="outside the session folder"):
        store.write_session(folder, {"score_thresh": 0.5}, [outside])
    inside = store.SavedImage("img", None, float("nan"), folder / "predictions" / "img.npz",
                              None)
    with pytest.raises(InputError, match="score_thresh"):
        store.write_session(folder, {"score_thresh": 0.5}, [inside])
    with pytest.raises(InputError, match="score_thresh"):
        store.write_session(folder, {"score_thresh": 5.0}, [])


def test_a_save_of_a_bad_name_writes_nothing(tmp_path):
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    session.add_prediction("good", None, make_prediction())
    session.add_prediction("../../evil", None, make_prediction())
    with pytest.raises(InputError) as exc_info:
        actions.save_session(actions.session_snapshot(session))
    assert_one_line(exc_info, "../../evil")
    assert files_under(tmp_path) == set()


def test_a_save_never_follows_a_linked_subfolder(tmp_path):
    folder = saved_folder(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "predictions" / "img.npz").unlink()
    (folder / "predictions").rmdir()
    (folder / "predictions").symlink_to(outside)
    session = Session(output_dir=folder, score_thresh=0.5)
    session.add_prediction("img", None, make_prediction())
    with pytest.raises(InputError, match="symbolic link"):
        actions.save_session(actions.session_snapshot(session))
    assert list(outside.iterdir()) == []


def test_a_saved_session_still_round_trips(tmp_path):
    folder = saved_folder(tmp_path, names=("a", "b"), corrected=("b",))
    session, problems = restore(folder)
    assert problems == [] and list(session.images) == ["a", "b"]
    again = session.images["a"].prediction
    expected = make_prediction()
    np.testing.assert_array_equal(again.labels(), expected.labels())
    np.testing.assert_array_equal(again.scores, expected.scores)
    assert session.images["b"].labels[61, 1] == 77


# -- predictions/<name>.npz -------------------------------------------------------------
def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def sound_arrays(**changes):
    arrays = {"size": np.array([64, 64]), "scores": np.array([0.9, 0.5], np.float32),
              "tops": np.array([1, 10]), "lefts": np.array([2, 20]),
              "shapes": np.array([[4, 4], [3, 5]]),
              "bits": np.packbits(np.ones(31, bool)), "hit_cap": np.array(False)}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def write_npz(path: Path, **changes) -> Path:
    path.write_bytes(npz_bytes(**sound_arrays(**changes)))
    return path


def test_sound_arrays_are_read(tmp_path):
    prediction = store.load_prediction(write_npz(tmp_path / "p.npz"), (64, 64))
    assert (prediction.height, prediction.width, len(prediction)) == (64, 64, 2)
    assert prediction.crops[1][2].shape == (3, 5) and prediction.crops[1][2].all()


def test_a_tiny_file_declaring_a_huge_image_allocates_nothing(tmp_path):
    path = write_npz(tmp_path / "p.npz", size=np.array([60_000, 60_000]))
    assert path.stat().st_size < 2048
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as exc_info:
            store.load_prediction(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line(exc_info, "p.npz", "60000x60000", "--max-pixels")
    assert peak < 4 * 2**20


@pytest.mark.parametrize("changes, words", [
    ({"bits": np.packbits(np.ones(8 * 40, bool))}, "mask bits"),
    ({"shapes": np.array([[4, 4], [3, 6]])}, "mask bits"),
    ({"shapes": np.array([[10**9, 10**9], [3, 5]])}, "crop heights"),
    ({"shapes": np.array([[4, 4]])}, "shapes"),
    ({"shapes": np.array([4, 4, 3, 5])}, "shapes"),
    ({"tops": np.array([62, 10])}, "outside the 64x64 image"),
    ({"lefts": np.array([-1, 20])}, "crop lefts"),
    ({"tops": np.array([2**64 - 1, 1], np.uint64)}, "crop tops"),
    ({"tops": np.array([1.0, 10.0])}, "'tops' holds float64"),
    ({"scores": np.array([0.9, np.nan], np.float32)}, "scores"),
    ({"scores": np.array([0.9, 2.0])}, "scores"),
    ({"scores": np.array([[0.9, 0.5]])}, "one dimension"),
    ({"scores": np.array(["a", "b"])}, "'scores' holds"),
    ({"size": np.array([64, 64, 3])}, "'size' has shape"),
    ({"size": np.array([0, 64])}, "image height and width"),
    ({"size": np.array([64.0, 64.0])}, "'size' holds float64"),
    ({"hit_cap": np.array(7)}, "hit_cap"),
    ({"bits": None}, "lacks the array 'bits'"),
])
def test_declared_sizes_are_checked_before_allocation(tmp_path, changes, words):
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(write_npz(tmp_path / "p.npz", **changes))
    assert_one_line(exc_info, "p.npz", words)


def test_a_prediction_of_another_image_size_is_refused(tmp_path):
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(write_npz(tmp_path / "p.npz"), (64, 32))
    assert_one_line(exc_info, "64x64", "64x32")


def test_pickled_arrays_are_refused_without_unpickling(tmp_path):
    path = write_npz(tmp_path / "p.npz", scores=np.array([0.9, {"a": 1}], dtype=object))
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(path)
    assert_one_line(exc_info, "'scores' holds object")


def test_a_zip_bomb_member_is_refused_from_its_declared_size(tmp_path):
    arrays = sound_arrays()
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            data = buffer.getvalue()
            if name == "bits":  # 32 MB of zeros after a valid header: a few KB packed
                data += bytes(32 * 2**20)
            archive.writestr(f"{name}.npy", data)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError) as exc_info:
            store.load_prediction(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_one_line(exc_info, "'bits' unpacks to")
    assert peak < 4 * 2**20


def test_a_header_declaring_a_huge_array_is_refused(tmp_path):
    arrays = sound_arrays()
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            if name == "scores":  # a header announcing 10**12 floats, with no data
                np.lib.format.write_array_header_1_0(
                    buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)})
            else:
                np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(path)
    assert_one_line(exc_info, "'scores' declares")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04garbage", b"\x00" * 100])
def test_files_that_are_not_archives_are_one_line(tmp_path, content):
    (tmp_path / "p.npz").write_bytes(content)
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(tmp_path / "p.npz")
    assert_one_line(exc_info, "p.npz")


def test_a_corrupted_member_is_one_line(tmp_path):
    data = bytearray(npz_bytes(**sound_arrays()))
    start = data.index(b"bits.npy") + 40  # inside the compressed data of that member
    data[start : start + 8] = b"\xff" * 8
    (tmp_path / "p.npz").write_bytes(bytes(data))
    with pytest.raises(DatasetError) as exc_info:
        store.load_prediction(tmp_path / "p.npz")
    assert_one_line(exc_info, "p.npz")


# -- properties: hostile documents and arrays -------------------------------------------
if given is not None:
    # Every example runs against one folder (hypothesis reuses module fixtures only).
    @pytest.fixture(scope="module")
    def hostile_folder(tmp_path_factory):
        folder = tmp_path_factory.mktemp("hostile") / "session"
        (folder / "predictions").mkdir(parents=True)
        store.save_prediction(folder / "predictions" / "p.npz", make_prediction())
        outside = folder.parent / "outside"
        outside.mkdir()
        store.save_prediction(outside / "q.npz", make_prediction())
        (folder / "predictions" / "ln.npz").symlink_to(outside / "q.npz")
        (folder / "out").symlink_to(outside)
        return folder

    json_leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                   | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=10))
    json_values = st.recursive(
        json_leaves,
        lambda children: (st.lists(children, max_size=4)
                          | st.dictionaries(st.text(max_size=6), children, max_size=4)),
        max_leaves=12)
    hostile_names = st.sampled_from([
        "../x", "../../x", "/etc/passwd", "..", ".", "a/b", "a\\b", "C:x", "x\x00y", "x\ny",
        "x\x85y", "", "n" * 300, "predictions/ln.npz", "out/q.npz",
        "predictions/../../outside/q.npz", "../outside/q.npz", "\udcff", "\ud800",
    ]) | st.text(max_size=12)
    # Sound values are drawn as often as hostile ones, so that documents pass the gate
    # with some entries kept and some skipped, not only refused as a whole.
    sound_names = st.sampled_from(["p", "img", "a b", "nucleï"]) | st.text(
        st.characters(categories=["L", "N"]), min_size=1, max_size=8)
    sound_files = st.sampled_from(["predictions/p.npz", "predictions//p.npz",
                                   "./predictions/p.npz", "predictions/missing.npz"])
    thresholds = st.floats(0, 1) | st.sampled_from([0.5, 0, 1])
    numbers = (st.floats(allow_nan=True, allow_infinity=True)
               | st.integers(-(2**70), 2**70) | st.booleans()
               | st.sampled_from([5.0, -0.0, 10**400, -(10**400)]))

    def either(sound, hostile):
        # Eight draws in ten sound: hypothesis's one_of alone favours no branch.
        return st.integers(0, 9).flatmap(
            lambda i: sound if i < 8 else hostile if i < 9 else json_values)

    entries = st.fixed_dictionaries(
        {"name": either(sound_names, hostile_names),
         "score_thresh": either(thresholds, numbers),
         "prediction": either(sound_files, hostile_names)},
        optional={"image_path": either(st.none() | st.just("/data/img.png"), hostile_names),
                  "labels": either(st.none() | sound_files, hostile_names)})
    hostile_entries = st.fixed_dictionaries({}, optional={
        key: hostile_names | numbers | json_values for key in gate.IMAGE_KEYS})
    structured = st.fixed_dictionaries(
        {"version": either(st.just(1), st.integers(-3, 3)),
         "score_thresh": either(thresholds, numbers),
         "images": either(st.lists(either(entries, hostile_entries), max_size=6),
                          json_values)},
        optional={key: either(st.none() | st.just("/data/folder"), hostile_names)
                  for key in gate.FOLDER_FIELDS})
    documents = either(structured, json_values)
    hypothesis_settings = settings(
        max_examples=300, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

    def assert_entries_are_safe(checked, folder: Path):
        real = folder.resolve()
        for entry in checked.entries:
            assert "/" not in entry.name and "\\" not in entry.name
            assert entry.name not in (".", "..")
            assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in entry.name)
            assert 0 <= entry.score_thresh <= 1 and math.isfinite(entry.score_thresh)
            for path in (entry.prediction, entry.labels):
                if path is not None:
                    assert path.resolve().is_relative_to(real)
                    assert not any(p.is_symlink() for p in (path, *path.parents)
                                   if p.is_relative_to(folder))
        names = [entry.name for entry in checked.entries]
        assert len(names) == len(set(names))
        assert all("\n" not in line for line in checked.skipped)
        assert 0 <= checked.fields["score_thresh"] <= 1

    @hypothesis_settings
    @given(document=documents)
    def test_property_the_gate_validates_or_refuses_any_document(hostile_folder, document):
        try:
            checked = gate.check_session(document, hostile_folder / "session.json")
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        assert_entries_are_safe(checked, hostile_folder)
        assert len(checked.entries) + len(checked.skipped) == len(document["images"])

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(document=documents)
    def test_property_any_session_file_is_read_or_refused(hostile_folder, document):
        # Written as Python's json writes it: NaN and Infinity appear as bare words.
        try:
            text = json.dumps(document)
        except (ValueError, TypeError):  # surrogates are refused on writing already
            return
        path = hostile_folder / "session.json"
        try:
            path.write_text(text, encoding="utf-8")
        except UnicodeEncodeError:
            return
        try:
            checked = gate.read_session_file(hostile_folder)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        assert_entries_are_safe(checked, hostile_folder)

    any_arrays = st.one_of(
        st.none(),
        hnp.arrays(st.sampled_from([np.int8, np.int64, np.uint8, np.uint64, np.float16,
                                    np.float32, np.float64, np.bool_, np.complex64]),
                   hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)),
        st.sampled_from([np.array([2**40, 2**40]), np.array([-3, 4]), np.array(["x"])]))
    # Arrays of the right kind and shape with values near the edges of the 64x64 image.
    near_sound = {
        "size": hnp.arrays(np.int64, 2, elements=st.integers(-1, 70)),
        "scores": hnp.arrays(np.float32, 2, elements=st.floats(-1, 2, width=32)),
        "tops": hnp.arrays(np.int64, 2, elements=st.integers(-2, 66)),
        "lefts": hnp.arrays(np.int64, 2, elements=st.integers(-2, 66)),
        "shapes": hnp.arrays(np.int64, (2, 2), elements=st.integers(-1, 66)),
        "bits": hnp.arrays(np.uint8, st.integers(0, 8)),
        "hit_cap": hnp.arrays(np.int64, (), elements=st.integers(-1, 2)),
    }
    KEEP = object()

    def member_change(name):
        # Seven members in ten kept sound, so that later checks are reached too.
        return st.integers(0, 9).flatmap(
            lambda i: st.just(KEEP) if i < 7 else near_sound[name] if i < 9 else any_arrays)

    prediction_changes = st.fixed_dictionaries(
        {name: member_change(name) for name in gate.PREDICTION_MEMBERS}).map(
        lambda changes: {k: v for k, v in changes.items() if v is not KEEP})

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(changes=prediction_changes)
    def test_property_any_prediction_file_is_read_or_refused(tmp_path_factory, changes):
        path = tmp_path_factory.getbasetemp() / "property.npz"
        path.write_bytes(npz_bytes(**sound_arrays(**changes)))  # None: a member left out
        try:
            arrays = gate.read_prediction_arrays(path)
        except DatasetError as exc:
            assert "\n" not in str(exc)
            return
        assert len(arrays.scores) == len(arrays.crops)
        for top, left, mask in arrays.crops:
            assert mask.dtype == bool and mask.ndim == 2
            assert top + mask.shape[0] <= arrays.height and left + mask.shape[1] <= arrays.width
else:
    @pytest.mark.skip(reason="the property tests need hypothesis (pip install hypothesis)")
    def test_property_tests_need_hypothesis():
        pass


def test_a_name_longer_than_any_file_system_allows_is_refused(tmp_path):
    from napari_nuclei.core.validate.fields import InvalidValue
    from napari_nuclei.core.validate.session import file_inside

    with pytest.raises(InvalidValue, match="longer than 255 bytes"):
        file_inside(tmp_path, "n" * 256, "prediction")
    assert file_inside(tmp_path, "n" * 255, "prediction") == tmp_path / ("n" * 255)


def test_corrections_of_another_size_than_their_image_are_named_not_the_prediction(
        tmp_path):
    import tifffile

    from conftest import write_png

    image = write_png(tmp_path / "data" / "img.png", np.zeros((64, 64), np.uint8))
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    session.add_prediction("img", image, make_prediction())
    session.images["img"].labels[60:63, 0:3] = 77
    session.labels_painted("img", [(slice(60, 63), slice(0, 3))])
    actions.save_session(actions.session_snapshot(session))
    corrected = tmp_path / "out" / "corrected" / "img.tif"
    tifffile.imwrite(corrected, np.zeros((10, 10), np.int32))
    restored, problems = restore(tmp_path / "out")
    assert problems == [f"img: {corrected}: is 10x10, not the 64x64 of its image {image}: "
                        "not this image's corrections"]
    assert restored.images == {}
