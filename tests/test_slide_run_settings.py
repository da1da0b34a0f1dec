"""A run folder's settings.json read for prediction: a value of the wrong type is refused
with one line, never taken as absent (which would silently change the tiles)."""

import json

import pytest

from napari_nuclei.core.errors import InputError


@pytest.mark.parametrize("value", ["oops", -1, True, [1]])
def test_run_settings_with_a_wrong_type_are_refused_not_ignored(tmp_path, value):
    from napari_nuclei.core.predict.overlap import largest_training_nucleus
    from napari_nuclei.core.slide.pixel_size import run_training_mpp

    (tmp_path / "settings.json").write_text(json.dumps({"mpp": value,
                                                        "largest_nucleus_px": value}))
    with pytest.raises(InputError, match=r"settings\.json: is damaged: mpp must be a "
                       "positive number"):
        run_training_mpp(tmp_path)
    with pytest.raises(InputError, match="largest_nucleus_px must be a positive number"):
        largest_training_nucleus(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"mpp": 0.5, "largest_nucleus_px": None}))
    assert run_training_mpp(tmp_path) == 0.5 and largest_training_nucleus(tmp_path) is None
