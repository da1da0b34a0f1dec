"""The engine is checked by using it: broken detectron2 copies, a torchvision that does not
match torch, the verdict kept on disk, the real engine of this environment, and ``pip
check`` after the installer. The broken copies and the real engine run the real check (a
new interpreter importing torch); the cache's logic runs with the check replaced."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from packaging.version import Version

from napari_nuclei import cli
from napari_nuclei.core.engine import EngineCheck, engine_status, verify_engine
from napari_nuclei.core.engine import check as check_module
from napari_nuclei.core.engine import install as install_module
from napari_nuclei.core.engine.status import (
    ENGINE_DISTRIBUTION,
    ENGINE_VERSION,
    installed_torch,
    paired_torchvision,
    torch_mismatch,
    torch_problem,
)
from napari_nuclei.core.jobs import drain

PREDICT = ["predict", "--model", "m", "--images", "i", "-o", "o"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Verdicts kept in this test's own folder, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(check_module.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def complete():
    """Skip where torch or detectron2's requirements are absent: nothing would be run."""
    if not engine_status().complete:
        pytest.skip("this environment's engine is incomplete")


@pytest.fixture
def fake_detectron2(tmp_path, monkeypatch, complete):
    """Make this process (and so the check) find a detectron2 written by the test first;
    the real one is put back afterwards."""

    def detectron2_modules():
        return [name for name in sys.modules if name.split(".")[0] == "detectron2"]

    saved = {name: sys.modules.pop(name) for name in detectron2_modules()}

    def make(files: dict[str, str], name: str = "fake") -> Path:
        package = tmp_path / name / "detectron2"
        package.mkdir(parents=True)
        for relative, text in files.items():
            (package / relative).parent.mkdir(parents=True, exist_ok=True)
            (package / relative).write_text(text)
        monkeypatch.syspath_prepend(str(package.parent))
        importlib.invalidate_caches()
        assert engine_status().detectron2_dir == package.resolve()
        return package

    yield make
    for name in detectron2_modules():
        del sys.modules[name]
    sys.modules.update(saved)


