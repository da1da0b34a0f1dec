"""predict-slide end to end with a real (tiny) model: in-process, stopped and resumed, and
on a local Dask cluster of two workers give the same nuclei."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from slide_helpers import make_slide

CLI = [sys.executable, "-m", "napari_nuclei.cli", "predict-slide"]

pytestmark = pytest.mark.slow


def predict_slide(*args, timeout=900):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def labels_of(folder):
    import zarr

    return zarr.open_group(str(folder / "nuclei.ome.zarr"), mode="r")["s0"][:]


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("slides") / "case_02.tif", size=768, seed=1)


@pytest.fixture(scope="module")
def in_process_run(tiny_run, slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("in_process")
    result = predict_slide(slide, "--model", tiny_run[0], "-o", out, "--threads", "1",
                           "--csv", "--gzip", "-q")
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.fixture(scope="module")
def in_process(in_process_run):
    return in_process_run[0]


def test_each_slide_line_names_the_files_written(in_process_run):
    out, result = in_process_run
    lines = result.stdout.splitlines()
    written = [line for line in lines if line.strip().startswith("wrote ") and "case_02" in line]
    assert written, result.stdout
    for name in ("nuclei.ome.zarr", "nuclei.parquet", "nuclei.csv", "nuclei.geojson.gz",
                 "tissue.png"):
        assert name in written[0]
        assert (out / "case_02" / name).exists()


def test_run_records_its_largest_nucleus_and_unknown_pixel_size(tiny_run):
    facts = json.loads((tiny_run[0] / "settings.json").read_text())
    coco = json.loads((tiny_run[0] / "train_annotations.json").read_text())
    largest = max(max(a["bbox"][2:]) for a in coco["annotations"])
    assert facts["largest_nucleus_px"] == largest > 0
    assert facts["mpp"] is None  # unknown stays unknown without train --mpp


def test_real_model_writes_every_output(in_process):
    import gzip

    import pyarrow.parquet as pq
    import shapely

    folder = in_process / "case_02"
    table = pq.read_table(folder / "nuclei.parquet")
    features = json.loads(gzip.decompress((folder / "nuclei.geojson.gz").read_bytes()))
    features = features["features"]
    assert len(features) == table.num_rows > 0
    # Overlapping detections are resolved once: the table lists the label image's nuclei.
    visible = np.unique(labels_of(folder))[1:]
    assert set(visible.tolist()) == set(table.column("id").to_pylist())
    assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in features)
    summary = (in_process / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("slide,output,tissue_mm2,tiles")
    assert summary[1].split(",")[6] == str(table.num_rows)


def test_stopped_and_resumed_run_gives_the_same_nuclei(tiny_run, slide, in_process,
                                                        tmp_path):
    out = tmp_path / "stopped"
    args = [*CLI, str(slide), "--model", str(tiny_run[0]), "-o", str(out), "--threads", "1",
            "--csv", "--gzip", "-q"]
    # Ctrl-C reaches the command even when the tests run where SIGINT is ignored (a
    # background job of a shell).
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    records = out / "case_02" / "job" / "records"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        # Stop as soon as a tile is recorded: the tiny model predicts the others quickly.
        if records.is_dir() and any(records.glob("*.npz")):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "run the same command to continue" in stderr
    assert not (out / "case_02" / "nuclei.parquet").exists()
    done_before = len(list(records.glob("*.npz")))
    result = subprocess.run(args, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "continuing the job" in result.stderr
    np.testing.assert_array_equal(labels_of(out / "case_02"), labels_of(in_process / "case_02"))
    assert ((out / "case_02" / "nuclei.csv").read_text()
            == (in_process / "case_02" / "nuclei.csv").read_text())
    assert done_before >= 1


def test_two_dask_workers_give_the_same_nuclei(tiny_run, slide, in_process, tmp_path):
    out = tmp_path / "dask"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*CLI, str(slide), "--model", str(tiny_run[0]), "-o", str(out), "--workers", "2",
         "--block", "2", "--csv", "--gzip", "-q"],
        capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(labels_of(out / "case_02"), labels_of(in_process / "case_02"))
    assert ((out / "case_02" / "nuclei.csv").read_text()
            == (in_process / "case_02" / "nuclei.csv").read_text())


def test_a_batch_of_tiles_gives_what_each_tile_gives_alone(tiny_run):
    import torch

    from conftest import SAMPLE_DATA
    from napari_nuclei.core.image_io import read_image
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.normalize import to_model_input

    torch.set_num_threads(1)
    # A cap above the mask head's chunk, so that the chunked head sees a batch.
    model = load_model(tiny_run[0], device="cpu", score_thresh=0.0, max_dets=150)
    image = to_model_input(read_image(SAMPLE_DATA / "test" / "he_tile_1000.png"))
    tiles = [np.ascontiguousarray(image[:384, :384]),
             np.ascontiguousarray(image[300:684, 500:884])]
    alone = [model.infer(tile, resize=False) for tile in tiles]
    batched = model.infer_batch(tiles, resize=False)
    for one, many in zip(alone, batched, strict=True):
        assert len(one.scores) == len(many.scores) == 150
        # Batched convolutions round differently in the last bits, nothing more.
        np.testing.assert_allclose(many.boxes, one.boxes, atol=0.01)
        np.testing.assert_allclose(many.scores, one.scores, atol=1e-4)
        np.testing.assert_allclose(many.mask_probs.numpy(), one.mask_probs.numpy(), atol=1e-3)


def test_batches_of_tiles_give_the_same_nuclei(tiny_run, slide, in_process, tmp_path):
    import pyarrow.csv as pcsv

    out = tmp_path / "batched"
    result = predict_slide(slide, "--model", tiny_run[0], "-o", out, "--threads", "1",
                           "--batch-size", "2", "--csv", "--gzip", "-q")
    assert result.returncode == 0, result.stderr
    batched = pcsv.read_csv(out / "case_02" / "nuclei.csv").to_pandas()
    alone = pcsv.read_csv(in_process / "case_02" / "nuclei.csv").to_pandas()
    assert batched.id.tolist() == alone.id.tolist()
    for column in ("centroid_x_px", "centroid_y_px", "area_px", "score"):
        np.testing.assert_allclose(batched[column], alone[column], atol=0.02, rtol=0.01)
    same = labels_of(out / "case_02") == labels_of(in_process / "case_02")
    assert same.mean() > 0.999


def test_predict_writes_measurements_and_geojson_for_ordinary_images(tiny_run, tmp_path):
    import pyarrow.parquet as pq
    import shapely

    from conftest import SAMPLE_DATA

    result = subprocess.run(
        [sys.executable, "-m", "napari_nuclei.cli", "predict", "--model", str(tiny_run[0]),
         "--images", str(SAMPLE_DATA / "test"), "-o", str(tmp_path / "submission.json"),
         "--measurements", str(tmp_path / "nuclei.parquet"), "--geojson",
         str(tmp_path / "geojson"), "-q"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "nuclei.parquet").to_pandas()
    submission = json.loads((tmp_path / "submission.json").read_text())
    assert len(table) == len(submission)
    for name in ("fluo_r1c1", "he_tile_1000"):
        features = json.loads((tmp_path / "geojson" / f"{name}.geojson").read_text())
        features = features["features"]
        assert len(features) == (table.image == name).sum()
        assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in features)
    assert "hematoxylin_od" in table.columns
