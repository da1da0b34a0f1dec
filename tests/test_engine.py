"""The engine installer: detection, installation into a folder of the environment,
registration, idempotence, failures and stops. pip is replaced by a fake that writes what
``pip install --target`` would; the real pip runs in the wheel check (test_packaging)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from napari_nuclei import cli
from napari_nuclei.core.engine import (
    EngineInstallError,
    EngineLocation,
    engine_error_line,
    engine_status,
    install_engine,
)
from napari_nuclei.core.engine import install as install_module
from napari_nuclei.core.engine.status import (
    ENGINE_DISTRIBUTION,
    ENGINE_VERSION,
    requirement_spec,
    torch_problem,
    unmet,
)
from napari_nuclei.core.jobs import drain


class FakePip:
    """Records pip calls; ``install --target DIR`` writes a small importable detectron2
    with the distribution's metadata, as the real one would."""

    def __init__(self, fail_after_writing: bool = False):
        self.calls: list[list[str]] = []
        self.fail_after_writing = fail_after_writing

    def __call__(self, args):
        self.calls.append(list(args))
        if "--target" in args:
            target = Path(args[args.index("--target") + 1])
            package = target / "detectron2"
            (package / "model_zoo").mkdir(parents=True)
            (package / "modeling").mkdir()
            (package / "__init__.py").write_text("__version__ = 'fake'\n")
            (package / "model_zoo" / "__init__.py").write_text("")
            (package / "modeling" / "__init__.py").write_text("")
            yield f"Collecting {ENGINE_DISTRIBUTION}=={ENGINE_VERSION}"
            if self.fail_after_writing:
                raise EngineInstallError("pip install failed (exit 1): no network")
            info = target / f"sal_detectron2-{ENGINE_VERSION}.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {ENGINE_DISTRIBUTION}"
                                           f"\nVersion: {ENGINE_VERSION}\n")
            yield f"Successfully installed {ENGINE_DISTRIBUTION}-{ENGINE_VERSION}"
        else:
            yield "Successfully installed " + " ".join(args[1:])


@pytest.fixture(autouse=True)
def engine_works(monkeypatch):
    """The installer's last step, using the engine in a new interpreter, as if it passed:
    the fake detectron2 here cannot build a model (test_engine_check runs the real one)."""
    import dataclasses

    from napari_nuclei.core.engine import EngineCheck

    def passed(status, **options):
        return dataclasses.replace(status, check=EngineCheck(True)) if status.complete \
            else status

    monkeypatch.setattr(install_module, "verify_engine", passed)


@pytest.fixture(autouse=True)
def libraries_installed(monkeypatch):
    """Every library of the other features installed, whatever this environment holds
    (the tests that need some missing say so)."""
    monkeypatch.setattr(install_module, "library_requirements", lambda: ([], []))


@pytest.fixture
def location(tmp_path) -> EngineLocation:
    return EngineLocation(tmp_path / "env" / "detectron2-dist", tmp_path / "env" / "site")


@pytest.fixture
def no_detectron2(monkeypatch):
    """This process as if detectron2 had never been installed: off the path, unimported.
    Both are restored afterwards."""

    def detectron2_modules():
        return [name for name in sys.modules if name.split(".")[0] == "detectron2"]

    monkeypatch.setattr(sys, "path", [p for p in sys.path if "detectron2" not in p])
    saved = {name: sys.modules.pop(name) for name in detectron2_modules()}
    assert engine_status(EngineLocation(Path("/nowhere"), Path("/nowhere"))).source == \
        "missing"
    yield
    for name in detectron2_modules():
        del sys.modules[name]
    sys.modules.update(saved)


def test_installs_registers_and_imports_without_restart(location, no_detectron2):
    pip = FakePip()
    steps = []
    result = drain(install_engine(location, pip), steps.append)

    assert result.changed and result.ready and not result.restart_needed
    assert [c[:2] for c in pip.calls] == [["install", "--no-deps"]]
    call = pip.calls[0]
    assert call[call.index("--python-version") + 1] == "3.10"
    assert "--only-binary=:all:" in call and f"{ENGINE_DISTRIBUTION}==0.7.2" in call
    assert location.pth_file.read_text() == f"{location.folder}\n"
    assert str(location.folder) in sys.path
    import detectron2

    assert Path(detectron2.__file__).parent == location.folder / "detectron2"
    assert result.status.source == "napari-nuclei"
    assert "installed by napari-nuclei install-engine" in result.summary()
    assert [s.step for s in steps if not s.detail] == [1, 1, 2, 3, 4]
    assert any(s.detail and "Successfully installed" in s.message for s in steps)
    assert not list(location.folder.parent.glob("*.partial"))


