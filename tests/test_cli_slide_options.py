"""Regions files and predict-slide options a user should not have handed in: refused with
one line before the model loads or anything is written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import tifffile

from napari_nuclei import cli
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import usable_cores
from napari_nuclei.core.slide.tissue import geojson_mask, read_regions


def refused(argv, capsys, *fragments):
    """The CLI exits 2 with exactly one stderr line holding every fragment."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse refuses options itself
        status = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _geojson(tmp_path, name, document):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _polygon(*points):
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [list(points)]}}


@pytest.mark.parametrize(("document", "fragment"), [
    ('{"type": "FeatureCollection", "features": [', "not valid JSON"),
    ({"type": "FeatureCollection", "features": []}, "holds no polygon"),
    ({"type": "Point", "coordinates": [1, 2]}, "holds no polygon (it holds Point)"),
    ('{"type": "Polygon", "coordinates": [[[0, 0], [NaN, 1], [2, 2], [0, 0]]]}',
     "NaN is not a JSON value"),
    ({"type": "FeatureCollection", "features": [_polygon([0, 0], [1e300, 10], [100, 1e300],
                                                         [0, 0])]}, "within ±1e+09"),
    ([1, 2], "feature 0: a feature or geometry is a JSON object, not int"),
    ("\"text\"", "expected a FeatureCollection"),
    ({"type": "Polygon", "coordinates": "nope"}, "feature 0: not a GeoJSON geometry"),
    (" " * 10_000, "not valid JSON"),
])
def test_bad_regions_files_are_one_line(tmp_path, document, fragment):
    path = _geojson(tmp_path, "regions.geojson", document)
    with pytest.raises(InputError, match=fr"regions\.geojson.*{_escaped(fragment)}"):
        read_regions(path)


def _escaped(text):
    return re.escape(text)


def test_self_intersecting_and_far_reaching_polygons_are_repaired_and_clipped(tmp_path):
    bow_tie = _geojson(tmp_path, "bowtie.geojson", _polygon([0, 0], [64, 64], [64, 0],
                                                           [0, 64], [0, 0]))
    assert len(read_regions(bow_tie)) == 2
    mask = geojson_mask((8, 8), 8.0, bow_tie)
    assert mask[4, 1] and mask[4, 6] and not mask[1, 4] and not mask[6, 4]
    # Reaching 10^8 pixels away: clipped to the slide, not wrapped around int32.
    wide = _geojson(tmp_path, "wide.geojson", _polygon([0, 0], [1e8, 0], [1e8, 1e8],
                                                       [0, 1e8], [0, 0]))
    assert geojson_mask((8, 8), 8.0, wide).all()


@pytest.mark.parametrize(("option", "value", "fragment"), [
    ("--mpp", "nan", "argument --mpp: must be a number in (0, 1000] µm/px"),
    ("--mpp", "inf", "argument --mpp: must be a number"),
    ("--mpp", "0", "argument --mpp: must be a number"),
    ("--mpp", "text", "argument --mpp: 'text' is not a number"),
    ("--region", "0,0,inf,10", "argument --region: wants x,y,w,h"),
    ("--region", "1,2,3", "argument --region: wants x,y,w,h"),
    ("--region", "0,0,0,10", "width and height must be positive"),
    ("--tile-size", "7", "argument --tile-size: must be from 32 to 8192, got 7"),
    ("--overlap", "-1", "argument --overlap: must be at least 0"),
    ("--workers", "-1", f"argument --workers: must be from 0 to {usable_cores()}"),
    ("--block", "0", "argument --block: must be at least 1"),
    ("--score-thresh", "nan", "argument --score-thresh: must be a number in [0, 1]"),
    ("--max-dets", "-5", "argument --max-dets: must be at least 1"),
])
def test_predict_slide_options_out_of_range_are_one_line(tmp_path, capsys, option, value,
                                                         fragment):
    refused(["predict-slide", tmp_path / "s.tif", "--model", tmp_path, "-o",
             tmp_path / "out", f"{option}={value}"], capsys, fragment)
    assert not (tmp_path / "out").exists()


