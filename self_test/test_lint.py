"""The code passes the project's linter (ruff, settings in pyproject.toml), as `make lint` checks."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from self_test.conftest import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    try:
        out = subprocess.run([ruff, "check", "bot", "self_test", "bench", "config.py", "ui.py"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        out = subprocess.run([sys.executable, "-m", "ruff", "check", "bot", "self_test", "bench", "config.py",
                              "ui.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        if "No module named ruff" in out.stderr:
            pytest.fail("ruff is not installed: it is pinned in requirements-test.txt (make test installs it)")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
