"""The package as users get it: sdist and wheel built, the wheel installed (not editable)
into a fresh virtual environment, and the plugin run from there (scripts/check_wheel.sh:
info, install-engine with the real pip, a short training on the packaged sample data,
predict, npe2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.mark.timeout(3600)
def test_the_wheel_installs_provisions_its_engine_trains_and_predicts():
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(REPO / "scripts" / "check_wheel.sh")], env=env,
                            capture_output=True, text=True, timeout=3500)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    for step in ("install-engine", "training the tiny preset", "predicting a packaged test image",
                 "npe2: manifest", "passed:"):
        assert step in result.stdout, report[-4000:]
