"""A run folder is data: its config.yaml is never parsed, its settings.json is checked.

A shared run folder whose ``config.yaml`` carries a YAML tag that runs code, or names a
``_BASE_`` file anywhere, must predict, resume and seed new runs exactly as before, and the
payload must never run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import SAMPLE_DATA
from napari_nuclei.cli import main

pytest.importorskip("detectron2")

TEST_IMAGES = SAMPLE_DATA / "test"


def _copy_run(tiny_run, tmp_path: Path, name: str = "shared_run") -> Path:
    run = tmp_path / name
    shutil.copytree(tiny_run[0], run)
    return run


def _plant_yaml_payloads(run: Path, marker: Path) -> None:
    """config.yaml runs ``touch marker`` if any loader parses it unsafely, and its
    ``_BASE_`` names another such file outside the folder."""
    outside = run.parent / "elsewhere.yaml"
    outside.write_text(f'X: !!python/object/apply:os.system ["touch {marker}.base"]\n')
    (run / "config.yaml").write_text(
        f"_BASE_: {outside}\n"
        f'MODEL: !!python/object/apply:os.system ["touch {marker}"]\n')


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload_ran"


def _assert_payload_never_ran(marker: Path) -> None:
    assert not marker.exists(), "config.yaml was parsed and its payload ran"
    assert not Path(f"{marker}.base").exists(), "the _BASE_ file was parsed"


def test_predict_from_a_run_folder_never_parses_its_config_yaml(
        tiny_run, tmp_path, marker, capsys):
    run = _copy_run(tiny_run, tmp_path)
    _plant_yaml_payloads(run, marker)
    out = tmp_path / "sub.json"
    status = main(["predict", "--model", str(run), "--images", str(TEST_IMAGES),
                   "-o", str(out), "--device", "cpu", "-q"])
    assert status == 0, capsys.readouterr().err
    _assert_payload_never_ran(marker)
    # The same predictions as the untouched folder gives: the config came from settings.
    reference = tmp_path / "ref.json"
    assert main(["predict", "--model", str(tiny_run[0]), "--images", str(TEST_IMAGES),
                 "-o", str(reference), "--device", "cpu", "-q"]) == 0
    assert json.loads(out.read_text()) == json.loads(reference.read_text())


def test_resume_and_weights_from_a_run_folder_never_parse_its_config_yaml(
        tiny_run, tmp_path, marker, capsys):
    run = _copy_run(tiny_run, tmp_path)
    _plant_yaml_payloads(run, marker)
    seeded = tmp_path / "seeded"
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(seeded), "--preset",
                   "tiny", "--weights", str(run), "--iters", "2", "--device", "cpu", "-q"])
    assert status == 0, capsys.readouterr().err
    _assert_payload_never_ran(marker)
    # Resuming a run whose config.yaml was replaced: extended by two iterations.
    settings = json.loads((seeded / "settings.json").read_text())
    _plant_yaml_payloads(seeded, marker)
    status = main(["train", "--resume", str(seeded), "--iters", str(settings["max_iter"] + 2),
                   "-q"])
    assert status == 0, capsys.readouterr().err
    _assert_payload_never_ran(marker)
    assert (seeded / "config.yaml").read_text().startswith("# Written for people to read")


@pytest.mark.parametrize("change, named", [
    ({"config_file": "../../../../tmp/evil.yaml"}, "config_file"),
    ({"config_file": "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml"}, "config_file"),
    ({"model_options": [["OUTPUT_DIR", "/tmp/elsewhere"]]}, "model_options"),
    ({"model_options": [["MODEL.WEIGHTS", "/tmp/x.pkl"]]}, "model_options"),
    ({"model_options": [["MODEL.RESNETS.DEPTH", {"a": 1}]]}, "model_options"),
    ({"model_options": "MODEL.RESNETS.DEPTH"}, "model_options"),
    ({"preset": "mine"}, "preset"),
    ({"steps": 5}, "wrong type"),
    ({"group_norm": "yes"}, "group_norm"),
    ({"score_thresh_test": 5.0}, "score_thresh_test"),
])
def test_a_damaged_settings_json_is_one_line_for_predict(
        change, named, tiny_run, tmp_path, capsys):
    run = _copy_run(tiny_run, tmp_path)
    settings = json.loads((run / "settings.json").read_text())
    (run / "settings.json").write_text(json.dumps({**settings, **change}))
    out = tmp_path / "sub.json"
    status = main(["predict", "--model", str(run), "--images", str(TEST_IMAGES),
                   "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2, err
    assert len(err) == 1, err
    assert "settings.json" in err[0] and named in err[0], err[0]
    assert not out.exists()


def test_a_run_without_config_yaml_still_predicts(tiny_run, tmp_path, capsys):
    run = _copy_run(tiny_run, tmp_path)
    (run / "config.yaml").unlink()
    out = tmp_path / "sub.json"
    status = main(["predict", "--model", str(run), "--images", str(TEST_IMAGES),
                   "-o", str(out), "--device", "cpu", "-q"])
    assert status == 0, capsys.readouterr().err
    assert out.is_file()


def test_a_run_shorter_than_its_schedule_drops_the_steps_and_says_so(tmp_path, capsys):
    out = tmp_path / "short"
    status = main(["train", "--data", str(SAMPLE_DATA), "--out", str(out), "--preset",
                   "tiny", "--iters", "2", "--steps", "1", "5", "--device", "cpu", "-q"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "learning-rate step at 5: dropped" in err
    saved = json.loads((out / "settings.json").read_text())
    assert saved["steps"] == [1] and saved["max_iter"] == 2
    assert (out / "model_final.pth").is_file()


def test_fit_schedule_keeps_steps_before_the_end_only():
    from napari_nuclei.core.models.maskrcnn.presets import fit_schedule, preset_settings

    settings = preset_settings("tiny", max_iter=2)  # the preset's step scales to 2
    fitted, note = fit_schedule(settings)
    assert fitted.steps == () and "constant" in note
    unchanged, note = fit_schedule(preset_settings("tiny"))
    assert unchanged.steps == (240,) and note == ""
