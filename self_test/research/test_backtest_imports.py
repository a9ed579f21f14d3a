"""`python -m bot backtest --strategy sma --no-plot` as a user types it loads no heavy package it
does not use: no torch (the agent), no matplotlib (the plot), no scipy (statistics of other
commands). Its start-up time is measured in bench/cli_startup.py, not here."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from self_test.conftest import ROOT

HEAVY = ("torch", "matplotlib", "scipy")


def run_backtest(tmp_path, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_"))}
    env.update(HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"))
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "bot", "--env-file", "/nonexistent.env",
                          "backtest", "--strategy", "sma", "--out", str(tmp_path / "report"), *extra],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = set(re.findall(r"^import time:\s*\d+ \|\s*\d+ \|\s*([\w.]+)$", out.stderr, flags=re.M))
    return out, {name.split(".")[0] for name in imported}


def test_an_sma_backtest_without_plot_imports_no_torch_matplotlib_or_scipy(tmp_path):
    out, packages = run_backtest(tmp_path, "--no-plot")
    assert "pandas" in packages and "bot" in packages          # the import list was read
    assert not packages & set(HEAVY), sorted(packages & set(HEAVY))
    assert (tmp_path / "report" / "metrics.json").exists()
    assert not list((tmp_path / "report").glob("*.png"))
    assert "total return" in out.stdout.lower() or "return" in out.stdout.lower()


def test_with_the_plot_matplotlib_is_loaded_and_the_picture_written(tmp_path):
    _, packages = run_backtest(tmp_path)
    assert "matplotlib" in packages and "torch" not in packages
    assert list((tmp_path / "report").glob("*.png"))
