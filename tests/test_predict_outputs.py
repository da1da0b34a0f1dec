"""The predict -> outputs generator: one bad file is skipped and named, stacks refused."""

import numpy as np
import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.predict.outputs import (
    ImagePredicted,
    ImageSkipped,
    ImageSource,
    iter_predict_sources,
    single_plane,
    submission_at,
)


def test_single_plane_accepts_2d_and_rgb_and_names_stacks():
    assert single_plane(np.zeros((5, 6)), "a").shape == (5, 6)
    assert single_plane(np.zeros((5, 6, 3)), "a").shape == (5, 6, 3)
    with pytest.raises(InputError, match=r"stack.tif: has shape \(4, 5, 6\).*choose one plane"):
        single_plane(np.zeros((4, 5, 6)), "stack.tif")


def test_a_bad_file_is_skipped_and_the_batch_goes_on(tiny_run, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    sources = [ImageSource("broken", broken),
               ImageSource("fluo_r1c1", SAMPLE_DATA / "test" / "fluo_r1c1.png"),
               ImageSource("stack", None, np.zeros((3, 32, 32), np.uint8))]
    reports = []
    assert drain(iter_predict_sources(tiny_run[0], sources), reports.append) == 1
    assert [type(r) for r in reports] == [ImageSkipped, ImagePredicted, ImageSkipped]
    assert "broken.png" in reports[0].problem and "choose one plane" in reports[2].problem
    predicted = reports[1].prediction
    entries = submission_at(1, predicted, 0.3)
    assert len(entries) == len(predicted.above(0.3)) and all(e["score"] >= 0.3
                                                             for e in entries)
