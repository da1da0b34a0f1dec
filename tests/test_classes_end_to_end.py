"""Nucleus classes from every input layout, through training and prediction, into every
output, on a generated two-class set."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from class_helpers import (
    class_image,
    classes_per_nucleus,
    write_coco_classes,
    write_dsb_classes,
    write_label_classes,
)

from napari_nuclei.cli import main
from napari_nuclei.core.convert import iter_conversion
from napari_nuclei.core.dataset import open_dataset
from napari_nuclei.core.errors import DatasetError
from napari_nuclei.core.jobs import drain


def _coco_of(path):
    dataset = open_dataset(path)
    return dataset, drain(iter_conversion(dataset)).coco


def test_every_layout_gives_the_same_classes_to_the_same_nuclei(tmp_path):
    dsb, from_dsb = _coco_of(write_dsb_classes(tmp_path / "dsb"))
    labels, from_labels = _coco_of(write_label_classes(tmp_path / "labels"))
    coco, from_coco = _coco_of(write_coco_classes(tmp_path / "coco"))
    assert dsb.classes.names == labels.classes.names == ("lymphocyte", "tumor")
    # COCO keeps its own ids, in id order.
    assert coco.classes.ids == (3, 7) and coco.classes.names == ("lymphocyte", "tumor")
    expected = sorted((index + 1, int((class_image(index)[1] == label).sum()), name)
                      for index in range(3) for label, name in class_image(index)[2].items())
    assert classes_per_nucleus(from_dsb) == classes_per_nucleus(from_labels) == expected
    assert classes_per_nucleus(from_coco) == expected
    assert {c["name"] for c in from_dsb["categories"]} == {"lymphocyte", "tumor"}


def test_one_class_data_stays_the_one_nucleus_category(dsb_root):
    dataset, coco = _coco_of(dsb_root)
    assert dataset.classes.is_default
    assert coco["categories"] == [{"id": 1, "name": "nucleus"}]
    assert {a["category_id"] for a in coco["annotations"]} == {1}


def test_class_layout_mistakes_are_one_line_naming_the_file(tmp_path):
    root = write_dsb_classes(tmp_path / "dsb")
    stray = root / "train" / "img1" / "masks" / "stray.png"
    stray.write_bytes((root / "train" / "img1" / "masks" / "tumor").glob("*.png")
                      .__next__().read_bytes())
    with pytest.raises(DatasetError, match="mixes mask files and class folders"):
        open_dataset(root)

    folder = write_label_classes(tmp_path / "labels")
    table = folder / "img1_classes.csv"
    table.write_text("label,class\n1,tumor\n")
    with pytest.raises(DatasetError, match=r"img1_classes.csv: gives no class to label"):
        drain(iter_conversion(open_dataset(folder)))
    table.unlink()
    with pytest.raises(DatasetError, match="has no class table img1_classes.csv"):
        open_dataset(folder)

    path = write_coco_classes(tmp_path / "coco")
    document = json.loads(path.read_text())
    document["annotations"][4]["category_id"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(DatasetError, match=r"annotation 4: category_id 99 is not one of the "
                       r"file's categories \(3, 7\)"):
        open_dataset(path)


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """A tiny two-class run on the generated set, through the CLI."""
    pytest.importorskip("detectron2")
    base = tmp_path_factory.mktemp("classes")
    data = write_dsb_classes(base / "dsb", count=3)
    run_dir = base / "run"
    status = main(["train", "--data", str(data), "--out", str(run_dir), "--preset", "tiny",
                   "--iters", "4", "--checkpoint-period", "2", "--eval-period", "2",
                   "--val-fraction", "0.34", "--class-balance", "0.5", "--score-thresh", "0.05",
                   "--device", "cpu",
                   "-q"])
    assert status == 0
    return base, run_dir


def test_the_run_records_its_classes_and_its_heads_count_them(class_run):
    from napari_nuclei.core.models import load_model
    from napari_nuclei.core.runs import read_run

    _, run_dir = class_run
    settings = json.loads((run_dir / "settings.json").read_text())
    assert [c["name"] for c in settings["classes"]] == ["lymphocyte", "tumor"]
    assert read_run(run_dir).classes.names == ("lymphocyte", "tumor")
    model = load_model(run_dir, device="cpu", score_thresh=0.0)
    assert model.classes.names == ("lymphocyte", "tumor")
    assert model.cfg.MODEL.ROI_HEADS.NUM_CLASSES == 2
    raw = model.infer(np.ascontiguousarray(class_image(0)[0][:, :, ::-1]), resize=False)
    assert len(raw.scores) > 0
    assert raw.class_probs.shape == (len(raw.scores), 2)
    np.testing.assert_allclose(raw.class_probs.sum(axis=1), 1.0, rtol=1e-5)
    assert set(raw.classes.tolist()) <= {0, 1}
    # Each nucleus once: no two detections of different classes on the same nucleus.
    import torch
    from torchvision.ops import box_iou

    overlap = box_iou(torch.as_tensor(raw.boxes), torch.as_tensor(raw.boxes)).numpy()
    np.fill_diagonal(overlap, 0.0)
    assert overlap.max() <= model.cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST + 1e-6


def test_predict_hands_in_each_nucleus_with_its_class(class_run):
    base, run_dir = class_run
    images = base / "dsb" / "train" / "img0" / "images"
    out = base / "predicted"
    status = main(["predict", "--model", str(run_dir), "--images", str(images),
                   "-o", str(out / "submission.json"), "--labels-dir", str(out / "labels"),
                   "--measurements", str(out / "nuclei.csv"), "--geojson", str(out / "geo"),
                   "--score-thresh", "0.05", "--max-dets", "60", "--device", "cpu", "-q"])
    assert status == 0
    entries = json.loads((out / "submission.json").read_text())
    assert entries and {e["category_id"] for e in entries} <= {1, 2}
    with open(out / "labels" / "img0.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert {row["class"] for row in table} <= {"lymphocyte", "tumor"}
    assert all(0.0 <= float(row["class_probability"]) <= 1.0 for row in table)
    with open(out / "nuclei.csv", newline="") as fh:
        measured = list(csv.DictReader(fh))
    assert [row["class"] for row in measured] == [row["class"] for row in table]
    features = json.loads((out / "geo" / "img0.geojson").read_text())["features"]
    assert [f["properties"]["classification"]["name"] for f in features] == [
        row["class"] for row in table]
    assert all("class_probability" in f["properties"]["measurements"] for f in features)
    # The submission's categories follow the table's classes, nucleus for nucleus.
    by_class = {"lymphocyte": 1, "tumor": 2}
    assert sorted(e["category_id"] for e in entries) == sorted(
        by_class[row["class"]] for row in table)


def test_validation_reports_each_class_and_the_plot_draws_it(class_run):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from napari_nuclei.core.plots import TrainingPlot
    from napari_nuclei.core.training.reports import (
        checkpoint_metrics,
        class_aps,
        read_metrics,
    )

    _, run_dir = class_run
    evaluated = [r for r in read_metrics(run_dir) if r.val_metrics]
    assert evaluated
    assert all(set(class_aps(r.val_metrics)) == {"lymphocyte", "tumor"} for r in evaluated)
    assert all(0.0 <= v <= 1.0 for r in evaluated for v in class_aps(r.val_metrics).values())
    by_checkpoint = checkpoint_metrics(run_dir)
    assert set(class_aps(by_checkpoint["model_final.pth"])) == {"lymphocyte", "tumor"}
    plot = TrainingPlot(Figure())
    plot.update(read_metrics(run_dir))
    assert list(plot.class_lines) == ["lymphocyte", "tumor"]
    assert [t.get_text() for t in plot.lr_legend.get_texts()][-2:] == [
        "AP lymphocyte", "AP tumor"]


def test_class_balance_uses_detectron2s_repeat_factor_sampler(class_run):
    from napari_nuclei.core.runs import read_run, run_config

    _, run_dir = class_run
    cfg = run_config(read_run(run_dir))
    assert cfg.DATALOADER.SAMPLER_TRAIN == "RepeatFactorTrainingSampler"
    assert cfg.DATALOADER.REPEAT_THRESHOLD == 0.5
    assert main(["train", "--data", str(run_dir), "--out", str(run_dir.parent / "x"),
                 "--class-balance", "2", "-q"]) == 2


def test_qupath_geojson_written_here_reads_back_as_the_same_classed_nuclei(tmp_path):
    from class_helpers import write_geojson_classes

    dataset, coco = _coco_of(write_geojson_classes(tmp_path / "geo"))
    assert dataset.layout == "geojson" and dataset.classes.names == ("lymphocyte", "tumor")
    expected = sorted((index + 1, int((class_image(index)[1] == label).sum()), name)
                      for index in range(3) for label, name in class_image(index)[2].items())
    # Outlines along pixel edges give back each mask exactly (areas are pixel counts).
    assert classes_per_nucleus(coco) == expected


def test_qupath_objects_that_are_nuclei_and_those_that_are_not(tmp_path):
    from conftest import write_png

    square = [[[10, 10], [20, 10], [20, 20], [10, 20], [10, 10]]]
    holed = [[[30, 30], [50, 30], [50, 50], [30, 50], [30, 30]],
             [[35, 35], [45, 35], [45, 45], [35, 45], [35, 35]]]
    features = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
         "properties": {"objectType": "annotation", "classification": "Tumor"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": holed},
         "properties": {"objectType": "detection",
                        "classification": {"name": "Immune cells", "color": [1, 2, 3]}}},
        # A cell: its nucleus, not its cell outline.
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 50], [30, 50], [30, 63], [0, 63], [0, 50]]]},
         "properties": {"objectType": "cell", "classification": {"name": "Tumor"},
                        "nucleusGeometry": {"type": "Polygon", "coordinates": [
                            [[5, 55], [9, 55], [9, 59], [5, 59], [5, 55]]]}}},
        # A region around the tissue, unclassified: not a nucleus.
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [64, 0], [64, 64], [0, 64], [0, 0]]]},
         "properties": {"objectType": "annotation"}},
    ]
    write_png(tmp_path / "a.png", np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "a.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": features}))
    dataset, coco = _coco_of(tmp_path)
    assert dataset.classes.names == ("Immune cells", "Tumor")
    assert dataset.classes.classes[0].color == (160, 90, 160)  # QuPath's own colour
    assert classes_per_nucleus(coco) == [(1, 16, "Tumor"), (1, 100, "Tumor"),
                                         (1, 300, "Immune cells")]
    features[1]["geometry"] = {"type": "LineString", "coordinates": [[0, 0], [5, 5]]}
    (tmp_path / "a.geojson").write_text(json.dumps(features))
    with pytest.raises(DatasetError, match=r"a.geojson: feature 1: geometry is the string "
                       r"'LineString', not a Polygon"):
        open_dataset(tmp_path)
    features[1]["geometry"] = {"type": "Polygon", "coordinates": square}
    del features[1]["properties"]["classification"]
    (tmp_path / "a.geojson").write_text(json.dumps(features))
    with pytest.raises(DatasetError, match="feature 1 is an unclassified nucleus"):
        open_dataset(tmp_path)


def test_predict_slide_with_a_two_class_run(class_run, capsys):
    import pyarrow.parquet as pq
    from slide_helpers import make_slide

    base, run_dir = class_run
    slide = make_slide(base / "slide.tif", size=512, seed=3)
    out = base / "slides"
    status = main(["predict-slide", str(slide), "--model", str(run_dir), "-o", str(out),
                   "--tile-size", "256", "--overlap", "32", "--tissue", "none",
                   "--score-thresh", "0.05", "--device", "cpu", "-q"])
    assert status == 0
    table = pq.read_table(out / "slide" / "nuclei.parquet").to_pydict()
    assert table["id"] and set(table["class"]) <= {"lymphocyte", "tumor"}
    header, row = (out / "summary.csv").read_text().splitlines()[:2]
    assert header.endswith(",nuclei_lymphocyte,nuclei_tumor")
    counts = [int(v) for v in row.split(",")[-2:]]
    assert counts == [table["class"].count("lymphocyte"), table["class"].count("tumor")]
    assert "nuclei per class: lymphocyte" in capsys.readouterr().out


def test_evaluate_scores_the_predicted_classes_against_the_data(class_run, capsys):
    base, run_dir = class_run
    sample = base / "dsb" / "train" / "img0"
    out = base / "scored"
    assert main(["predict", "--model", str(run_dir), "--images", str(sample / "images"),
                 "-o", str(out / "submission.json"), "--score-thresh", "0.05",
                 "--max-dets", "60", "--device", "cpu", "-q"]) == 0
    assert main(["evaluate", "--gt", str(sample), "--pred", str(out / "submission.json"),
                 "-o", str(out / "metrics.json")]) == 0
    overall = json.loads((out / "metrics.json").read_text())["overall"]
    assert set(overall["per_class"]) == {"lymphocyte", "tumor"}
    gt_counts = {name: sum(1 for n in class_image(0)[2].values() if n == name)
                 for name in ("lymphocyte", "tumor")}
    assert {name: block["gt_nuclei"] for name, block in overall["per_class"].items()} == \
        gt_counts
    for key in ("mPQ", "bPQ", "class_accuracy"):
        assert key in overall
    printed = capsys.readouterr().out
    assert "lymphocyte" in printed and "mPQ" in printed


def test_a_model_of_classes_is_scored_as_one_class_against_ground_truth_without(tmp_path):
    from napari_nuclei.core.metrics import evaluate

    _, coco = _coco_of(write_coco_classes(tmp_path / "coco"))
    entries = [{"image_id": a["image_id"], "category_id": a["category_id"],
                "bbox": a["bbox"], "score": 0.9, "segmentation": a["segmentation"]}
               for a in coco["annotations"]]
    blind = {**coco, "categories": [{"id": 1, "name": "nucleus"}],
             "annotations": [{**a, "category_id": 1} for a in coco["annotations"]]}
    scored = evaluate(blind, entries)["overall"]
    assert scored["AP"] == pytest.approx(1.0) and scored["F1"] == pytest.approx(1.0)
    assert "per_class" not in scored
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(entries))
    (tmp_path / "gt.json").write_text(json.dumps(blind))
    assert main(["evaluate", "--gt", str(tmp_path / "gt.json"), "--pred", str(path)]) == 0


def test_export_numbers_classes_as_the_run_does(tmp_path):
    import tifffile

    from conftest import write_png
    from napari_nuclei.core.export import export_labels
    from napari_nuclei.core.nucleus_classes import ClassSet, NucleusClass

    image, labels, names = class_image(0)
    write_png(tmp_path / "images" / "img0.png", image)
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "labels" / "img0.tif", labels)
    rows = "".join(f"{label},0.9,{name}\n" for label, name in names.items())
    (tmp_path / "labels" / "img0.csv").write_text("label,score,class\n" + rows)
    dataset = open_dataset(tmp_path / "images")
    by_name = export_labels(tmp_path / "labels", dataset, tmp_path / "a.json", True)
    assert by_name[1] == len(names)
    run_order = ClassSet((NucleusClass(1, "tumor", (200, 0, 0)),
                          NucleusClass(2, "lymphocyte", (0, 130, 200))))
    export_labels(tmp_path / "labels", dataset, tmp_path / "b.json", True, classes=run_order)
    expected = {"lymphocyte": 1, "tumor": 2}, {"tumor": 1, "lymphocyte": 2}
    for path, ids in zip(("a.json", "b.json"), expected, strict=True):
        entries = json.loads((tmp_path / path).read_text())
        assert sorted(e["category_id"] for e in entries) == sorted(
            ids[name] for name in names.values())
    other = ClassSet.from_names(["dead", "tumor"])
    with pytest.raises(DatasetError, match="names the class 'lymphocyte', which the run "
                       "does not have"):
        export_labels(tmp_path / "labels", dataset, tmp_path / "c.json", True, classes=other)


def test_napari_writer_saves_a_layer_with_classes_as_coco_categories(tmp_path):
    import pandas as pd

    from napari_nuclei._writer import write_labels_coco

    _, labels, names = class_image(0)
    features = pd.DataFrame({"index": list(names), "class": list(names.values())})
    path = str(tmp_path / "layer.json")
    write_labels_coco(path, labels, {"name": "img0 nuclei", "features": features})
    coco = json.loads((tmp_path / "layer.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["lymphocyte", "tumor"]
    expected = sorted((1, int((labels == label).sum()), name) for label, name in names.items())
    assert classes_per_nucleus(coco) == expected
    write_labels_coco(path, labels, {"name": "plain"})  # no classes: the one category
    assert json.loads((tmp_path / "layer.json").read_text())["categories"] == [
        {"id": 1, "name": "nucleus"}]
    partial = features.iloc[1:]
    with pytest.raises(ValueError, match="layer.json: label 1 has no class"):
        write_labels_coco(path, labels, {"features": partial})