BROKEN = {
    "raises on import": ({"__init__.py": "raise RuntimeError('no GPU driver found')\n"},
                         "detectron2 raises on import: RuntimeError: no GPU driver found ("),
    "syntax error": ({"__init__.py": "__version__ = '0.7'\n", "modeling/__init__.py":
                      "def build_model(cfg:\n"},
                     "detectron2 has a syntax error in "),
    "empty package": ({"__init__.py": ""}, "is an empty package (nothing but an __init__.py)"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_detectron2_is_refused_with_its_cause_and_fix(kind, fake_detectron2,
                                                                capsys):
    files, cause = BROKEN[kind]
    package = fake_detectron2(files)
    fix = f"repair or rebuild your detectron2 in {package.resolve()}"

    assert cli.main(["install-engine", "--check"]) == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "engine: not ready"
    problems = [line for line in out if line.startswith("not working: ")]
    assert len(problems) == 1 and cause in problems[0] and fix in problems[0]
    if kind == "syntax error":
        assert f"{package.resolve() / 'modeling' / '__init__.py'}, line 1" in problems[0]

    # The commands that need the engine refuse with the same single line (the verdict
    # is kept, so this costs no new check).
    assert cli.main(PREDICT) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-nuclei: error: ")
    assert cause in err[0] and fix in err[0]


def test_info_reports_a_broken_detectron2_without_a_traceback(fake_detectron2, capsys):
    fake_detectron2(BROKEN["raises on import"][0])
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "not ready" in out and "no GPU driver found" in out
    assert "Traceback" not in out


def test_a_torchvision_without_its_operators_is_named_with_the_fix(tmp_path, monkeypatch,
                                                                   complete, capsys):
    # What a torchvision built for another torch does on import, in a copy that shadows
    # the installed one in the check's interpreter only.
    fake = tmp_path / "shadow" / "torchvision"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    torch = installed_torch()["torch"]

    assert cli.main(["install-engine", "--check"]) == 3
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("not working: "))
    assert "does not work with torch" in line and "not built for each other" in line
    assert "operator torchvision::nms does not exist" in line
    pair = paired_torchvision(torch)
    assert (f"-m pip install --force-reinstall torch=={torch.public} "
            f'"torchvision=={pair[0]}.{pair[1]}.*"') in line


@pytest.mark.parametrize("message", ["operator torchvision::nms does not exist",
                                     "Couldn't load custom C++ ops. This can happen if your "
                                     "PyTorch and torchvision versions are incompatible"])
def test_the_mismatch_symptom_is_mapped_to_the_fix(message, monkeypatch):
    versions = {"torch": Version("2.14.1+cu130"), "torchvision": Version("0.29.1+cu130")}
    monkeypatch.setattr(check_module, "installed_torch", lambda: versions)
    status = engine_status()
    report = {"ok": False, "stage": "run the model", "type": "RuntimeError",
              "message": message, "frames": [["/somewhere/torchvision/ops/boxes.py", 40]]}
    verdict = check_module._Wording(status).word(report)
    assert verdict.culprit == "torchvision" and not verdict.ok
    assert verdict.cause.startswith("torchvision 0.29.1+cu130 does not work with torch "
                                    "2.14.1+cu130")
    assert verdict.fix.endswith('-m pip install --force-reinstall torch==2.14.1 '
                                '"torchvision==0.29.*" --index-url '
                                'https://download.pytorch.org/whl/cu130')
    assert "\n" not in verdict.line()


@pytest.mark.parametrize("vision, why", [
    ("0.28.0", "torch 2.14 needs torchvision 0.29"),
    ("0.29.1+cpu", "one is built for cu130, the other for cpu"),
])
def test_versions_that_do_not_pair_are_refused_before_anything_runs(vision, why):
    line = torch_problem({"torch": Version("2.14.1+cu130"), "torchvision": Version(vision)})
    assert line.startswith(f"torchvision {vision} does not match torch 2.14.1+cu130 ({why})")
    assert line.endswith('-m pip install torch==2.14.1 "torchvision==0.29.*" --index-url '
                         'https://download.pytorch.org/whl/cu130')


def test_the_pairing_rule_holds_for_the_installed_versions():
    versions = installed_torch()
    if not versions["torch"] or not versions["torchvision"]:
        pytest.skip("torch is not installed")
    torch, vision = versions["torch"], versions["torchvision"]
    assert paired_torchvision(torch) == vision.release[:2]
    assert torch_mismatch(versions) is None
    assert paired_torchvision(Version("2.0.1")) == (0, 15)
    assert paired_torchvision(Version("2.5.1")) == (0, 20)


def test_the_real_engine_passes_and_a_second_check_runs_nothing(complete, cache,
                                                                monkeypatch):
    start = time.perf_counter()
    status = verify_engine()
    cold = time.perf_counter() - start
    assert status.ready, status.problems()
    assert not status.check.cached
    assert set(status.check.versions) == {"torch", "torchvision", "detectron2"}

    def no_child(*args, **kwargs):
        raise AssertionError("the check ran again")

    monkeypatch.setattr(check_module, "run_check", no_child)
    start = time.perf_counter()
    again = verify_engine()
    warm = time.perf_counter() - start
    assert again.ready and again.check.cached
    print(f"engine check: cold {cold:.2f} s, kept verdict {warm * 1000:.1f} ms")


class CountingCheck:
    """Stands in for the child: counts runs and answers what it is told."""

    def __init__(self, verdict: EngineCheck, lasting: bool = True):
        self.runs = 0
        self.verdict, self.lasting = verdict, lasting

    def __call__(self, status, timeout=None):
        self.runs += 1
        return self.verdict, self.lasting


def test_a_changed_engine_is_checked_again(fake_detectron2, monkeypatch):
    package = fake_detectron2({"__init__.py": "raise RuntimeError('first')\n"})
    child = CountingCheck(EngineCheck(False, "cause", None, "detectron2"))
    monkeypatch.setattr(check_module, "run_check", child)
    assert not verify_engine().ready and child.runs == 1
    assert not verify_engine().ready and child.runs == 1
    # Importing writes byte code beside the files: that is no change to the engine.
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    verify_engine()
    assert child.runs == 1
    (package / "__init__.py").write_text("__version__ = 'repaired, and longer'\n")
    verify_engine()
    assert child.runs == 2
    (package / "utils.py").write_text("")
    verify_engine()
    assert child.runs == 3
    verify_engine(use_cache=False)
    assert child.runs == 4


def test_a_check_that_did_not_finish_is_not_kept(complete, monkeypatch):
    child = CountingCheck(EngineCheck(False, "the engine check did not finish within 1 s",
                                      "try again", "check"), lasting=False)
    monkeypatch.setattr(check_module, "run_check", child)
    verify_engine()
    verify_engine()
    assert child.runs == 2


def test_a_hanging_check_is_stopped_and_said(fake_detectron2):
    fake_detectron2({"__init__.py": "import time\ntime.sleep(600)\n"})
    status = engine_status()
    verdict, lasting = check_module.run_check(status, timeout=30)
    assert not lasting and not verdict.ok
    assert verdict.cause.startswith("the engine check did not finish within 30 s while it "
                                    "ran import")


def test_nothing_runs_while_a_piece_is_missing(monkeypatch):
    child = CountingCheck(EngineCheck(True))
    monkeypatch.setattr(check_module, "run_check", child)
    incomplete = dataclasses.replace(engine_status(), detectron2_dir=None)
    assert verify_engine(incomplete) is incomplete and child.runs == 0


# --- the installer ------------------------------------------------------------------

SAL_METADATA = f"""Metadata-Version: 2.1
Name: {ENGINE_DISTRIBUTION}
Version: {ENGINE_VERSION}
Requires-Python: >=3.8
Requires-Dist: Pillow>=7.1
Requires-Dist: tensorboard
Requires-Dist: numpy<2
Requires-Dist: dataclasses; python_version < "3.7"
Requires-Dist: black
Provides-Extra: all
Requires-Dist: timm; extra == "all"

Detectron2 is a platform for object detection.
"""
SAL_WHEEL = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp310-cp310-linux_x86_64\n"


def _write_sal(folder: Path) -> Path:
    """What ``pip install --target`` leaves of the distribution, in small."""
    from napari_nuclei.core.engine.install import _record_hash

    info = folder / f"sal_detectron2-{ENGINE_VERSION}.dist-info"
    info.mkdir(parents=True)
    (folder / "detectron2").mkdir()
    files = {"detectron2/__init__.py": "__version__ = '0.7.2'\n",
             "detectron2/_C.cpython-310-x86_64-linux-gnu.so": "binary",
             f"{info.name}/METADATA": SAL_METADATA, f"{info.name}/WHEEL": SAL_WHEEL}
    rows = []
    for name, text in files.items():
        (folder / name).write_text(text)
        rows.append([name, _record_hash(text.encode()), str(len(text.encode()))])
    rows.append([f"{info.name}/RECORD", "", ""])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    (info / "RECORD").write_text(out.getvalue())
    return info


def test_the_metadata_says_what_the_code_needs_and_record_follows(tmp_path):
    from napari_nuclei.core.engine.install import _record_hash, code_requirements

    info = _write_sal(tmp_path)
    assert install_module.record_code_needs(tmp_path)
    text = (info / "METADATA").read_text()
    requires = [line.split(": ", 1)[1] for line in text.splitlines()
                if line.startswith("Requires-Dist:")]
    assert requires == [*code_requirements(), 'timm; extra == "all"']
    assert not any(r.startswith(("black", "tensorboard", "numpy<2", "dataclasses"))
                   for r in requires)
    assert text.endswith("\n\nDetectron2 is a platform for object detection.\n")
    assert "Tag: py3-none-any" in (info / "WHEEL").read_text()
    assert not (tmp_path / "detectron2" / "_C.cpython-310-x86_64-linux-gnu.so").exists()
    rows = list(csv.reader(io.StringIO((info / "RECORD").read_text())))
    assert {row[0] for row in rows} == {"detectron2/__init__.py", f"{info.name}/METADATA",
                                        f"{info.name}/WHEEL", f"{info.name}/RECORD"}
    for name, digest, size in rows:
        if digest:
            data = (tmp_path / name).read_bytes()
            assert digest == _record_hash(data) and int(size) == len(data)
    # Done once: a second pass changes nothing.
    before = {p: p.read_bytes() for p in info.iterdir()}
    assert not install_module.record_code_needs(tmp_path)
    assert before == {p: p.read_bytes() for p in info.iterdir()}


def test_pips_resolver_note_becomes_one_line():
    lines = iter(["Collecting tabulate", "Successfully installed tabulate-0.9",
                  "ERROR: pip's dependency resolver does not currently take into account all "
                  "the packages that are installed. This behaviour is the source of the "
                  "following dependency conflicts.",
                  "other-tool 1.0 requires black, which is not installed.",
                  "other-tool 1.0 has requirement numpy<2, but you have numpy 2.4.",
                  "Done"])
    conflicts: list[str] = []
    kept = list(install_module._without_resolver_notes(lines, conflicts))
    assert kept == ["Collecting tabulate", "Successfully installed tabulate-0.9", "Done"]
    line = install_module._conflicts_line(conflicts)
    assert "\n" not in line and line.startswith("note: pip reports requirements of installed "
                                                "packages it left unmet: other-tool 1.0 "
                                                "requires black")
    assert line.endswith("-m pip check)")


def test_the_installer_puts_back_its_own_copy_when_it_does_not_work(tmp_path, monkeypatch):
    from test_engine import FakePip

    from napari_nuclei.core.engine import EngineLocation

    monkeypatch.setattr(sys, "path", [p for p in sys.path if "detectron2" not in p])
    saved = {n: sys.modules.pop(n) for n in list(sys.modules)
             if n.split(".")[0] == "detectron2"}
    # What the check says on each call: the first installation works, then the copy is
    # found broken, and once installed again it works.
    answers = [EngineCheck(True),
               EngineCheck(False, "detectron2 raises on import: X", None, "detectron2"),
               EngineCheck(True)]

    def checked(status, **options):
        assert options == {"use_cache": False}  # the installer always checks anew
        return dataclasses.replace(status, check=answers.pop(0)) if status.complete \
            else status

    monkeypatch.setattr(install_module, "verify_engine", checked)
    monkeypatch.setattr(install_module, "_imports_here", lambda: True)
    try:
        location = EngineLocation(tmp_path / "env" / "detectron2-dist", tmp_path / "site")
        assert drain(install_module.install_engine(location, FakePip())).ready
        pip = FakePip()
        steps = []
        result = drain(install_module.install_engine(location, pip), steps.append)
        assert result.ready and result.changed and not answers
        assert [c[:2] for c in pip.calls] == [["install", "--no-deps"]]
        assert any(s.message == "detectron2 raises on import: X: installing detectron2 "
                   f"{ENGINE_VERSION} again" for s in steps)
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "detectron2"]:
            del sys.modules[name]
        sys.modules.update(saved)


