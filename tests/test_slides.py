"""Whole slides with a stand-in model: reading, tissue, stitching, outputs, resuming."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from slide_helpers import BlobModel, he_tile, make_slide

from napari_nuclei.core.errors import InputError, OptionError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.predict.paste import paste_in_box
from napari_nuclei.core.slide.engine import SlideOptions, TileDone, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.pixel_size import resolve_pixel_size
from napari_nuclei.core.slide.reader import SlideError, open_slide
from napari_nuclei.core.slide.tissue import make_overview

CLI = [sys.executable, "-m", "napari_nuclei.cli"]
OVERLAP = 32  # narrower than the largest blobs of the slide


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("slides") / "case_01.tif")


@pytest.fixture(scope="module")
def predicted(slide, tmp_path_factory):
    """One uninterrupted run with every output."""
    out = tmp_path_factory.mktemp("out") / "case_01"
    options = SlideOptions(overlap=OVERLAP, outputs=OutputOptions(csv=True, gzip=True))
    reports = []
    result = drain(iter_predict_slide(BlobModel(), slide, out, options), reports.append)
    return result, reports


def labels_of(out_dir):
    import zarr

    return zarr.open_group(str(out_dir / "nuclei.ome.zarr"), mode="r")["s0"][:]


def test_generated_slide_has_a_pyramid_and_pixel_size_in_every_reader(slide):
    readers = ["tiffslide"]
    try:
        import openslide  # noqa: F401

        readers.append("openslide")
    except ImportError:
        pass
    for backend in readers:
        with open_slide(slide, backend=backend) as opened:
            assert opened.backend == backend
            assert [(lv.width, lv.height) for lv in opened.levels] == [(1024, 1024), (512, 512)]
            assert opened.mpp == pytest.approx(0.25)
            region = opened.read(0, 1000, 1000, 64, 64)  # past the corner: padded white
            assert region.shape == (64, 64, 3) and region.dtype == np.uint8
            assert (region[40:, 40:] == 255).all()
    with open_slide(slide) as a, open_slide(slide, backend="image") as b:
        np.testing.assert_array_equal(a.read(0, 300, 200, 100, 80), b.read(0, 300, 200, 100, 80))


def test_plain_png_and_ome_zarr_images_are_slides(tmp_path):
    import zarr
    from ome_zarr.writer import write_image

    from conftest import write_png

    image = he_tile()[:300, :400]
    png = write_png(tmp_path / "small.png", image)
    with open_slide(png) as opened:
        assert (opened.width, opened.height, opened.mpp) == (400, 300, None)
        np.testing.assert_array_equal(opened.read(0, 10, 20, 30, 40), image[20:60, 10:40])
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    write_image(np.moveaxis(image, -1, 0), group, axes="cyx", scaler=None,
                coordinate_transformations=[[{"type": "scale", "scale": [1, 0.5, 0.5]}]])
    with open_slide(tmp_path / "img.ome.zarr") as opened:
        assert (opened.width, opened.height) == (400, 300)
        np.testing.assert_array_equal(opened.read(0, 10, 20, 30, 40), image[20:60, 10:40])


def test_bad_slides_and_regions_give_one_line(tmp_path, slide):
    not_a_slide = tmp_path / "notes.tif"
    not_a_slide.write_text("not an image")
    with pytest.raises(SlideError, match="not a slide or image.*supported: pyramidal TIFF"):
        open_slide(not_a_slide)
    with pytest.raises(SlideError, match="no such slide"):
        open_slide(tmp_path / "missing.svs")
    with open_slide(slide) as opened:
        with pytest.raises(SlideError, match="level 5 does not exist"):
            opened.read(5, 0, 0, 10, 10)
        with pytest.raises(SlideError, match="lies outside level 0"):
            opened.read(0, 5000, 0, 10, 10)
        with pytest.raises(InputError, match="lies outside the slide"):
            make_overview(opened, opened.mpp, region=(2000, 0, 10, 10))


def test_undecodable_tile_names_its_position(tmp_path, slide):
    import tifffile

    damaged = tmp_path / "damaged.tif"
    data = bytearray(slide.read_bytes())
    with tifffile.TiffFile(slide) as tif:
        page = tif.pages[0]
        # Tile 5 of level 0 is row 1, column 1 of its 4x4 grid of 256-pixel tiles.
        offset, count = page.dataoffsets[5], page.databytecounts[5]
    data[offset : offset + count] = b"\xff\x00" * (count // 2) + b"\x00" * (count % 2)
    damaged.write_bytes(bytes(data))
    with open_slide(damaged) as opened:
        with pytest.raises(SlideError, match=r"tile at x=256, y=256 \(level 0\) cannot be "
                           "decoded"):
            opened.read(0, 256, 256, 256, 256)


def test_tissue_mask_skips_blank_blocks(slide):
    with open_slide(slide) as opened:
        overview = make_overview(opened, opened.mpp)
        everything = make_overview(opened, opened.mpp, tissue_mask=False)
    # The mosaic has one blank 512-pixel block out of four.
    assert 0.6 < overview.tissue.mean() < 0.85
    assert everything.tissue.all()
    blank = [overview.covers(x, y, x + 512, y + 512) for y in (0, 512) for x in (0, 512)]
    assert sorted(blank) == [False, True, True, True]


def _blobs_of_whole_slide(slide):
    with open_slide(slide) as opened:
        image = opened.read(0, 0, 0, opened.width, opened.height)
    raw = BlobModel().infer(np.ascontiguousarray(image[:, :, ::-1]))
    masks = []
    for i in range(len(raw.scores)):
        top, left, crop = paste_in_box(raw.mask_probs[i], raw.boxes[i], *image.shape[:2])
        full = np.zeros(image.shape[:2], bool)
        full[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        masks.append(full)
    return masks


def test_stitched_slide_finds_every_blob_once_and_whole(slide, predicted):
    result, reports = predicted
    labels = labels_of(result.out_dir)
    truth = _blobs_of_whole_slide(slide)
    wide = [m for m in truth if np.ptp(np.nonzero(m)[1]) + 1 > OVERLAP]
    assert wide, "the slide should hold blobs wider than the tile overlap"
    matched = []
    for mask in truth:
        values, counts = np.unique(labels[mask], return_counts=True)
        best = values[np.argmax(counts)]
        assert best != 0, "a blob was missed"
        found = labels == best
        assert (mask & found).sum() / (mask | found).sum() > 0.8
        matched.append(best)
    assert len(set(matched)) == len(matched) == result.nuclei
    assert result.wider_than_overlap > 0
    tiles = [r for r in reports if isinstance(r, TileDone) and r.tile >= 0]
    assert [r.done for r in tiles] == list(range(1, result.predicted + 1))
    assert tiles[-1].nuclei <= result.nuclei


def test_outputs_open_and_agree(predicted):
    import pyarrow.parquet as pq
    import shapely
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    result, _ = predicted
    out = result.out_dir
    labels = labels_of(out)
    ids = np.unique(labels)[1:]
    table = pq.read_table(out / "nuclei.parquet")
    assert table.num_rows == result.nuclei == len(ids)
    assert sorted(table.column("id").to_pylist()) == ids.tolist()
    assert (out / "nuclei.csv").read_text().count("\n") == table.num_rows + 1
    assert table.column("hematoxylin_od").to_numpy().mean() > 0
    collection = json.loads(gzip.decompress((out / "nuclei.geojson.gz").read_bytes()))
    features = collection["features"]
    assert len(features) == table.num_rows
    polygons = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert all(p.is_valid and p.geom_type == "Polygon" for p in polygons)
    props = features[0]["properties"]
    assert props["objectType"] == "detection" and props["classification"]["name"] == "Nucleus"
    # Each polygon covers its own nucleus in level-0 pixels.
    for feature, polygon in list(zip(features, polygons, strict=True))[:50]:
        x0, y0, x1, y1 = (int(v) for v in polygon.bounds)
        yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
        inside = shapely.contains_xy(polygon, xx + 0.5, yy + 0.5)
        ids_inside = labels[yy[inside], xx[inside]]
        assert (ids_inside == feature["properties"]["measurements"]["id"]).mean() > 0.8
    nodes = list(Reader(parse_url(str(out / "nuclei.ome.zarr")))())
    assert [len(node.data) for node in nodes] == [3]  # 1024, 512, 256
    assert nodes[0].data[1].shape == (512, 512)
    assert (out / "tissue.png").stat().st_size > 0
    complete = json.loads((out / "job" / "complete.json").read_text())
    assert complete["nuclei"] == result.nuclei


def test_labels_open_in_napari_as_multiscale_labels(predicted):
    napari_ome_zarr = pytest.importorskip("napari_ome_zarr")
    result, _ = predicted
    path = str(result.out_dir / "nuclei.ome.zarr")
    layers = napari_ome_zarr.napari_get_reader(path)(path)
    assert [kind for _, _, kind in layers] == ["labels"]
    data, meta, _ = layers[0]
    assert len(data) == 3 and meta["scale"] == pytest.approx([0.25, 0.25])
    np.testing.assert_array_equal(np.asarray(data[1]), labels_of(result.out_dir)[::2, ::2])


def test_stopped_job_resumes_to_the_same_result(slide, predicted, tmp_path):
    import pyarrow.parquet as pq

    result, _ = predicted
    out = tmp_path / "case_01"
    options = SlideOptions(overlap=OVERLAP, outputs=OutputOptions(csv=True, gzip=True))
    job = iter_predict_slide(BlobModel(), slide, out, options)
    tiles_done = 0
    for report in job:
        if isinstance(report, TileDone) and report.tile >= 0:
            tiles_done += 1
            if tiles_done == 7:
                break
    job.close()  # as the GUI's stop button and Ctrl-C do
    assert not (out / "nuclei.parquet").exists() and not (out / "job/complete.json").exists()
    model = BlobModel()
    resumed = drain(iter_predict_slide(model, slide, out, options))
    assert model.tiles_seen == result.predicted - 7
    np.testing.assert_array_equal(labels_of(out), labels_of(result.out_dir))
    assert pq.read_table(out / "nuclei.parquet").equals(
        pq.read_table(result.out_dir / "nuclei.parquet"))
    assert (gzip.decompress((out / "nuclei.geojson.gz").read_bytes())
            == gzip.decompress((result.out_dir / "nuclei.geojson.gz").read_bytes()))
    assert resumed.nuclei == result.nuclei
    again = BlobModel()
    assert drain(iter_predict_slide(again, slide, out, options)).nuclei == result.nuclei
    assert again.tiles_seen == 0  # a complete job is not predicted again


def test_folder_of_another_slide_is_refused_unless_overwrite(tmp_path, slide, predicted):
    other = make_slide(tmp_path / "other.tif", size=768, seed=4)
    out = predicted[0].out_dir
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(InputError, match=r"holds the job of another slide \(case_01.tif\): "
                       "use --overwrite"):
        drain(iter_predict_slide(BlobModel(), other, out))
    assert sorted(p.name for p in out.iterdir()) == before
    user_folder = tmp_path / "mine"
    user_folder.mkdir()
    (user_folder / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a slide job folder"):
        drain(iter_predict_slide(BlobModel(), other, user_folder,
                                 SlideOptions(overwrite=True)))
    assert (user_folder / "notes.txt").read_text() == "keep me"
    fresh = tmp_path / "fresh"
    drain(iter_predict_slide(BlobModel(), slide, fresh, SlideOptions(tile_size=384)))
    result = drain(iter_predict_slide(BlobModel(), other, fresh,
                                      SlideOptions(tile_size=384, overwrite=True)))
    assert result.slide.endswith("other.tif")


def test_region_restricts_tiles_and_nuclei(slide, tmp_path):
    import pyarrow.parquet as pq

    region = (600, 150, 300, 200)  # in the top-right block (the top-left one is blank)
    result = drain(iter_predict_slide(BlobModel(), slide, tmp_path / "r",
                                      SlideOptions(region=region)))
    assert 0 < result.predicted < result.tiles
    table = pq.read_table(tmp_path / "r" / "nuclei.parquet").to_pandas()
    assert len(table) > 0
    # Nuclei are kept by their box centre, at the overview's resolution (16 px here).
    assert (table.bbox_x_px + table.bbox_w_px / 2).between(600 - 16, 900 + 16).all()
    assert (table.bbox_y_px + table.bbox_h_px / 2).between(150 - 16, 350 + 16).all()


def test_geojson_regions_restrict_like_a_rectangle(slide, tmp_path):
    regions = tmp_path / "regions.geojson"
    ring = [[600, 150], [900, 150], [900, 350], [600, 350], [600, 150]]
    regions.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"objectType": "annotation"}}]}))
    by_polygon = drain(iter_predict_slide(BlobModel(), slide, tmp_path / "g",
                                          SlideOptions(regions=regions)))
    by_rectangle = drain(iter_predict_slide(BlobModel(), slide, tmp_path / "r",
                                            SlideOptions(region=(600, 150, 300, 200))))
    assert by_polygon.nuclei == by_rectangle.nuclei
    (tmp_path / "bad.geojson").write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.geojson: not valid JSON"):
        drain(iter_predict_slide(BlobModel(), slide, tmp_path / "b",
                                 SlideOptions(regions=tmp_path / "bad.geojson")))


def test_pixel_size_decisions(tmp_path):
    assert resolve_pixel_size(tmp_path, 0.25, None, 0.5).factor == pytest.approx(0.5)
    assert resolve_pixel_size(tmp_path, 0.25, 0.5, 0.5).factor == 1.0  # --mpp wins
    assert resolve_pixel_size(tmp_path, 0.499, None, 0.5).factor == 1.0
    unknown_run = resolve_pixel_size(tmp_path, None, None, None)
    assert unknown_run.factor == 1.0 and "used as it is" in unknown_run.message
    with pytest.raises(InputError, match="pixel size is unknown.*give it with --mpp"):
        resolve_pixel_size(tmp_path, None, None, 0.5)


def test_slide_is_resampled_to_the_training_pixel_size(slide, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from napari_nuclei.core.slide import engine

    def facts_at_half_resolution(model):
        return engine.ModelFacts("stub", "stub", 256, 2000, 40, 0.5)

    monkeypatch.setattr(engine.ModelFacts, "of", staticmethod(facts_at_half_resolution))
    result = drain(iter_predict_slide(BlobModel(min_area=8), slide, tmp_path / "half"))
    labels = labels_of(tmp_path / "half")
    assert labels.shape == (512, 512)  # predicted at 0.5 µm/px
    table = pq.read_table(tmp_path / "half" / "nuclei.parquet").to_pandas()
    assert len(table) == result.nuclei > 0
    # Positions and areas are reported in level-0 pixels and µm of the slide.
    assert table.centroid_x_px.max() > 600
    assert table.area_um2.to_numpy() == pytest.approx(table.area_px.to_numpy() * 0.25**2)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, slide):
    not_a_slide = tmp_path / "notes.svs"
    not_a_slide.write_text("hello")
    model = tmp_path / "model"  # beside the output: an output inside an input is refused
    model.mkdir()
    result = subprocess.run([*CLI, "predict-slide", str(not_a_slide), "--model",
                             str(model), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.svs: is not a slide or image" in lines[0]
    result = subprocess.run([*CLI, "predict-slide", str(slide), "--model", str(model),
                             "-o", str(tmp_path / "out"), "--region", "1,2,3"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "argument --region: wants x,y,w,h" in result.stderr
    result = subprocess.run([*CLI, "predict-slide", str(slide), "--model", str(model),
                             "-o", str(tmp_path / "out"), "--batch-size", "0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ("napari-nuclei predict-slide: error: argument "
                                     "--batch-size: must be at least 1, got 0 (see "
                                     "napari-nuclei predict-slide --help)")
    assert not (tmp_path / "out").exists()


def test_measurements_and_geojson_of_an_ordinary_image():
    import shapely

    from conftest import disk
    from napari_nuclei.core.predict.instances import Prediction
    from napari_nuclei.core.slide.measure import measure_prediction

    image = np.full((60, 80, 3), 230, np.uint8)
    first, second = disk((60, 80), (20, 20), 8), disk((60, 80), (40, 60), 5)
    image[first] = (60, 40, 150)  # hematoxylin-blue
    image[second] = (200, 80, 150)  # eosin-pink
    crops = [(12, 12, first[12:29, 12:29]), (35, 55, second[35:46, 55:66])]
    prediction = Prediction.from_unsorted(60, 80, [0.9, 0.8], crops)
    rows, features = measure_prediction(prediction, image)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["area_px"] == first.sum() and rows[0]["centroid_x_px"] == pytest.approx(20.5)
    assert rows[0]["hematoxylin_od"] > rows[1]["hematoxylin_od"]
    assert rows[1]["eosin_od"] > rows[0]["eosin_od"]
    polygon = shapely.geometry.shape(json.loads(features[0])["geometry"])
    assert polygon.is_valid and polygon.area == pytest.approx(first.sum(), rel=0.15)
    grey_rows, _ = measure_prediction(prediction, image[:, :, 0])
    assert grey_rows[0]["intensity_r"] == pytest.approx(60)


def test_stale_temporary_files_of_dead_writers_are_removed_once(tmp_path):
    import os

    from napari_nuclei.core.atomic import atomic_path, remove_stale_temp_files_in

    dead = tmp_path / ".0000003.npz.4194305.k2j9.part"  # above Linux's largest pid
    alive = tmp_path / f".0000004.npz.{os.getpid()}.x7a1.part"
    for path in (dead, alive, tmp_path / "0000002.npz"):
        path.write_bytes(b"x")
    with atomic_path(tmp_path / "0000005.npz", clean_stale=False) as tmp:
        tmp.write_bytes(b"tile")
    assert dead.exists()  # writing a tile does not scan the folder
    assert remove_stale_temp_files_in(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "0000002.npz",
                                                          "0000005.npz"]


def test_batches_and_prefetching_give_the_same_nuclei(slide, predicted, tmp_path):
    import pyarrow.parquet as pq

    result, _ = predicted
    model = BlobModel()
    options = SlideOptions(overlap=OVERLAP, outputs=OutputOptions(csv=True, gzip=True),
                           batch_size=2)
    batched = drain(iter_predict_slide(model, slide, tmp_path / "case_01", options))
    # Edge tiles are smaller: only tiles of one size share a forward pass.
    assert max(model.batches) == 2 and sum(model.batches) == result.predicted
    assert batched.nuclei == result.nuclei
    np.testing.assert_array_equal(labels_of(tmp_path / "case_01"), labels_of(result.out_dir))
    assert pq.read_table(tmp_path / "case_01" / "nuclei.parquet").equals(
        pq.read_table(result.out_dir / "nuclei.parquet"))
    assert (gzip.decompress((tmp_path / "case_01" / "nuclei.geojson.gz").read_bytes())
            == gzip.decompress((result.out_dir / "nuclei.geojson.gz").read_bytes()))
    with pytest.raises(OptionError, match="at least 1"):
        SlideOptions(batch_size=0)


def test_prefetching_is_bounded_in_order_and_stops_when_closed():
    import threading

    from napari_nuclei.core.slide.prefetch import prefetch

    taken, ahead, threads = [0], [], set()

    def read(item):
        threads.add(threading.current_thread().name)
        ahead.append(item - taken[0])
        if item == 7:
            raise ValueError("tile 7 cannot be decoded")
        return item * 10

    tiles = prefetch(read, list(range(10)), depth=2)
    for item, value in tiles:
        assert value == item * 10
        taken[0] += 1
        if item == 2:
            break
    tiles.close()
    read_before = len(ahead)
    assert max(ahead) <= 3  # the queue holds 2, the reader one more in hand
    assert threads == {"slide-prefetch"}
    assert read_before <= 6 and not any(t.name == "slide-prefetch" and t.is_alive()
                                        for t in threading.enumerate())
    taken[0] = 0
    with pytest.raises(ValueError, match="tile 7"):
        for item, _ in prefetch(read, list(range(10)), depth=2):
            assert item == taken[0]
            taken[0] += 1
    assert taken[0] == 7  # the error is raised at its own item, after the ones before
