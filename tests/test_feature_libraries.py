"""The libraries of whole slides, measurements and OpenSlide's formats: named with the pip
command in one line before any work starts (command line), in ``info`` and in the dock's
Slides section. Missing libraries are simulated through package metadata, which is all
the check reads."""

from __future__ import annotations

import sys

import pytest

from napari_nuclei import cli
from napari_nuclei.core.engine import library_error_line, missing_libraries
from napari_nuclei.core.engine import status as status_module


@pytest.fixture
def absent(monkeypatch):
    """Make distributions look uninstalled (to package metadata, as the check reads it)."""

    def use(*names: str) -> None:
        real = status_module._version
        hidden = {name.lower() for name in names}
        monkeypatch.setattr(status_module, "_version",
                            lambda name: None if name.lower() in hidden else real(name))

    return use


@pytest.fixture
def no_engine_check(monkeypatch):
    """The engine check must not run: the library check comes first, in milliseconds."""

    def engine_problem():
        raise AssertionError("the engine was checked before the libraries")

    monkeypatch.setattr(cli, "_engine_problem", engine_problem)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_nothing_is_missing_where_everything_is_installed():
    pytest.importorskip("openslide")
    found = missing_libraries()
    assert not found and found.line() == ""


def test_missing_libraries_are_one_line_with_their_versions_and_the_pip_command(absent):
    absent("shapely", "zarr")
    found = missing_libraries(["slides", "measurements"])
    assert found.features == ("slides", "measurements")
    assert found.specs == ("zarr>=3", "shapely>=2.0")  # each once, in the order needed
    line = found.line()
    assert "\n" not in line
    assert line.startswith("whole slides and measurements and GeoJSON need zarr>=3, "
                           "shapely>=2.0")
    assert line.endswith(f"{sys.executable} -m pip install 'zarr>=3' 'shapely>=2.0'")
    assert missing_libraries(["dask"]).line() == ""


def test_a_library_too_old_counts_as_missing(monkeypatch):
    real = status_module._version
    from packaging.version import Version

    monkeypatch.setattr(status_module, "_version",
                        lambda name: Version("2.18") if name == "zarr" else real(name))
    assert missing_libraries(["slides"]).specs == ("zarr>=3",)


@pytest.mark.parametrize("flag", [["--measurements", "m.parquet"], ["--geojson", "geo"]])
def test_predict_with_measurements_refuses_at_once_without_shapely(flag, absent,
                                                                    no_engine_check, capsys,
                                                                    tmp_path):
    absent("shapely")
    argv = ["predict", "--model", str(tmp_path / "run"), "--images", str(tmp_path / "in"),
            "-o", str(tmp_path / "out.json"), *flag]
    assert cli.main(argv) == 3
    line = _one_error_line(capsys)
    assert line.startswith("napari-nuclei: error: measurements and GeoJSON need "
                           "shapely>=2.0")
    assert "-m pip install 'shapely>=2.0'" in line
    assert not (tmp_path / "out.json").exists()


def test_predict_without_measurements_needs_no_shapely(absent, monkeypatch, capsys, tmp_path):
    absent("shapely")
    monkeypatch.setattr(cli, "_engine_problem", lambda: "ENGINE")
    argv = ["predict", "--model", "m", "--images", str(tmp_path), "-o", "o.json"]
    assert cli.main(argv) == 3
    assert _one_error_line(capsys) == "napari-nuclei: error: ENGINE"


def test_predict_slide_refuses_at_once_without_tiffslide(absent, no_engine_check, capsys,
                                                         tmp_path):
    absent("tiffslide", "imagecodecs")
    out = tmp_path / "out"
    assert cli.main(["predict-slide", str(tmp_path / "slide.tif"), "--model", "m",
                     "-o", str(out)]) == 3
    line = _one_error_line(capsys)
    assert line.startswith("napari-nuclei: error: whole slides need tiffslide>=2.4, "
                           "imagecodecs>=2024.1")
    assert line.endswith("-m pip install 'tiffslide>=2.4' 'imagecodecs>=2024.1'")
    assert not out.exists()