def test_an_own_detectron2_that_does_not_work_is_not_replaced(fake_detectron2, tmp_path,
                                                              monkeypatch, capsys):
    from test_engine import FakePip

    from napari_nuclei.core.engine import EngineLocation

    fake_detectron2(BROKEN["raises on import"][0])
    pip = FakePip()
    location = EngineLocation(tmp_path / "env" / "detectron2-dist", tmp_path / "site")
    result = drain(install_module.install_engine(location, pip))
    assert pip.calls == [] and not result.ready and not location.folder.exists()
    assert "detectron2 raises on import: RuntimeError: no GPU driver found" in \
        result.summary()


def test_pip_check_is_clean_after_install_engine(complete, cache):
    status = engine_status()
    if status.source != "napari-nuclei":
        pytest.skip("this environment's detectron2 was not installed by install-engine")
    env = {**os.environ, check_module.CACHE_ENV: str(cache)}
    done = subprocess.run([sys.executable, "-m", "napari_nuclei.cli", "install-engine"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith(("Nothing to do. The engine is "
                                                            "ready", "The engine is ready"))
    checked = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                             text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.gui
def test_the_dock_checks_in_a_worker_and_shows_a_failure(qtbot, monkeypatch):
    from napari_nuclei._qt import engine_panel

    complete = dataclasses.replace(engine_status(), torch_problem=None,
                                   detectron2_dir=Path("/env/detectron2"),
                                   missing_requirements=(), source="napari-nuclei")
    broken = EngineCheck(False, "detectron2 raises on import: RuntimeError: X", None,
                         "detectron2")

    def slow_check(status):
        time.sleep(1.0)  # a cold check takes seconds: the GUI must not wait for it
        return dataclasses.replace(status, check=broken)

    monkeypatch.setattr(engine_panel, "engine_status", lambda: complete)
    monkeypatch.setattr(engine_panel, "verify_engine", slow_check)
    start = time.perf_counter()
    panel = engine_panel.EnginePanel()
    assert time.perf_counter() - start < 0.5
    qtbot.addWidget(panel)
    assert panel.isHidden()  # nothing is known to be wrong yet
    qtbot.waitUntil(lambda: not panel.isHidden(), timeout=10_000)
    text = panel.problems.text()
    assert "detectron2 raises on import: RuntimeError: X; reinstall it with: the Install " \
           "button below" in text
    assert panel.install_button.isEnabled()
