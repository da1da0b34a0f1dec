"""Edit region after a prediction: with nothing drawn, the window is the region just
predicted (or the square around the view clipped to it), never a square that does not
fit it."""

import pytest
from slide_helpers import make_slide

from napari_nuclei.session.slides import SlideSession

pytestmark = pytest.mark.gui


def test_the_edit_region_defaults_to_the_predicted_region_holding_the_view(tmp_path):
    state = SlideSession(lambda: tmp_path)
    state.open(tmp_path / "case.tif", None, (4000, 3000))
    centre = (500.0, 600.0)  # world (y, x), here level-0 pixels
    # Nothing predicted: the square around the centre, clipped to the slide.
    assert state.edit_region(None, centre) == (88, 0, 1024, 1012)
    # A 774 x 952 view predicted around the centre: the window is that region.
    state.predicted(tmp_path / "view", (213, 24, 774, 952))
    assert state.edit_region(None, centre) == (213, 24, 774, 952)
    # A region too tall for one window predicted since: the square around the centre,
    # clipped to it.
    state.predicted(tmp_path / "big", (0, 0, 900, 3000))
    assert state.edit_region(None, centre) == (88, 0, 812, 1012)
    # A rectangle drawn is taken as it is; outside every prediction, the square.
    assert state.edit_region((5, 6, 70, 80), centre) == (5, 6, 70, 80)
    assert state.edit_region(None, (2500.0, 3500.0)) == (2988, 1988, 1012, 1012)


def test_edit_region_right_after_predict_view_pulls_the_view_just_predicted(
        make_napari_viewer, qtbot, tmp_path):
    from napari_nuclei._qt.dock import NucleiDock

    slide = make_slide(tmp_path / "case_01.tif", size=2048)
    viewer = make_napari_viewer()
    dock = NucleiDock(viewer)
    section = dock.slide_section
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path  # the stand-in job below needs no trained run
    section.predict_target = "slide_jobs_for_child:predict_region_with_blobs"
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30000)
    viewer.scene.camera.center = (260.0, 250.0)  # µm
    viewer.scene.camera.zoom = 2.5  # narrower than the 1,024-pixel default square
    region = section.view_region()
    assert 0 < min(region[2:]) < 1024
    section.buttons["view"].click()
    qtbot.waitUntil(lambda: bool(section.state.outputs), timeout=240000)
    assert section.buttons["edit"].isEnabled()
    section.buttons["edit"].click()
    qtbot.waitUntil(lambda: section.state.window is not None, timeout=30000)
    assert section.state.window.level0_region == region
    assert not section.hint.text().startswith("Predict this region first")
    assert section.window_labels.data.shape == (region[3], region[2])