def test_openslide_is_asked_for_only_by_formats_only_it_reads(absent, monkeypatch, capsys,
                                                              tmp_path):
    absent("openslide-python", "openslide-bin")
    monkeypatch.setattr(cli, "_engine_problem", lambda: None)
    # A TIFF slide does not need OpenSlide: the command goes on (and finds no such file).
    assert cli.main(["predict-slide", str(tmp_path / "a.tif"), "--model", "m",
                     "-o", str(tmp_path / "out")]) == 2
    assert "no such slide file" in _one_error_line(capsys)
    assert cli.main(["predict-slide", str(tmp_path / "a.mrxs"), "--model", "m",
                     "-o", str(tmp_path / "out")]) == 3
    line = _one_error_line(capsys)
    assert "formats only OpenSlide reads" in line and "openslide-python>=1.3" in line
    assert "'openslide-bin>=4'" in line


def test_dask_options_need_distributed(absent, no_engine_check, capsys, tmp_path):
    absent("distributed")
    assert cli.main(["predict-slide", str(tmp_path / "a.tif"), "--model", "m",
                     "-o", str(tmp_path / "out"), "--workers", "1"]) == 3
    assert "Dask clusters need distributed>=2024.1" in _one_error_line(capsys)


def test_an_import_error_of_a_library_inside_a_command_is_its_fix(absent, monkeypatch,
                                                                  capsys):
    def info(args):
        raise ModuleNotFoundError("No module named 'shapely'", name="shapely")

    monkeypatch.setattr(cli, "_cmd_info", info)
    absent("shapely")
    assert cli.main(["info"]) == 3
    assert "need shapely>=2.0" in _one_error_line(capsys)


def test_library_import_errors_are_told_apart_from_bugs(absent):
    assert library_error_line(ValueError("shapely")) is None
    assert library_error_line(ModuleNotFoundError("x", name="not_ours")) is None
    # Installed as far as metadata tells, but it does not import: reinstall it.
    line = library_error_line(ImportError("libgeos_c.so: cannot open", name="shapely"))
    assert line.startswith("shapely does not import (libgeos_c.so: cannot open)")
    assert line.endswith("-m pip install --force-reinstall shapely")
    absent("scikit-image")
    line = library_error_line(ModuleNotFoundError("x", name="skimage.color"))
    assert "need scikit-image>=0.22" in line


def test_info_lists_missing_libraries_and_the_sample_data_folder(absent, monkeypatch):
    from napari_nuclei import environment
    from napari_nuclei.core.sample import sample_data_dir

    monkeypatch.setattr(environment, "_engine_rows", lambda: [])
    rows = dict(environment.environment_report())
    assert rows["sample data"] == str(sample_data_dir())
    absent("pyarrow", "openslide-bin")
    rows = dict(environment.environment_report())
    assert rows["libraries"] == missing_libraries().line()
    assert "pyarrow>=14" in rows["libraries"] and "openslide-bin>=4" in rows["libraries"]


@pytest.mark.gui
def test_the_slides_section_shows_what_is_missing(make_napari_viewer, qtbot, absent):
    from napari_nuclei._qt.slide_section import SlideSection
    from napari_nuclei.session import Session

    viewer = make_napari_viewer()
    absent("zarr")
    section = SlideSection(viewer, Session())
    qtbot.addWidget(section)
    section.show()
    assert section.libraries_hint.isVisible()
    assert section.libraries_hint.text().startswith("whole slides need zarr>=3")
    assert "-m pip install 'zarr>=3'" in section.libraries_hint.text()


@pytest.mark.gui
def test_the_slides_section_says_nothing_when_nothing_is_missing(make_napari_viewer, qtbot):
    pytest.importorskip("openslide")
    from napari_nuclei._qt.slide_section import SlideSection
    from napari_nuclei.session import Session

    section = SlideSection(make_napari_viewer(), Session())
    qtbot.addWidget(section)
    section.show()
    assert section.libraries_hint.isHidden() and section.libraries_hint.text() == ""
