"""Slides in viewers: lazy pyramids, correcting predicted slides in windows, and windows
as training samples (stand-in model, small generated slides)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of, table_of

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide import edits as edits_module
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.lazy import labels_layer_data, slide_layer_data
from napari_nuclei.core.slide.reader import open_slide
from napari_nuclei.core.slide.window import pull_window, write_back

CLI = [sys.executable, "-m", "napari_nuclei.cli"]
REGION = (256, 256, 400, 300)  # x, y, width, height in level-0 pixels


def predict(slide, out):
    options = SlideOptions(overlap=32, outputs=OutputOptions(csv=True))
    drain(iter_predict_slide(BlobModel(), slide, out, options))
    return out


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("slides") / "case_01.tif")


@pytest.fixture(scope="module")
def predicted(slide, tmp_path_factory):
    return predict(slide, tmp_path_factory.mktemp("out") / "case_01")


@pytest.fixture
def output(predicted, tmp_path):
    """A copy of the predicted output that a test may edit."""
    return shutil.copytree(predicted, tmp_path / "case_01")


def geojson_of(out):
    import shapely

    features = json.loads((out / "nuclei.geojson").read_text())["features"]
    return {f["properties"]["measurements"]["id"]: shapely.geometry.shape(f["geometry"])
            for f in features}


# -- opening lazily -----------------------------------------------------------------------

def test_a_slide_opens_as_a_lazy_pyramid_on_the_micron_scale(slide, level_reads):
    levels, meta, kind = slide_layer_data(slide)
    assert kind == "image" and meta["multiscale"] and meta["rgb"]
    assert [lv.shape for lv in levels] == [(1024, 1024, 3), (512, 512, 3)]
    assert meta["scale"] == (0.25, 0.25) and meta["units"] == ("micrometer", "micrometer")
    assert level_reads == {}  # opening read no pixels
    overview = np.asarray(levels[1])
    assert set(level_reads) == {1}
    with open_slide(slide) as opened:
        np.testing.assert_array_equal(overview, opened.read(1, 0, 0, 512, 512))
        np.testing.assert_array_equal(np.asarray(levels[0][700:900, 10:90]),
                                      opened.read(0, 10, 700, 80, 200))
    assert level_reads[0] >= 1  # the counter sees level-0 reads when there are some


def test_predicted_labels_open_as_multiscale_labels_on_the_slide_scale(predicted):
    levels, meta, kind = labels_layer_data(predicted)
    assert kind == "labels" and meta["multiscale"]
    assert [lv.shape for lv in levels] == [(1024, 1024), (512, 512), (256, 256)]
    assert meta["scale"] == (0.25, 0.25) and meta["units"] == ("micrometer", "micrometer")
    np.testing.assert_array_equal(np.asarray(levels[1]), labels_of(predicted, "s1"))
    with pytest.raises(InputError, match="not a predict-slide output"):
        labels_layer_data(predicted / "job")


# -- correcting in windows ----------------------------------------------------------------

def test_a_window_holds_the_labels_and_pixels_of_its_region(predicted, slide):
    window = pull_window(predicted, *REGION)
    x, y, w, h = REGION
    assert window.shape == (h, w) and window.level0_region == REGION
    np.testing.assert_array_equal(window.labels, labels_of(predicted)[y : y + h, x : x + w])
    with open_slide(slide) as opened:
        np.testing.assert_array_equal(window.image, opened.read(0, x, y, w, h))
    assert window.mpp == pytest.approx(0.25)
    # Cut: exactly the window's nuclei that have pixels outside it.
    full = labels_of(predicted)
    outside = full.copy()
    outside[y : y + h, x : x + w] = 0
    inside = set(np.unique(window.labels).tolist()) - {0}
    assert window.cut_ids == inside & set(np.unique(outside).tolist())
    assert window.cut_ids and inside - window.cut_ids


def test_windows_that_cannot_be_pulled_say_why(predicted, tmp_path):
    with pytest.raises(InputError, match="limited to 256 a side"):
        pull_window(predicted, 0, 0, 512, 512, max_side=256)
    with pytest.raises(InputError, match="lies outside the slide"):
        pull_window(predicted, 5000, 0, 10, 10)
    with pytest.raises(InputError, match="not a predict-slide output folder"):
        pull_window(tmp_path, 0, 0, 10, 10)
    unfinished = shutil.copytree(predicted, tmp_path / "unfinished")
    (unfinished / "job" / "complete.json").unlink()
    with pytest.raises(InputError, match="not finished"):
        pull_window(unfinished, 0, 0, 10, 10)


def edit(window):
    """Remove one nucleus, grow another, draw one with an id used elsewhere in the slide,
    erase a nucleus the border cuts and paint its id elsewhere."""
    labels = window.labels.copy()
    free = sorted(set(np.unique(labels).tolist()) - {0} - window.cut_ids)
    removed, grown = free[0], free[1]
    labels[labels == removed] = 0
    rows, cols = np.nonzero(labels == grown)
    labels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = grown
    empty = np.argwhere(labels[20:-20, 20:-20] == 0)[0] + 20
    labels[empty[0] - 3 : empty[0] + 4, empty[1] - 3 : empty[1] + 4] = 1
    cut = min(window.cut_ids)
    labels[labels == cut] = 0
    labels[-3:, :3] = cut
    return labels, removed, grown, cut


def test_write_back_updates_labels_pyramid_table_and_geojson(output):
    before = labels_of(output)
    table_before = table_of(output)
    assert set(np.unique(before).tolist()) - {0} == set(table_before.index)
    window = pull_window(output, *REGION)
    labels, removed, grown, cut = edit(window)
    result = write_back(window, labels)

    assert result.removed == [removed] and grown in result.changed
    assert len(result.added) == 1 and result.added[0] > table_before.index.max()
    assert result.restored_pixels > 0
    x, y, w, h = REGION
    after = labels_of(output)
    np.testing.assert_array_equal(after[y : y + h, x : x + w], result.labels)
    outside = np.ones(after.shape, bool)
    outside[y : y + h, x : x + w] = False
    np.testing.assert_array_equal(after[outside], before[outside])
    # The cut nucleus is whole again, its stray pixels background.
    np.testing.assert_array_equal(after == cut, before == cut)
    added = result.added[0]
    assert np.count_nonzero(after == added) == 49 and np.count_nonzero(after == 1) == \
        np.count_nonzero(before == 1)
    for k, level in enumerate(("s1", "s2"), start=1):
        np.testing.assert_array_equal(labels_of(output, level), after[:: 2**k, :: 2**k])

    table = table_of(output)
    ids = set(np.unique(after).tolist()) - {0}
    assert set(table.index) == ids and removed not in table.index
    for nucleus in (grown, added):
        assert table.loc[nucleus, "area_px"] == np.count_nonzero(after == nucleus)
    assert table.loc[grown, "score"] == table_before.loc[grown, "score"]
    assert table.loc[added, "score"] == 1.0
    untouched = sorted(ids - set(result.changed) - {added})
    assert table.loc[untouched].equals(table_before.loc[untouched])
    import pandas as pd

    csv = pd.read_csv(output / "nuclei.csv").set_index("id")
    assert set(csv.index) == ids
    shapes = geojson_of(output)
    assert set(shapes) == ids and all(s.is_valid for s in shapes.values())
    for nucleus in (grown, added):
        assert shapes[nucleus].area == pytest.approx(np.count_nonzero(after == nucleus),
                                                     rel=0.35)
        cy, cx = np.argwhere(after == nucleus).mean(axis=0)
        assert shapes[nucleus].distance(__import__("shapely").Point(cx + 0.5, cy + 0.5)) < 1
    log = json.loads((output / "edits" / "log" / "000001.json").read_text())
    assert (log["removed"], log["added"]) == (1, 1)


def test_a_piece_painted_apart_becomes_a_new_nucleus(output):
    window = pull_window(output, *REGION)
    labels = window.labels.copy()
    nucleus = min(set(np.unique(labels).tolist()) - {0} - window.cut_ids)
    empty = np.argwhere(labels[20:-20, 20:-20] == 0)
    far = empty[np.abs(empty - np.argwhere(labels == nucleus)[0]).sum(axis=1) > 60][0] + 20
    labels[far[0] - 1 : far[0] + 2, far[1] - 1 : far[1] + 2] = nucleus
    result = write_back(window, labels)
    assert result.changed == [] and len(result.added) == 1
    after = labels_of(output)
    assert np.count_nonzero(after == result.added[0]) == 9
    assert np.count_nonzero(after == nucleus) == np.count_nonzero(window.original == nucleus)


def test_a_stale_window_is_refused_and_an_unchanged_one_writes_nothing(output):
    first = pull_window(output, *REGION)
    nucleus = min(set(np.unique(first.labels).tolist()) - {0} - first.cut_ids)
    y, x = np.argwhere(first.labels == nucleus)[0]
    # A second window over the same nucleus.
    second = pull_window(output, REGION[0] + x - 20, REGION[1] + y - 20, 60, 60)
    assert write_back(second).count == 0
    assert not (output / "edits" / "log").exists()
    labels = first.labels.copy()
    labels[labels == nucleus] = 0
    write_back(first, labels)
    changed = second.labels.copy()
    changed[0, 0] = 0
    with pytest.raises(InputError, match="changed since it was pulled"):
        write_back(second, changed)
    with pytest.raises(InputError, match="the window is"):
        write_back(first, labels[:10])


def test_a_second_process_writing_back_to_the_same_output_is_refused(output):
    window = pull_window(output, *REGION)
    labels = window.labels.copy()
    labels[labels == min(set(np.unique(labels).tolist()) - {0} - window.cut_ids)] = 0
    table_before = table_of(output)
    # Another process holds the output's lock (as during its own write-back).
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\n"
         "from napari_nuclei.core.slide.output_lock import hold_output\n"
         "with hold_output(sys.argv[1]):\n"
         "    print('held', flush=True); sys.stdin.read()", str(output)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=r"is being written by process \d+ on ") as err:
            write_back(window, labels)
        assert "\n" not in str(err.value)
        assert table_of(output).equals(table_before)
        assert np.array_equal(labels_of(output)[256:556, 256:656], window.original)
    finally:
        holder.communicate("")
    assert write_back(window, labels).removed  # the lock goes with the process


def test_a_write_back_stopped_half_way_is_completed_on_the_next_open(output, predicted,
                                                                      tmp_path, monkeypatch):
    reference = shutil.copytree(predicted, tmp_path / "reference")
    window = pull_window(reference, *REGION)
    write_back(window, edit(window)[0])

    window = pull_window(output, *REGION)

    def power_cut(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(edits_module, "_rewrite_geojson", power_cut)
    with pytest.raises(KeyboardInterrupt):
        write_back(window, edit(window)[0])
    assert (output / "edits" / "pending").is_dir()
    monkeypatch.undo()
    pull_window(output, 0, 0, 10, 10)  # opening the folder completes the edit
    assert not (output / "edits" / "pending").exists()
    np.testing.assert_array_equal(labels_of(output), labels_of(reference))
    assert table_of(output).sort_index().equals(table_of(reference).sort_index())
    assert (output / "nuclei.geojson").read_bytes() == (reference / "nuclei.geojson").read_bytes()


# -- windows as training samples ----------------------------------------------------------

@pytest.fixture(scope="module")
def second_predicted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("second")
    return predict(make_slide(folder / "case_02.tif", size=768, seed=5), folder / "case_02")


def test_windows_of_two_slides_form_a_training_set_that_train_reads(
        output, second_predicted, tmp_path):
    from napari_nuclei.core.dataset import open_dataset
    from napari_nuclei.core.slide.training_windows import (
        add_window_to_training_set,
        training_set_mpp,
    )
    from napari_nuclei.core.training.data import prepare_training_data

    training = tmp_path / "windows"
    first = pull_window(output, *REGION)
    labels, *_ = edit(first)
    written = write_back(first, labels).labels
    second = pull_window(second_predicted, 100, 200, 300, 256)
    samples = [add_window_to_training_set(first, training, written),
               add_window_to_training_set(second, training)]
    assert [s.name for s in samples] == ["case_01_x256_y256_400x300",
                                         "case_02_x100_y200_300x256"]
    assert training_set_mpp(training) == pytest.approx(0.25)
    assert json.loads((samples[0] / "sample.json").read_text())["mpp"] == pytest.approx(0.25)
    dataset = open_dataset(training)
    assert dataset.layout == "dsb" and len(dataset) == 2
    nuclei = [len(set(np.unique(written).tolist()) - {0}),
              len(set(np.unique(second.labels).tolist()) - {0})]
    assert [len(r.mask_paths) for r in dataset.records] == nuclei
    data = drain(prepare_training_data(training, tmp_path / "run"))
    assert data.n_train_nuclei == sum(nuclei)
    assert [(d["height"], d["width"]) for d in data.train] == [(300, 400), (256, 300)]
    converted = subprocess.run([*CLI, "convert", str(training), "-o", str(tmp_path / "c.json"),
                                "-q"], capture_output=True, text=True, timeout=300)
    assert converted.returncode == 0, converted.stderr
    assert f"{sum(nuclei)} nuclei" in converted.stdout

    from napari_nuclei.cli import build_parser
    from napari_nuclei.cli_commands import train

    # train takes the windows' pixel size unless --mpp says otherwise.
    assert train._settings(build_parser().parse_args(
        ["train", "--data", str(training)])).mpp == pytest.approx(0.25)
    assert train._settings(build_parser().parse_args(
        ["train", "--data", str(training), "--mpp", "0.3"])).mpp == pytest.approx(0.3)

    with pytest.raises(InputError, match="already in the training set"):
        add_window_to_training_set(second, training)
    assert add_window_to_training_set(second, training, replace=True) == samples[1]
    second.mpp = 0.5
    with pytest.raises(InputError, match="pixel size 0.25 µm; this window is at 0.5 µm"):
        add_window_to_training_set(second, tmp_path / "windows")
    second.labels[:] = 0
    with pytest.raises(InputError, match="holds no nuclei"):
        add_window_to_training_set(second, tmp_path / "other")


def test_windows_of_a_slide_predicted_at_another_pixel_size(slide, tmp_path, monkeypatch):
    from napari_nuclei.core.slide import engine
    from napari_nuclei.core.slide.training_windows import add_window_to_training_set

    def facts_at_half_resolution(model):
        return engine.ModelFacts("stub", "stub", 256, 2000, 40, 0.5)

    monkeypatch.setattr(engine.ModelFacts, "of", staticmethod(facts_at_half_resolution))
    out = tmp_path / "half"
    drain(iter_predict_slide(BlobModel(min_area=8), slide, out))
    levels, meta, _ = labels_layer_data(out)
    assert levels[0].shape == (512, 512) and meta["scale"] == (0.5, 0.5)
    window = pull_window(out, *REGION)
    assert (window.top, window.left, window.shape) == (128, 128, (150, 200))
    assert window.level0_region == REGION and window.mpp == pytest.approx(0.5)
    assert window.image.shape == (150, 200, 3)
    labels = window.labels.copy()
    labels[labels == min(set(np.unique(labels).tolist()) - {0} - window.cut_ids)] = 0
    labels[70:76, 95:101] = 7
    result = write_back(window, labels)
    added = table_of(out).loc[result.added[0]]
    # Reported in level-0 pixels: 36 label pixels of 2x2 level-0 pixels, centred at
    # label (73, 98) + window origin (128, 128), times 2.
    assert added.area_px == 144 and added.area_um2 == pytest.approx(144 * 0.25**2)
    assert (added.centroid_x_px, added.centroid_y_px) == (452.0, 402.0)
    sample = add_window_to_training_set(window, tmp_path / "set", result.labels)
    assert json.loads((sample / "sample.json").read_text())["mpp"] == pytest.approx(0.5)


@pytest.mark.slow
def test_train_learns_from_a_training_set_of_windows(predicted, tmp_path):
    pytest.importorskip("detectron2")
    from napari_nuclei.core.slide.training_windows import add_window_to_training_set

    training = tmp_path / "windows"
    add_window_to_training_set(pull_window(predicted, *REGION), training)
    run_dir = tmp_path / "run"
    result = subprocess.run([*CLI, "train", "--data", str(training), "--out", str(run_dir),
                             "--preset", "tiny", "--iters", "3", "--steps",
                             "--checkpoint-period", "3", "-q"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "training at 0.25 µm per pixel" in result.stderr
    assert json.loads((run_dir / "settings.json").read_text())["mpp"] == pytest.approx(0.25)
    assert (run_dir / "model_final.pth").is_file()


def test_the_slide_session_turns_drawn_rectangles_into_regions_and_finds_their_output(
        tmp_path):
    from napari_nuclei.session.slides import SlideSession

    state = SlideSession(lambda: tmp_path / "session")
    state.open(tmp_path / "case_01.svs", 0.25, (1000, 800))
    # World µm -> level-0 pixels, clipped to the slide, corners in any order.
    assert state.region_from_corners([(50, 300), (10, 20)]) == (80, 40, 920, 160)
    assert state.region_around((100, 100), side=200) == (300, 300, 200, 200)
    out = state.output_for((0, 0, 600, 600))
    assert out == tmp_path / "session" / "slides" / "case_01_x0_y0_600x600"
    state.predicted(out, (0, 0, 600, 600))
    assert state.output_holding((100, 100, 200, 200)) == out
    assert state.output_holding((500, 500, 200, 200)) is None
    whole = state.output_for(None)
    assert whole == tmp_path / "session" / "slides" / "case_01"
    state.predicted(whole, (0, 0, 1000, 800))
    assert state.output_holding((500, 500, 200, 200)) == whole


def test_autosaved_corrections_come_back_only_over_the_same_labels(output):
    from napari_nuclei.core.slide.window_autosave import (
        autosave_window,
        autosaved_labels,
        touched_nuclei,
    )

    window = pull_window(output, *REGION)
    labels, removed, grown, cut = edit(window)
    only_removed = window.original.copy()
    only_removed[only_removed == removed] = 0
    assert touched_nuclei(window, only_removed) == 1
    assert touched_nuclei(window, labels) >= 4  # removed, grown, drawn, cut (and any
    # nucleus the grown box or the stray cut pixels painted over)
    autosave_window(window, labels)
    again = pull_window(output, *REGION)
    np.testing.assert_array_equal(autosaved_labels(again), labels)
    write_back(again, labels)
    assert autosaved_labels(pull_window(output, *REGION)) is None  # spent
    autosave_window(window, labels)  # saved over the labels as they were before
    assert autosaved_labels(pull_window(output, *REGION)) is None
