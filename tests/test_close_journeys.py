"""Closing napari while the dock works: the close waits for the jobs off the GUI thread,
each job stops without losing its work, pending saves are written, then napari closes."""

import numpy as np
import pytest
import test_dock_journeys as journeys
from slide_helpers import BlobModel, make_slide
from slide_window_helpers import labels_of, table_of

pytestmark = pytest.mark.gui
fake_model, mixed_test_folder = journeys.fake_model, journeys.mixed_test_folder  # fixtures


def slide_dock(make_napari_viewer, qtbot, tmp_path, target, show=False):
    """A visible viewer with the dock, a model stand-in and a slide section ready."""
    viewer = make_napari_viewer(show=show)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    qtbot.waitUntil(lambda: dock.close_guard.watching)
    dock.session.output_dir = tmp_path / "session"
    dock.session.run_dir = tmp_path  # the stand-in jobs need no trained run
    dock.slide_section.predict_target = target
    return viewer, dock


def test_closing_during_training_waits_for_the_checkpoint_with_the_window_responsive(
        make_napari_viewer, qtbot, tmp_path, dsb_root):
    from test_dock_messages import start_training

    viewer = make_napari_viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    qtbot.waitUntil(lambda: dock.close_guard.watching)
    dock.data_tab.set_paths(dsb_root, None, None, tmp_path / "session")
    train = start_training(qtbot, dock, tmp_path, "train_jobs_for_child:train_with_checkpoints")
    qtbot.waitUntil(lambda: len(train.plot.reports) == 4, timeout=120_000)
    assert [job.kind for job in dock.session.jobs.running] == ["training"]
    window = dock.window()

    dock.predict_tab.ask = lambda *_: False  # keep napari open: the run goes on
    window.close()
    assert window.isVisible() and train.training and not dock.close_guard.closing

    dock.predict_tab.ask = lambda *_: True
    with qtbot.waitSignal(dock.close_guard.closed, timeout=120_000):
        window.close()
        # The close is held, not waited for: the event loop goes on meanwhile.
        assert window.isVisible() and dock.close_guard.closing
    assert not window.isVisible()
    assert train.result.stopped and train.result.iteration == 4
    assert (tmp_path / "run" / "model_0000003.pth").is_file()
    assert dock.session.jobs.idle


def test_closing_during_a_slide_job_stops_it_and_the_job_resumes_to_the_same_result(
        make_napari_viewer, qtbot, tmp_path):
    from napari_nuclei.core.jobs import drain
    from napari_nuclei.core.slide.region_job import predict_region_with

    slide = make_slide(tmp_path / "case_01.tif")
    reference = tmp_path / "reference"
    drain(predict_region_with(BlobModel(), slide, reference))

    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path,
                              "slide_jobs_for_child:predict_region_slowly", show=True)
    section = dock.slide_section
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30_000)
    section.buttons["whole"].click()
    whole = section.state.output_for(None)
    qtbot.waitUntil(lambda: section.progress.value() >= 2, timeout=120_000)
    assert [job.kind for job in dock.session.jobs.running] == ["slide prediction"]
    window = dock.window()
    with qtbot.waitSignal(dock.close_guard.closed, timeout=120_000):
        window.close()
        assert window.isVisible()  # held until the job has stopped
    assert not window.isVisible()
    assert not (whole / "job" / "complete.json").exists()
    done = len(list((whole / "job" / "records").glob("*.npz")))
    assert 2 <= done < section.progress.maximum()

    # napari again: the same region continues from the tiles kept, to the same result.
    viewer, dock = slide_dock(make_napari_viewer, qtbot, tmp_path,
                              "slide_jobs_for_child:predict_region_with_blobs")
    section = dock.slide_section
    section.open_slide(slide)
    qtbot.waitUntil(lambda: section.state.slide is not None, timeout=30_000)
    section.buttons["whole"].click()
    qtbot.waitUntil(lambda: whole in section.state.outputs, timeout=240_000)
    assert np.array_equal(labels_of(whole), labels_of(reference))
    assert table_of(whole).shape == table_of(reference).shape
    assert (table_of(whole).index == table_of(reference).index).all()


def test_closing_after_a_failed_save_asks_before_the_corrections_are_lost(
        make_napari_viewer, qtbot, monkeypatch, tmp_path, fake_model, mixed_test_folder):
    from napari_nuclei.core.image_io import read_labels
    from napari_nuclei.session import actions

    viewer = make_napari_viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    qtbot.waitUntil(lambda: dock.close_guard.watching)
    folder = tmp_path / "session"
    dock.data_tab.set_paths(None, mixed_test_folder, None, folder)
    dock.session.run_dir = fake_model
    journeys.predict_folder(qtbot, dock)
    said = []
    dock.session.notices.said.connect(lambda level, line: said.append((level, line)))
    writable = [False]
    original = actions.save_corrected

    def save_corrected(*args):  # a read-only folder, a full disk, a drive gone
        if not writable[0]:
            raise PermissionError(1, "Operation not permitted",
                                  str(folder / "corrected" / ".gray.tif.1.part"))
        return original(*args)

    monkeypatch.setattr(actions, "save_corrected", save_corrected)
    layers = dock.predict_tab.layers
    name, layer = layers.current, layers.labels_layer
    layer.data_setitem(np.nonzero(layer.data == 1), 0)
    layers.autosave.flush()
    qtbot.waitUntil(lambda: layers.autosave.failed and dock.session.jobs.idle)
    assert said == [("error", f"{folder}: the session could not be saved (Operation not "
                              "permitted); its corrections stay unsaved until it can be")]
    asked = []
    dock.predict_tab.ask = lambda _parent, question: asked.append(question) or False
    window = dock.window()
    window.close()
    assert window.isVisible() and asked == [
        f"The corrections of {name} are not saved: the output folder {folder} could not "
        "be written. Close anyway? They are lost."]
    assert len(said) == 1  # the failure is not said again

    writable[0] = True  # the folder can be written again: closing saves, asks nothing
    assert dock.close_guard.may_close()  # what the window's close asks the guard
    assert len(asked) == 1
    np.testing.assert_array_equal(read_labels(folder / "corrected" / f"{name}.tif"),
                                  dock.session.images[name].labels)