def test_a_second_run_installs_nothing(location, no_detectron2):
    drain(install_engine(location, FakePip()))
    pip = FakePip()
    result = drain(install_engine(location, pip))
    assert pip.calls == [] and not result.changed and result.ready


def test_an_installed_folder_not_yet_on_the_path_is_found_and_activated(
        location, no_detectron2, monkeypatch):
    drain(install_engine(location, FakePip()))
    # A new process: the folder is installed and registered but not yet on sys.path.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(location.folder)])
    sys.modules.pop("detectron2", None)
    status = engine_status(location)
    assert status.installed_not_on_path and not status.ready
    assert "importable after restarting" in status.origin()
    pip = FakePip()
    result = drain(install_engine(location, pip))
    assert pip.calls == [] and result.ready and str(location.folder) in sys.path


def test_a_failed_installation_leaves_nothing_half_written(location, no_detectron2):
    with pytest.raises(EngineInstallError, match="no network"):
        drain(install_engine(location, FakePip(fail_after_writing=True)))
    assert not location.folder.exists() and not location.pth_file.exists()
    assert not list(location.folder.parent.glob("*.partial"))


def test_stopping_during_pip_leaves_nothing_half_written(location, no_detectron2):
    job = install_engine(location, FakePip())
    while not next(job).detail:  # run until pip's first output line
        pass
    job.close()
    assert not location.folder.exists() and not location.pth_file.exists()
    assert not list(location.folder.parent.glob("*.partial"))


def test_an_importable_detectron2_of_ones_own_is_used(location):
    pytest.importorskip("detectron2")
    pip = FakePip()
    result = drain(install_engine(location, pip))
    assert pip.calls == [] and result.status.source == "own" and result.ready
    assert "an installation of your own" in result.status.origin()
    assert not location.folder.exists() and not location.pth_file.exists()


def test_missing_requirements_are_installed_with_pip(location, monkeypatch):
    pytest.importorskip("detectron2")
    wanted = [Requirement('tabulate>=9999; extra == "train"'), Requirement("numpy>=1")]
    monkeypatch.setattr(install_module, "runtime_requirements", lambda: wanted)
    pip = FakePip()
    drain(install_engine(location, pip))
    assert pip.calls == [["install", "tabulate>=9999"]]


def test_missing_base_libraries_are_installed_with_detectrons_requirements(location,
                                                                           monkeypatch):
    pytest.importorskip("detectron2")
    monkeypatch.setattr(install_module, "runtime_requirements",
                        lambda: [Requirement('tabulate>=9999; extra == "train"')])
    monkeypatch.setattr(install_module, "library_requirements",
                        lambda: ([Requirement("shapely>=2.0")], []))
    pip = FakePip()
    drain(install_engine(location, pip))
    assert pip.calls == [["install", "tabulate>=9999", "shapely>=2.0"]]


def test_openslide_is_installed_from_wheels_apart(location, monkeypatch):
    pytest.importorskip("detectron2")
    monkeypatch.setattr(install_module, "library_requirements", lambda: (
        [], [Requirement("openslide-python>=1.3"), Requirement("openslide-bin>=4")]))
    # Whether an earlier test imported OpenSlide (then a restart is asked) is not what
    # is tested here.
    monkeypatch.setattr(install_module, "_loaded_distributions_replaced", lambda _: False)
    pip = FakePip()
    steps = []
    result = drain(install_engine(location, pip), steps.append)
    assert pip.calls == [["install", "--only-binary", "openslide-python,openslide-bin",
                          "openslide-python>=1.3", "openslide-bin>=4"]]
    assert result.ready and result.changed
    assert any(s.message == "Installing openslide-python>=1.3, openslide-bin>=4 "
               "(OpenSlide's formats)" for s in steps)


def test_a_platform_without_openslide_wheels_gets_a_note_and_a_working_engine(location,
                                                                              monkeypatch):
    pytest.importorskip("detectron2")
    monkeypatch.setattr(install_module, "library_requirements",
                        lambda: ([], [Requirement("openslide-bin>=4")]))
    monkeypatch.setattr(install_module, "_loaded_distributions_replaced", lambda _: False)

    def pip(args):
        yield "ERROR: No matching distribution found for openslide-bin>=4"
        raise EngineInstallError("pip install failed (exit 1): no matching distribution")

    steps = []
    result = drain(install_engine(location, pip), steps.append)
    assert result.ready
    notes = [s.message for s in steps if s.message.startswith("note: formats only OpenSlide")]
    assert len(notes) == 1 and "no matching distribution" in notes[0]
    assert "every other format and feature works" in notes[0]


