"""The slides of a session pass the gate: their files are only read, their output folders
stay inside the session folder, their regions are whole rectangles."""

import json
from pathlib import Path

import pytest

from napari_nuclei.core.errors import InputError
from napari_nuclei.core.validate import session as gate
from napari_nuclei.session import Session, actions, store
from napari_nuclei.session.restore import restore_session


def saved_folder(tmp_path, regions=((0, 0, 256, 256), (128, 64, 300, 200)),
                 window=1) -> Path:
    """A session saved with one slide, a folder per predicted region, and a window."""
    folder = tmp_path / "out"
    session = Session(output_dir=folder, score_thresh=0.5)
    slides = session.slides
    slides.open(tmp_path / "case_01.tif", 0.25, (1024, 1024))
    for region in regions:
        out_dir = slides.output_for(region)
        out_dir.mkdir(parents=True)
        slides.predicted(out_dir, region)
    entry = slides.entries()[-1]
    if window is not None:
        entry = store.SavedSlide(entry.slide, entry.outputs, entry.outputs[window])
    store.write_session(folder, {"score_thresh": 0.5}, [], [entry])
    return folder


def edit(folder: Path, change) -> None:
    path = folder / "session.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def checked(folder: Path) -> gate.CheckedSession:
    return gate.read_session_file(folder)


def test_a_saved_slide_round_trips(tmp_path):
    folder = saved_folder(tmp_path)
    session = checked(folder)
    assert session.skipped == [] and len(session.slides) == 1
    slide = session.slides[0]
    assert slide.slide == tmp_path / "case_01.tif"
    assert [region for _, region in slide.outputs] == [(0, 0, 256, 256), (128, 64, 300, 200)]
    assert [out.name for out, _ in slide.outputs] == ["case_01_x0_y0_256x256",
                                                      "case_01_x128_y64_300x200"]
    assert slide.window == slide.outputs[1]
    document = json.loads((folder / "session.json").read_text())
    assert document["slides"][0]["outputs"][0]["folder"] == "slides/case_01_x0_y0_256x256"


def test_a_session_of_a_version_without_slides_still_reads(tmp_path):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d.pop("slides"))
    assert checked(folder).slides == []


@pytest.mark.parametrize("where", ["/elsewhere", "../elsewhere", "slides\\..\\x", "C:x", ""])
def test_an_output_folder_outside_the_session_skips_its_slide(tmp_path, where):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["slides"][0]["outputs"][0].update(folder=where))
    session = checked(folder)
    assert session.slides == []
    assert len(session.skipped) == 1 and "slide 0" in session.skipped[0]
    assert "\n" not in session.skipped[0]


def test_a_linked_output_folder_is_refused_even_inside_the_session(tmp_path):
    folder = saved_folder(tmp_path)
    (folder / "linked").symlink_to(folder / "slides")
    edit(folder, lambda d: d["slides"][0]["outputs"][0].update(
        folder="linked/case_01_x0_y0_256x256"))
    session = checked(folder)
    assert session.slides == [] and "symbolic link" in session.skipped[0]


@pytest.mark.parametrize("region", [[0, 0, 0, 10], [-1, 0, 5, 5], [0, 0, 5], [0, 0, 5, 5, 5],
                                    [0.5, 0, 5, 5], [True, 0, 5, 5], "0,0,5,5", None,
                                    [0, 0, 5, 2**31], [0, 0, 5, 10**400]])
def test_a_region_that_is_not_a_whole_rectangle_skips_its_slide(tmp_path, region):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["slides"][0]["outputs"][1].update(region=region))
    session = checked(folder)
    assert session.slides == [] and "region" in session.skipped[0]


def test_a_window_of_no_listed_output_is_refused(tmp_path):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["slides"][0]["window"].update(folder="slides/another"))
    session = checked(folder)
    assert session.slides == [] and "none of the slide's outputs" in session.skipped[0]