def test_predict_slide_refuses_bad_slides_and_regions_before_loading(tmp_path, capsys):
    slide = tmp_path / "two_channels.tif"
    tifffile.imwrite(slide, np.zeros((64, 64, 2), np.uint8), photometric="minisblack",
                     planarconfig="contig")
    missing_model = tmp_path / "no_run"
    refused(["predict-slide", slide, "--model", missing_model, "-o", tmp_path / "out"],
            capsys, "two_channels.tif: holds 2 channels per pixel")
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, np.full((64, 64, 3), 200, np.uint8), photometric="rgb")
    regions = _geojson(tmp_path, "r.geojson", {"type": "LineString",
                                               "coordinates": [[0, 0], [5, 5]]})
    refused(["predict-slide", good, "--model", missing_model, "-o", tmp_path / "out",
             "--regions", regions], capsys, "r.geojson: holds no polygon (it holds "
             "LineString)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["notanaddress", "tcp://host", "inproc://x",
                                     "file:///etc/passwd", "tcp://h:99999", "tcp://h:1/x"])
def test_malformed_scheduler_address_is_refused_before_connecting(tmp_path, capsys, address):
    refused(["predict-slide", tmp_path / "s.tif", "--model", tmp_path, "-o",
             tmp_path / "out", "--scheduler", address], capsys,
            "argument --scheduler: wants a scheduler address tcp://HOST:PORT")


def test_scheduler_address_keeps_the_given_host():
    from napari_nuclei.cli_commands.option_types import scheduler_address

    assert scheduler_address("10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert scheduler_address("tls://[::1]:8786") == "tls://[::1]:8786"


def test_output_folder_that_cannot_receive_slides_is_refused(tmp_path, capsys):
    slide = tmp_path / "good.tif"
    tifffile.imwrite(slide, np.full((64, 64, 3), 200, np.uint8), photometric="rgb")
    args = ["predict-slide", slide, "--model", tmp_path / "no_run", "-o"]
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    refused([*args, a_file], capsys, "a_file: is a file, not an output folder")
    one_slide = tmp_path / "cohort" / "good"
    (one_slide / "job").mkdir(parents=True)
    (one_slide / "job" / "job.json").write_text("{}")
    refused([*args, one_slide], capsys, "good: is the output folder of one slide")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.csv").write_text("sample,weight\nA,3\n")
    refused([*args, mine], capsys, "summary.csv: exists and is not a summary of slides")
    assert (mine / "summary.csv").read_text() == "sample,weight\nA,3\n"
    assert sorted(p.name for p in mine.iterdir()) == ["summary.csv"]
    # A summary of slides (an earlier run's) is no refusal: the run goes on to the model.
    (mine / "summary.csv").write_text("slide,output,tissue_mm2,tiles,tiles_predicted,"
                                      "tiles_skipped_share,nuclei,wider_than_overlap,"
                                      "seconds\r\n")
    refused([*args, mine], capsys, "no_run: no such run folder")


def test_overlap_beyond_half_the_tile_is_refused_and_zero_is_kept(tmp_path):
    from slide_helpers import BlobModel, make_slide

    from napari_nuclei.core.errors import OptionError
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide

    slide = make_slide(tmp_path / "s.tif", size=512, seed=2)
    with pytest.raises(OptionError, match=r"must be from 0 to half the tile size \(128 for "
                       r"tiles of 256\), got 129"):
        drain(iter_predict_slide(BlobModel(), slide, tmp_path / "o1",
                                 SlideOptions(overlap=129)))
    assert not (tmp_path / "o1").exists()
    # 0 is an overlap, not "the default": four tiles of 256 cover the slide exactly.
    result = drain(iter_predict_slide(BlobModel(), slide, tmp_path / "o2",
                                      SlideOptions(overlap=0, tissue_mask=False)))
    assert result.tiles == 4


def test_sigterm_stops_a_command_as_ctrl_c_does():
    import os
    import signal

    before = signal.getsignal(signal.SIGTERM)
    restore = cli._stop_on_sigterm()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 1)  # the handler runs at the next bytecode
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_truncated_slide_gives_no_parser_log(tmp_path):
    import subprocess
    import sys

    from slide_helpers import make_slide

    # Three levels, each its own page: the cut loses the pages of the reduced levels.
    whole = make_slide(tmp_path / "whole.tif", size=768, seed=1, min_level_side=128)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    # In a process of its own: tifffile's log reaches stderr there, not pytest's capture.
    result = subprocess.run([sys.executable, "-m", "napari_nuclei.cli", "predict-slide",
                             str(cut), "--model", str(tmp_path / "no_run"), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300)
    # The tiles the header declares run past the end of the file: that is the one line,
    # before the model is looked at; tifffile's log of the damage must not precede it.
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "cut.tif: the data of the tile at" in lines[0] and "it is truncated" in lines[0]
    assert not (tmp_path / "out").exists()
