"""Every file a user hands in passes one validation layer: bad input is one line, exit 2.

Each group builds its bad inputs here, runs the command line, and checks the one-line
message (file and problem), the exit status and that no output or temporary file is left.
"""

import json
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
import tifffile
from pycocotools import mask as mask_utils

from conftest import disk, write_dsb_sample, write_png
from napari_nuclei.cli import main
from napari_nuclei.core.convert import iter_conversion
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.image_io import read_mask
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.labels import iter_label_rles
from napari_nuclei.core.rle import encode_mask
from napari_nuclei.core.validate.limits import MAX_PIXELS_ENV
from napari_nuclei.core.validate.segmentation import compressed_runs

SHAPE = (30, 40)


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    """Limits set by --max-pixels / --max-json-mb in one test end with it."""
    from napari_nuclei.core.validate.limits import MAX_JSON_MB_ENV

    monkeypatch.setenv(MAX_PIXELS_ENV, "")
    monkeypatch.setenv(MAX_JSON_MB_ENV, "")


def fails(capsys, argv, fragment, named, outputs=()):
    """Exit status 2 with one line naming ``named`` and holding ``fragment``; none of
    ``outputs`` (nor a temporary file beside them) exists afterwards."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert fragment in err[0], err[0]
    assert str(named) in err[0], err[0]
    for output in outputs:
        assert not output.exists()
        assert not list(output.parent.glob(f".{output.name}*"))
    return err[0]


def nucleus_rle(center=(12, 15), radius=5, shape=SHAPE) -> dict:
    return encode_mask(disk(shape, center, radius))


@pytest.fixture
def coco_folder(tmp_path):
    """A folder with one 30x40 image and a COCO JSON of two nuclei (factory of variants)."""
    folder = tmp_path / "coco"
    write_png(folder / "img.png", np.zeros(SHAPE, np.uint8))

    def make(image=None, annotations=None, **document):
        image = {"id": 1, "file_name": "img.png", "height": 30, "width": 40,
                 **(image or {})}
        if annotations is None:
            annotations = [{"id": 1, "image_id": 1, "segmentation": nucleus_rle()},
                           {"id": 2, "image_id": 1,
                            "segmentation": nucleus_rle((22, 30), 4)}]
        data = {"images": [image], "annotations": annotations,
                "categories": [{"id": 1, "name": "nucleus"}], **document}
        path = folder / "ann.json"
        path.write_text(json.dumps(data))
        return path

    return make


@pytest.fixture
def scoring(tmp_path, coco_folder):
    """Ground truth (COCO JSON) and a factory writing a submission of changed entries."""
    gt = coco_folder()
    truth = json.loads(gt.read_text())["annotations"]

    def submission(change=None, data="default"):
        if data == "default":
            data = []
            for ann in truth:
                rle = ann["segmentation"]
                data.append({"image_id": 1, "category_id": 1, "score": 0.9,
                             "bbox": [float(v) for v in mask_utils.toBbox(
                                 {"size": rle["size"], "counts": rle["counts"].encode()})],
                             "segmentation": dict(rle)})
            if change:
                change(data[0])
        path = tmp_path / "pred.json"
        path.write_text(json.dumps(data))
        return path

    return gt, submission


# --- Silently wrong results --------------------------------------------------------------

def test_rgba_mask_with_opaque_alpha_reads_its_colour(tmp_path, capsys):
    nucleus = disk(SHAPE, (12, 15), 5)
    rgba = np.zeros((*SHAPE, 4), np.uint8)
    rgba[..., 3] = 255  # opaque everywhere: says nothing about the nucleus
    rgba[nucleus, :3] = 255
    write_png(tmp_path / "opaque.png", rgba)
    np.testing.assert_array_equal(read_mask(tmp_path / "opaque.png"), nucleus)
    painted = np.zeros((*SHAPE, 4), np.uint8)
    painted[nucleus, 3] = 255  # black shape on transparency: alpha is the mask
    write_png(tmp_path / "painted.png", painted)
    np.testing.assert_array_equal(read_mask(tmp_path / "painted.png"), nucleus)

    sample = write_dsb_sample(tmp_path / "ds" / "train", "s", np.zeros(SHAPE, np.uint8), [])
    write_png(sample / "masks" / "m.png", rgba)
    out = tmp_path / "out.json"
    assert main(["convert", str(tmp_path / "ds"), "-o", str(out), "-q"]) == 0
    (ann,) = json.loads(out.read_text())["annotations"]
    assert ann["area"] == nucleus.sum()


@pytest.mark.parametrize("segmentation, problem", [
    ({"size": [30, 40], "counts": [100, 20, 50]}, "RLE runs cover 170 pixels, not the 30x40"),
    ({"size": [30, 41], "counts": [1230]}, "RLE size 30x41 differs from the image (30x40)"),
    ({"size": [30, 40], "counts": [1100, True, 99]}, "uncompressed RLE counts must be a list of "
                                                     "integers"),
    ({"size": [30, 40], "counts": 1200}, "RLE counts must be a string or a list"),
])
def test_uncompressed_rle_must_cover_its_image(coco_folder, tmp_path, capsys,
                                               segmentation, problem):
    ann = coco_folder(annotations=[{"id": 1, "image_id": 1, "segmentation": segmentation}])
    out = tmp_path / "out.json"
    fails(capsys, ["convert", ann, "-o", out], f"annotation 0: {problem}", ann, [out])


def test_compressed_rle_running_past_the_image_is_refused(coco_folder, tmp_path, capsys):
    too_long = mask_utils.encode(np.asfortranarray(np.ones((31, 40), np.uint8)))
    bad = {"size": [30, 40], "counts": too_long["counts"].decode()}
    ann = coco_folder(annotations=[{"id": 1, "image_id": 1, "segmentation": bad}])
    out = tmp_path / "out.json"
    fails(capsys, ["convert", ann, "-o", out], "RLE runs cover 1,240 pixels, not the 30x40",
          ann, [out])
    # The same ground truth in evaluate: refused before pycocotools reads past its buffer.
    pred = tmp_path / "pred.json"
    pred.write_text("[]")
    fails(capsys, ["evaluate", "--gt", ann, "--pred", pred, "-o", out],
          "annotation 0: RLE runs cover 1,240 pixels", ann, [out])


def test_compressed_runs_equal_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(20):
        shape = tuple(rng.integers(1, 300, 2))
        mask = rng.random(shape) < rng.random()
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        runs = compressed_runs(rle["counts"].decode())
        values = np.repeat(np.arange(len(runs)) % 2, runs).astype(bool)
        np.testing.assert_array_equal(values.reshape(shape[::-1]).T, mask)


def test_iscrowd_regions_are_ignore_regions_not_nuclei(coco_folder, tmp_path, capsys):
    crowd = {"size": [30, 40], "counts": [1140, 60]}  # the last two columns
    ann = coco_folder(annotations=[
        {"id": 1, "image_id": 1, "segmentation": nucleus_rle()},
        {"id": 2, "image_id": 1, "segmentation": crowd, "iscrowd": 1}])
    # Training data never holds the crowd region as a nucleus.
    conversion = drain(iter_conversion(open_dataset(ann)))
    assert [a["iscrowd"] for a in conversion.coco["annotations"]] == [0]
    assert any("iscrowd region(s) are COCO ignore regions" in w for w in conversion.warnings)
    # A converted file keeps it, marked, for evaluation.
    out = tmp_path / "out.json"
    assert main(["convert", str(ann), "-o", str(out), "-q"]) == 0
    assert "ignore regions, not nuclei: never trained on" in capsys.readouterr().err
    assert [a["iscrowd"] for a in json.loads(out.read_text())["annotations"]] == [0, 1]
    # A detection inside the crowd region is no false positive.
    inside = encode_mask(np.pad(np.ones((30, 2), bool), ((0, 0), (38, 0))))
    entries = [{"image_id": 1, "category_id": 1, "score": s, "bbox": mask_utils.toBbox(
        {"size": r["size"], "counts": r["counts"].encode()}).tolist(), "segmentation": r}
        for r, s in ((nucleus_rle(), 0.9), (inside, 0.8))]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(entries))
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", "--gt", str(out), "--pred", str(pred), "-o", str(metrics)]) == 0
    assert "iscrowd region(s) of the ground truth are ignore regions" in capsys.readouterr().err
    overall = json.loads(metrics.read_text())["overall"]
    assert overall["precision"] == 1.0 and overall["AP"] == pytest.approx(1.0)
    assert overall["gt_nuclei"] == 1


@pytest.mark.parametrize("change, problem", [
    (lambda e: e.update(image_id="1"), "entry 0: image_id is the string '1'; image ids are "
                                       "integers"),
    (lambda e: e.update(image_id=True), "entry 0: image_id must be an integer, not true"),
    (lambda e: e.update(image_id=[1]), "entry 0: image_id must be an integer, not a list"),
    (lambda e: e.update(score=True), "entry 0: score must be a number, not true"),
    (lambda e: e.update(category_id=True), "entry 0: category_id must be an integer, not true"),
    (lambda e: e.update(bbox="0 0 1 1"), "entry 0: bbox must be a list [x, y, width, height]"),
    (lambda e: e.update(bbox=7), "entry 0: bbox must be a list"),
    (lambda e: e["segmentation"].update(counts=5), "entry 0: RLE counts must be a string, not 5"),
    (lambda e: e["segmentation"].update(counts=e["segmentation"]["counts"] + "0"),
     "entry 0: RLE runs cover"),
    (lambda e: e["segmentation"].update(counts="PPPPPPPPP1"), "longer than any image"),
    (lambda e: e["segmentation"].update(size=[30, True]), "RLE width must be an integer"),
])
def test_submission_entries_are_checked(scoring, tmp_path, capsys, change, problem):
    gt, submission = scoring
    pred = submission(change)
    out = tmp_path / "metrics.json"
    fails(capsys, ["evaluate", "--gt", gt, "--pred", pred, "-o", out], problem, pred, [out])


@pytest.mark.parametrize("data, problem", [
    ({"detections": []}, "a submission must be a JSON list of detections, not an object"),
    (["a", "b"], "entry 0: is the string 'a', not a detection object"),
    ([[1, 2]], "entry 0: is a list of 2, not a detection object"),
    (None, "not null"),
])
def test_submission_must_be_a_list_of_objects(scoring, tmp_path, capsys, data, problem):
    gt, submission = scoring
    pred = submission(data=data)
    out = tmp_path / "metrics.json"
    fails(capsys, ["evaluate", "--gt", gt, "--pred", pred, "-o", out], problem, pred, [out])


def test_submission_of_other_images_only_is_refused(scoring, tmp_path, capsys):
    gt, submission = scoring
    pred = submission(lambda e: None)
    entries = json.loads(pred.read_text())
    for entry in entries:
        entry["image_id"] = 5
    pred.write_text(json.dumps(entries))
    fails(capsys, ["evaluate", "--gt", gt, "--pred", pred], "none of its image ids", pred)


def test_valid_submission_still_scores(scoring, capsys):
    gt, submission = scoring
    assert main(["evaluate", "--gt", str(gt), "--pred", str(submission())]) == 0
    assert "overall" in capsys.readouterr().out


def test_export_refuses_missing_or_unmatched_labels(test_folder, tmp_path, capsys):
    out = tmp_path / "out" / "sub.json"
    missing = tmp_path / "nowhere"
    fails(capsys, ["export", "--labels", missing, "--images", test_folder, "--submission",
                   "-o", out], "no such label image or folder", missing, [out])
    unrelated = tmp_path / "labels"
    unrelated.mkdir()
    tifffile.imwrite(unrelated / "other.tif", np.ones((5, 5), np.int32))
    fails(capsys, ["export", "--labels", unrelated, "--images", test_folder, "--submission",
                   "-o", out], "holds no label image of the images of", unrelated, [out])
    fails(capsys, ["export", "--labels", unrelated / "other.tif", "--images", test_folder,
                   "-o", out], "matches no image of", unrelated / "other.tif", [out])


def test_predict_refuses_test_ids_whose_size_disagrees(test_folder, tmp_path, capsys):
    ids_path = test_folder / "test_img_ids.json"
    ids = json.loads(ids_path.read_text())
    ids[1]["width"] = 41
    elsewhere = tmp_path / "ids.json"
    elsewhere.write_text(json.dumps(ids))
    out = tmp_path / "sub.json"
    # Explicit --test-ids: refused before any model is loaded (this model does not exist).
    fails(capsys, ["predict", "--model", tmp_path / "no-model", "--images", test_folder,
                   "--test-ids", elsewhere, "-o", out],
          "entry 1: declares x.png as 30x41 (height x width) but the image is 30x40",
          elsewhere, [out])
    ids_path.write_text(json.dumps(ids))  # the folder's own file, as convert refuses it
    fails(capsys, ["predict", "--model", tmp_path / "no-model", "--images", test_folder,
                   "-o", out], "declares x.png as 30x41", ids_path, [out])


# --- Paths outside the dataset -----------------------------------------------------------

@pytest.mark.parametrize("name, problem", [
    ("../secret.png", "points outside the dataset folder"),
    ("a/../../secret.png", "points outside the dataset folder"),
    ("/etc/passwd", "is an absolute path"),
    ("link.png", "is a symbolic link to"),
])
def test_file_names_stay_inside_the_dataset(test_folder, coco_folder, tmp_path, capsys,
                                            name, problem):
    secret = write_png(tmp_path / "secret.png", np.zeros((50, 20), np.uint8))
    (test_folder / "link.png").symlink_to(secret)
    (coco_folder().parent / "link.png").symlink_to(secret)
    ids_path = test_folder / "test_img_ids.json"
    ids = json.loads(ids_path.read_text())
    ids[0]["file_name"] = name
    ids_path.write_text(json.dumps(ids))
    out = tmp_path / "out.json"
    fails(capsys, ["convert", test_folder, "-o", out], f"entry 0: file_name {name!r} {problem}"
          if name != "link.png" else problem, ids_path, [out])
    ann = coco_folder(image={"file_name": name, "height": 50, "width": 20}, annotations=[])
    fails(capsys, ["convert", ann, "-o", out], problem, ann, [out])


# --- Tracebacks turned into one line ------------------------------------------------------

@pytest.mark.parametrize("change, problem", [
    (lambda e: e.update(file_name=None), "entry 0: file_name must be a string, not null"),
    (lambda e: e.update(file_name=12), "entry 0: file_name must be a string, not 12"),
    (lambda e: e.update(id=[7]), "entry 0: id must be an integer, not a list of 1"),
    (lambda e: e.update(id=True), "entry 0: id must be an integer, not true"),
    (lambda e: e.update(height=50.0), "entry 0: height must be an integer, not 50.0"),
    (lambda e: e.update(width=0), "entry 0: width must be at least 1, not 0"),
    (lambda e: e.update(file_name="y\x00.png"), "holds control characters"),
    (lambda e: e.update(file_name="\ud800.png"), "is not a valid file name here"),
    (lambda e: e.update(file_name="./x.png"), "entry 1: x.png appears twice"),
])
def test_test_ids_fields_are_checked(test_folder, tmp_path, capsys, change, problem):
    ids_path = test_folder / "test_img_ids.json"
    ids = json.loads(ids_path.read_text())
    change(ids[0])
    ids_path.write_text(json.dumps(ids))
    out = tmp_path / "out.json"
    fails(capsys, ["convert", test_folder, "-o", out], problem, ids_path, [out])


@pytest.mark.parametrize("annotation, problem", [
    ({"image_id": [1], "segmentation": []}, "image_id must be an integer, not a list"),
    ({"image_id": True, "segmentation": []}, "image_id must be an integer, not true"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5]]}, "polygon 0 has 4 coordinates"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, 9]]}, "polygon 0 has 5 coordinates"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, "9", 2]]}, "polygon 0 must hold numbers only"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, True, 2]]}, "polygon 0 must hold numbers"),
    ({"image_id": 1, "segmentation": [[0, 0, 1e9, 0, 0, 1e9]]},
     "polygon 0 reaches outside the 30x40"),
    ({"image_id": 1, "segmentation": []}, "segmentation is an empty list of polygons"),
    ({"image_id": 1, "segmentation": "1 2 3"}, "segmentation must be a list of polygons or"),
    ({"image_id": 1, "segmentation": {"size": [30, 40], "counts": 1200}},
     "RLE counts must be a string or a list"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, 1, 9]], "bbox": 3}, "bbox must be a list"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, 1, 9]], "iscrowd": True},
     "iscrowd must be an integer, not true"),
    ({"image_id": 1, "segmentation": [[1, 1, 5, 5, 1, 9]], "iscrowd": 2},
     "iscrowd 2 is larger than 1"),
    ({"image_id": 3, "segmentation": []}, "image_id 3 is not an image of the file"),
    ("nucleus", "annotation must be an object, not the string 'nucleus'"),
])
def test_coco_annotations_are_checked(coco_folder, tmp_path, capsys, annotation, problem):
    ann = coco_folder(annotations=[annotation])
    out = tmp_path / "out.json"
    fails(capsys, ["convert", ann, "-o", out], f"annotation 0: {problem}", ann, [out])


@pytest.mark.parametrize("image, problem", [
    ({"file_name": None}, "image entry 0: file_name must be a string, not null"),
    ({"file_name": 3}, "image entry 0: file_name must be a string, not 3"),
    ({"id": "1"}, "image entry 0: id must be an integer, not the string '1'"),
    ({"height": 31}, "image entry 0: declares img.png as 31x40"),
])
def test_coco_images_are_checked(coco_folder, tmp_path, capsys, image, problem):
    ann = coco_folder(image=image, annotations=[])
    out = tmp_path / "out.json"
    fails(capsys, ["convert", ann, "-o", out], problem, ann, [out])


def test_deeply_nested_json_is_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    out = tmp_path / "m.json"
    result = subprocess.run(
        [sys.executable, "-m", "napari_nuclei.cli", "evaluate", "--gt", str(deep), "--pred",
         str(deep), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"napari-nuclei: error: {deep}: not valid input: JSON "
                                     "nested too deeply")
    assert not out.exists()


@pytest.mark.parametrize("text, problem", [
    ('[{"id": NaN}]', "NaN is not a JSON value"),
    ('[{"id": ' + "9" * 5000 + "}]", "not valid JSON"),
    ("\xff", "not UTF-8 text"),
])
def test_json_that_python_would_bend_is_refused(test_folder, tmp_path, capsys, text, problem):
    ids_path = test_folder / "test_img_ids.json"
    ids_path.write_bytes(text.encode("latin-1"))
    fails(capsys, ["convert", test_folder, "-o", tmp_path / "o.json"], problem, ids_path)


def test_json_file_size_limit(test_folder, tmp_path, capsys):
    ids_path = test_folder / "test_img_ids.json"
    ids_path.write_text(ids_path.read_text() + " " * (2 * 2**20))
    out = tmp_path / "o.json"
    fails(capsys, ["convert", test_folder, "-o", out, "--max-json-mb", "1"],
          "larger than the limit of 1 MB (raise it with --max-json-mb", ids_path, [out])


def test_score_table_is_checked(test_folder, tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    tifffile.imwrite(labels / "x.tif", np.pad(np.ones((5, 5), np.int32), ((0, 25), (0, 35))))
    out = tmp_path / "sub.json"
    for rows, problem in (("label,score\n1,nan\n", "line 2: score must be finite"),
                          ("label,score\n1,0.5\n1,0.7\n", "line 3: label 1 appears twice"),
                          ("label,score\ntrue,0.5\n", "line 2: label 'true' is not a positive"),
                          ("label,area\n1,3\n", "no score column")):
        (labels / "x.csv").write_text(rows)
        fails(capsys, ["export", "--labels", labels, "--images", test_folder, "--submission",
                       "-o", out], problem, labels / "x.csv", [out])


# --- Memory bombs ----------------------------------------------------------------------

def test_ground_truth_declaring_a_huge_image_is_refused(scoring, tmp_path, capsys):
    gt, submission = scoring
    pred = submission()
    huge = tmp_path / "huge_gt.json"
    huge.write_text(json.dumps({"images": [{"id": 1, "file_name": "gone.png",
                                            "height": 200_000, "width": 200_000}],
                                "annotations": []}))
    out = tmp_path / "m.json"
    fails(capsys, ["evaluate", "--gt", huge, "--pred", pred, "-o", out],
          "image entry 0: declared image of 200000x200000 pixels is larger than the limit of "
          "100,000,000 pixels (raise it with --max-pixels)", huge, [out])
    # The limit is the user's to set, and declared sizes are checked against real images.
    fails(capsys, ["evaluate", "--gt", gt, "--pred", pred, "--max-pixels", "1000"],
          "declared image of 30x40 pixels is larger than the limit of 1,000", gt)
    assert main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--max-pixels",
                 "1200"]) == 0


def test_rle_size_is_capped_when_nothing_declares_it(scoring, capsys):
    gt, submission = scoring
    pred = submission()
    entries = json.loads(pred.read_text())
    entries.append({**entries[0], "image_id": 9,
                    "segmentation": {"size": [40_000, 40_000], "counts": "0"}})
    pred.write_text(json.dumps(entries))
    fails(capsys, ["evaluate", "--gt", gt, "--pred", pred],
          "entry 2: RLE of 40000x40000 pixels is larger than the limit", pred)


def test_small_png_declaring_a_huge_image_is_refused_unread(tmp_path, capsys):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000,
                                                               8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    sample = write_dsb_sample(tmp_path / "ds" / "train", "s", np.zeros(SHAPE, np.uint8), [])
    mask = sample / "masks" / "m.png"
    mask.parent.mkdir()
    mask.write_bytes(bomb)
    out = tmp_path / "out.json"
    fails(capsys, ["convert", tmp_path / "ds", "-o", out, "-q"],
          "image of 100000x100000 pixels is larger than the limit", mask, [out])
    image = sample / "images" / "s.png"
    image.write_bytes(bomb)
    fails(capsys, ["convert", tmp_path / "ds", "-o", out, "-q"],
          "image of 100000x100000 pixels is larger than the limit", image, [out])


def test_sparse_label_ids_do_not_size_the_work(tmp_path):
    labels = np.zeros(SHAPE, np.uint32)
    labels[3:8, 4:9] = 2**31 - 1
    labels[20:25, 30:35] = 5
    tracemalloc.start()
    found = dict(iter_label_rles(labels))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sorted(found) == [5, 2**31 - 1]
    assert peak < 10 * 2**20  # one entry per id up to 2**31 would take gigabytes
    assert mask_utils.area(
        {"size": [30, 40], "counts": found[2**31 - 1]["counts"].encode()}) == 25

    folder = tmp_path / "labelled"
    write_png(folder / "x.png", np.zeros(SHAPE, np.uint8))
    tifffile.imwrite(folder / "x_labels.tif", labels, compression="zlib")
    out = tmp_path / "out.json"
    assert main(["convert", str(folder), "-o", str(out), "-q"]) == 0
    assert len(json.loads(out.read_text())["annotations"]) == 2
    out_dir = tmp_path / "labels"
    out_dir.mkdir()
    tifffile.imwrite(out_dir / "x.tif", labels.astype(np.int32))
    sub = tmp_path / "sub.json"
    ids = [{"id": 3, "file_name": "x.png", "height": 30, "width": 40}]
    (folder / "test_img_ids.json").write_text(json.dumps(ids))
    (folder / "x_labels.tif").unlink()
    assert main(["export", "--labels", str(out_dir), "--images", str(folder), "--submission",
                 "-o", str(sub)]) == 0
    assert len(json.loads(sub.read_text())) == 2


def test_pixel_limit_reaches_worker_processes():
    from napari_nuclei.cli import build_parser
    from napari_nuclei.core.validate import apply_limit_options, max_pixels

    args = build_parser().parse_args(["convert", "x", "-o", "y", "--max-pixels", "5000"])
    apply_limit_options(args)
    assert max_pixels() == 5000
    # Spawned workers (convert's process pool) read the same limit.
    code = "from napari_nuclei.core.validate import max_pixels; print(max_pixels())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "5000"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_header_sizes_equal_the_decoded_image(tmp_path, suffix):
    import cv2

    from napari_nuclei.core.image_io import image_size, read_image
    from napari_nuclei.core.validate.image_header import declared_shape

    path = tmp_path / f"img{suffix}"
    pixels = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    if suffix == ".tif":
        tifffile.imwrite(path, pixels)
    else:
        assert cv2.imwrite(str(path), pixels)
    assert declared_shape(path)[:2] == (37, 53)
    assert image_size(path) == read_image(path).shape[:2] == (37, 53)


def _dense_match_reference(gt, pred):
    """The straightforward n_gt x n_pred table, for small images only."""
    gt_ids, pred_ids = np.unique(gt), np.unique(pred)
    gt_ids, pred_ids = gt_ids[gt_ids > 0], pred_ids[pred_ids > 0]
    inter = np.array([[np.sum((gt == a) & (pred == b)) for b in pred_ids] for a in gt_ids],
                     dtype=np.int64).reshape(len(gt_ids), len(pred_ids))
    gt_area = np.array([np.sum(gt == a) for a in gt_ids], dtype=np.int64)
    pred_area = np.array([np.sum(pred == b) for b in pred_ids], dtype=np.int64)
    union = gt_area[:, None] + pred_area[None, :] - inter
    iou = inter / np.maximum(union, 1)
    tp = int((iou > 0.5).sum())
    aji_i = aji_u = 0
    used = np.zeros(len(pred_ids), bool)
    for row in range(len(gt_ids)):
        if len(pred_ids) and inter[row].max() > 0:
            best = int(np.argmax(iou[row]))
            aji_i += int(inter[row, best])
            aji_u += int(union[row, best])
            used[best] = True
        else:
            aji_u += int(gt_area[row])
    aji_u += int(pred_area[~used].sum())
    return tp, len(pred_ids) - tp, len(gt_ids) - tp, float(iou[iou > 0.5].sum()), aji_i, aji_u


def test_nucleus_matching_equals_the_dense_table():
    from napari_nuclei.core.metrics import match_labels

    rng = np.random.default_rng(3)
    for _ in range(30):
        shape = tuple(rng.integers(5, 40, 2))
        gt = rng.integers(0, rng.integers(1, 8), shape) * rng.integers(1, 3)
        pred = rng.integers(0, rng.integers(1, 8), shape) + rng.integers(0, 2)
        counts = match_labels(gt, pred)
        tp, fp, fn, matched_iou, aji_i, aji_u = _dense_match_reference(gt, pred)
        assert (counts.tp, counts.fp, counts.fn) == (tp, fp, fn)
        assert counts.matched_iou == pytest.approx(matched_iou)
        assert (counts.aji_intersection, counts.aji_union) == (aji_i, aji_u)


def test_many_tiny_nuclei_do_not_size_the_matching_by_their_product():
    from napari_nuclei.core.metrics import match_labels

    # Every pixel its own nucleus on both sides: a dense table would be 90,000^2 entries.
    gt = np.arange(1, 300 * 300 + 1, dtype=np.int32).reshape(300, 300)
    pred = gt.T.copy()
    tracemalloc.start()
    counts = match_labels(gt, pred)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert counts.tp == 90_000 and counts.fp == counts.fn == 0  # same pixels, renumbered
    assert peak < 100 * 2**20