def test_a_repeated_output_and_unknown_keys_are_refused(tmp_path):
    folder = saved_folder(tmp_path, window=None)
    edit(folder, lambda d: d["slides"][0]["outputs"].append(d["slides"][0]["outputs"][0]))
    assert "appears twice" in checked(folder).skipped[0]
    folder = saved_folder(tmp_path / "again", window=None)
    edit(folder, lambda d: d["slides"][0].update(script="rm -rf"))
    assert "script" in checked(folder).skipped[0]


@pytest.mark.parametrize("slide", ["", None, 5, "a\nb", "x" * 5000])
def test_a_slide_path_that_is_no_path_skips_its_entry(tmp_path, slide):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["slides"][0].update(slide=slide))
    assert checked(folder).slides == [] and len(checked(folder).skipped) == 1


def test_one_damaged_slide_leaves_the_others(tmp_path):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d["slides"].insert(0, {"slide": "/x/other.svs", "outputs": 7}))
    session = checked(folder)
    assert [s.slide.name for s in session.slides] == ["case_01.tif"]
    assert len(session.skipped) == 1 and "slide 0" in session.skipped[0]


@pytest.mark.parametrize("slides", [{"slide": "x"}, "x", 7])
def test_slides_that_are_not_a_list_refuse_the_document(tmp_path, slides):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d.update(slides=slides))
    with pytest.raises(InputError, match="slides must be a list"):
        checked(folder)


def test_more_slides_or_outputs_than_any_session_holds_are_refused(tmp_path):
    folder = saved_folder(tmp_path)
    edit(folder, lambda d: d.update(slides=[{"slide": "x"}] * (gate.MAX_SESSION_SLIDES + 1)))
    with pytest.raises(InputError, match="slides, more than"):
        checked(folder)
    folder = saved_folder(tmp_path / "again")
    many = [{"folder": f"slides/{n}", "region": [0, 0, 1, 1]}
            for n in range(gate.MAX_SLIDE_OUTPUTS + 1)]
    edit(folder, lambda d: d["slides"][0].update(outputs=many, window=None))
    assert "predicted regions, more than" in checked(folder).skipped[0]


def test_the_writer_refuses_a_slide_output_outside_the_folder(tmp_path):
    folder = saved_folder(tmp_path)
    before = (folder / "session.json").read_bytes()
    entry = store.SavedSlide(tmp_path / "case_01.tif",
                             ((folder / "slides" / "a", (0, 0, 0, 5)),))
    with pytest.raises(InputError, match="region"):
        store.write_session(folder, {"score_thresh": 0.5}, [], [entry])
    outside = store.SavedSlide(tmp_path / "case_01.tif", ((tmp_path / "x", (0, 0, 5, 5)),))
    with pytest.raises(InputError, match="outside the session folder"):
        store.write_session(folder, {"score_thresh": 0.5}, [], [outside])
    assert (folder / "session.json").read_bytes() == before


def test_a_session_save_lists_its_slides_and_a_restore_brings_them_back(tmp_path):
    session = Session(output_dir=tmp_path / "out", score_thresh=0.5)
    session.slides.open(tmp_path / "case_01.tif", 0.25, (1024, 1024))
    region = (0, 0, 256, 256)
    session.slides.predicted(session.slides.output_for(region), region)
    # An output of an output folder chosen before is that folder's, not this session's.
    session.slides.predicted(tmp_path / "before" / "slides" / "case_01", (0, 0, 1024, 1024))
    assert session.needs_saving()
    actions.apply_saved(session, actions.save_session(actions.session_snapshot(session)))
    assert not session.needs_saving()

    again = Session()
    assert restore_session(again, tmp_path / "out") == []
    assert [entry.outputs for entry in again.slides.restoring] == [
        ((session.slides.output_for(region), region),)]
    # Listed before the section opens them, they are saved as the session's.
    assert again.slides.entries() == again.slides.restoring
