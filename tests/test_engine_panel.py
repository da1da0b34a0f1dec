"""The dock's engine panel with the engine missing; the installer is replaced by a stub
that yields steps and returns a result (the real one runs in test_packaging)."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_nuclei._qt import engine_panel
from napari_nuclei.core.engine import (
    EngineCheck,
    EngineInstallError,
    EngineInstallResult,
    EngineLocation,
    EngineStatus,
    EngineStep,
    MissingLibraries,
)

pytestmark = pytest.mark.gui

LOCATION = EngineLocation(Path("/env/detectron2-dist"), Path("/env/site"))
TORCH_LINE = "torch is not installed; install it with: python -m pip install torch torchvision"


def status(detectron2=False, torch=True, requirements=()):
    # Checked by using it, and working: what counts once every piece is there.
    return EngineStatus(None if torch else TORCH_LINE,
                        LOCATION.folder / "detectron2" if detectron2 else None,
                        "napari-nuclei" if detectron2 else "missing", False,
                        tuple(requirements), LOCATION, EngineCheck(True))


class FakeEngine:
    """The engine's state and an installer that changes it, as the real ones would."""

    def __init__(self, restart_needed=False, error=None):
        self.status = status(detectron2=False, requirements=("fvcore>=0.1.5",))
        self.restart_needed = restart_needed
        self.error = error
        self.runs = 0

    def engine_status(self):
        return self.status

    def install_engine(self):
        self.runs += 1
        for number, text in enumerate(("Looking for detectron2", "Registering",
                                       "Checking requirements", "Checking imports"), 1):
            yield EngineStep(number, 4, text)
        if self.error:
            raise self.error
        self.status = status(detectron2=True)
        return EngineInstallResult(self.status, changed=True,
                                   restart_needed=self.restart_needed)


OPENSLIDE = MissingLibraries(("openslide",), ("openslide-python>=1.3", "openslide-bin>=4"))
NOTHING = MissingLibraries((), ())


@pytest.fixture
def fake_engine(monkeypatch):
    def use(engine: FakeEngine, libraries=NOTHING) -> FakeEngine:
        monkeypatch.setattr(engine_panel, "engine_status", engine.engine_status)
        monkeypatch.setattr(engine_panel, "install_engine", engine.install_engine)
        monkeypatch.setattr(engine_panel, "verify_engine", lambda status: status)
        monkeypatch.setattr(engine_panel, "missing_libraries", lambda features: libraries)
        return engine

    return use


def test_the_dock_shows_what_is_missing_and_installs_it_without_restart(
        make_napari_viewer, qtbot, fake_engine):
    engine = fake_engine(FakeEngine())
    viewer = make_napari_viewer()
    _, dock = viewer.window.add_plugin_dock_widget("napari-nuclei", "Nuclei segmentation")
    panel = dock.engine_panel
    assert not panel.isHidden()
    assert "detectron2 is not installed" in panel.problems.text()
    assert "fvcore>=0.1.5" in panel.problems.text()
    assert panel.install_button.isEnabled()

    panel.install_button.click()
    qtbot.waitUntil(lambda: panel.isHidden(), timeout=10_000)
    assert engine.runs == 1
    assert "The engine is ready" in panel.message.text()
    assert panel.progress.format() == "step 4/4" and panel.progress.value() == 4
    assert panel.progress.isHidden()


def test_a_restart_needed_is_said_and_install_is_not_offered_again(qtbot, fake_engine):
    fake_engine(FakeEngine(restart_needed=True))
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.install_button.click()
    qtbot.waitUntil(lambda: "restart" in panel.message.text(), timeout=10_000)
    assert not panel.isHidden() and not panel.install_button.isEnabled()


def test_a_failed_installation_can_be_retried(qtbot, fake_engine, monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    engine = fake_engine(FakeEngine(error=EngineInstallError("pip install failed: offline")))
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.install_button.click()
    qtbot.waitUntil(lambda: "failed" in panel.message.text(), timeout=10_000)
    assert panel.install_button.isEnabled() and not panel.isHidden()
    assert shown == ["EngineInstallError: pip install failed: offline"]
    assert engine.runs == 1


def test_missing_torch_shows_the_command_and_offers_no_install(qtbot, fake_engine):
    engine = FakeEngine()
    engine.status = status(detectron2=True, torch=False)
    fake_engine(engine)
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    panel.show()
    assert TORCH_LINE in panel.problems.text()
    assert not panel.install_button.isEnabled()


def test_the_panel_stays_hidden_when_the_engine_is_ready(qtbot, fake_engine):
    engine = FakeEngine()
    engine.status = status(detectron2=True)
    fake_engine(engine)
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    assert panel.isHidden()


def test_an_engine_import_error_in_a_job_is_shown_as_its_fix(monkeypatch):
    from napari_nuclei._qt.workers import notify_error

    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    monkeypatch.setattr("napari_nuclei.core.engine.status.torch_problem", lambda: TORCH_LINE)
    notify_error(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert shown == [TORCH_LINE]


def test_the_panel_names_openslide_which_install_adds(qtbot, fake_engine):
    fake_engine(FakeEngine(), OPENSLIDE)
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    panel.show()
    lines = panel.problems.text().splitlines()
    assert lines[-1] == ("• formats only OpenSlide reads (MIRAX, Hamamatsu VMS, ...) need "
                         "openslide-python>=1.3, openslide-bin>=4, not installed here; "
                         f"install them with: {engine_panel.INSTALL_HOW}")


def test_openslide_alone_does_not_bring_up_the_panel(qtbot, fake_engine):
    engine = FakeEngine()
    engine.status = status(detectron2=True)
    fake_engine(engine, OPENSLIDE)
    panel = engine_panel.EnginePanel()
    qtbot.addWidget(panel)
    assert panel.isHidden()
