"""A finished slide job is reused only for the same slide, model and settings; one writer
per output folder."""

from __future__ import annotations

import pytest
from slide_helpers import BlobModel, make_slide

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain
from napari_nuclei.core.slide.engine import SlideOptions, iter_predict_slide
from napari_nuclei.core.slide.job import OutputOptions
from napari_nuclei.core.slide.output_lock import hold_output


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return make_slide(tmp_path_factory.mktemp("keys") / "case_07.tif", size=768, seed=1)


def _model(weights=None, score=0.5) -> BlobModel:
    model = BlobModel(min_area=8)
    model.weights = weights
    model.score_thresh = score
    return model


def _run(model, slide, out, **options):
    return drain(iter_predict_slide(model, slide, out, SlideOptions(**options)))


def test_other_settings_are_refused_naming_them_unless_overwrite(slide, tmp_path):
    weights = tmp_path / "run" / "model_final.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"first network")
    out = tmp_path / "out"
    first = _run(_model(weights), slide, out)
    assert first.nuclei > 0
    again = _run(_model(weights), slide, out)  # the same job: reused, not redone
    assert again.nuclei == first.nuclei
    with pytest.raises(InputError, match="other settings.*score_thresh"):
        _run(_model(weights, score=0.3), slide, out)
    with pytest.raises(InputError, match="other settings.*output files"):
        _run(_model(weights), slide, out, outputs=OutputOptions(gzip=True))
    # A run folder of the same name elsewhere, and the same file trained further.
    other = tmp_path / "elsewhere" / "run" / "model_final.pth"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"first network")
    with pytest.raises(InputError, match="other settings.*model folder"):
        _run(_model(other), slide, out)
    weights.write_bytes(b"trained further")
    with pytest.raises(InputError, match="checkpoint contents"):
        _run(_model(weights), slide, out)
    redone = _run(_model(weights), slide, out, overwrite=True)
    assert redone.nuclei == first.nuclei  # the stand-in model ignores its weights


def test_a_second_writer_of_the_same_folder_is_refused(slide, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    with hold_output(out):
        # Another thread of this process stands in for another process: the lock is
        # per thread, as write-backs use it.
        import threading

        errors = []

        def second():
            try:
                _run(_model(), slide, out)
            except InputError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(120)
    assert errors and "is being written by" in errors[0]
    # Once the first writer is done, the job runs; the lock file does not count as the
    # user's content.
    assert _run(_model(), slide, out).nuclei > 0