def test_library_requirements_split_openslide_from_the_base(monkeypatch):
    monkeypatch.undo()  # the real lookup, not the fixture's
    # As if zarr and openslide-bin were not installed.
    monkeypatch.setattr(install_module, "unmet", lambda requirements: [
        r for r in requirements if r.name in ("zarr", "openslide-bin")])
    base, optional = install_module.library_requirements()
    assert [str(r) for r in base] == ["zarr>=3"]
    assert [str(r) for r in optional] == ["openslide-bin>=4"]


def test_replacing_a_package_this_process_has_loaded_asks_for_a_restart(location, monkeypatch):
    pytest.importorskip("detectron2")
    import numpy  # noqa: F401  (loaded here, so replacing it needs a restart)

    monkeypatch.setattr(install_module, "runtime_requirements",
                        lambda: [Requirement("numpy>=9999")])
    result = drain(install_engine(location, FakePip()))
    assert result.restart_needed and not result.ready
    assert "restart" in result.summary()


def test_unmet_names_what_is_absent_or_too_old():
    found = unmet([Requirement("numpy>=1"), Requirement("numpy<1"),
                   Requirement("surely-not-a-package-here>=1")])
    assert [requirement_spec(r) for r in found] == ["numpy<1", "surely-not-a-package-here>=1"]


@pytest.mark.parametrize("versions, start", [
    ({"torch": None, "torchvision": None}, "torch is not installed"),
    ({"torch": Version("2.4"), "torchvision": None}, "torchvision is not installed"),
    ({"torch": Version("1.13.1"), "torchvision": Version("0.14")},
     "torch 1.13.1 is older than the 2.1"),
])
def test_torch_problems_are_one_line_with_cpu_and_cuda_commands(versions, start):
    line = torch_problem(versions)
    assert line.startswith(start) and "\n" not in line
    assert f"{sys.executable} -m pip install" in line
    assert "download.pytorch.org/whl/cpu" in line and "download.pytorch.org/whl/cu" in line
    assert ("-U torch" in line) == ("older" in line)


def test_a_recent_torch_is_no_problem():
    assert torch_problem({"torch": Version("2.14.1+cu130"),
                          "torchvision": Version("0.29.1")}) is None


def test_engine_import_errors_become_the_fix(monkeypatch):
    monkeypatch.setattr("napari_nuclei.core.engine.status.torch_problem",
                        lambda: "torch is not installed; install it with: X")
    assert engine_error_line(ModuleNotFoundError("No module", name="torch.nn")) == \
        "torch is not installed; install it with: X"
    assert engine_error_line(ModuleNotFoundError("No module", name="skimage")) is None
    assert engine_error_line(ValueError("torch")) is None


def _missing_torch_status():
    from napari_nuclei.core.engine import status

    real = status.engine_status()
    return status.EngineStatus("torch is not installed; install it with: CMD", None, "missing",
                               False, (), real.location)


@pytest.mark.parametrize("command", [["train", "--data", "x"], ["predict", "--model", "m",
                                                                 "--images", "i", "-o", "o"]])
def test_train_and_predict_without_the_engine_say_what_to_run(command, monkeypatch, capsys):
    monkeypatch.setattr("napari_nuclei.core.engine.engine_status", _missing_torch_status)
    assert cli.main(command) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["napari-nuclei: error: torch is not installed; install it with: CMD"]


def test_install_engine_check_reports_and_sets_the_exit_status(monkeypatch, capsys):
    pytest.importorskip("detectron2")
    assert cli.main(["install-engine", "--check"]) == 0
    out = capsys.readouterr().out
    assert "engine: ready" in out and "detectron2: " in out
    monkeypatch.setattr("napari_nuclei.core.engine.engine_status", _missing_torch_status)
    assert cli.main(["install-engine", "--check"]) == 3
    out = capsys.readouterr().out
    assert "missing: torch is not installed" in out and "engine: not ready" in out


def test_install_engine_when_all_is_there_changes_nothing(capsys, monkeypatch):
    pytest.importorskip("detectron2")
    if not engine_status().complete:
        pytest.skip("this environment's engine is incomplete; the command would install")

    def no_pip(args):
        raise AssertionError(f"pip {args} called")

    monkeypatch.setattr(install_module, "run_pip", no_pip)
    pth = engine_status().location.pth_file
    before = pth.stat().st_mtime_ns if pth.exists() else None
    assert cli.main(["install-engine"]) == 0
    assert (pth.stat().st_mtime_ns if pth.exists() else None) == before
    out = capsys.readouterr().out
    assert "Nothing to do. The engine is ready" in out
