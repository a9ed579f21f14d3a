"""The commands a user types, run as real subprocesses (`python -m bot ...`), the way a user runs
them: backtest, lessons, pairs and close-all. Their behaviour in depth is tested with the parts;
here the command itself must start, answer and exit as its --help promises. Bybit is pointed at
a closed loopback port, so nothing leaves the machine."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from self_test.conftest import FIXTURES, ROOT


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot(tmp_path: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HISTORICAL_DATA_PATH=str(data), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL=f"http://127.0.0.1:{_closed_port()}")
    return subprocess.run([sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture
def round1_folder(tmp_path: Path) -> Path:
    """A data folder with a real paper record (37 closed trades, replay journal)."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "round1_data", data)
    return data


def test_backtest_prints_the_report_next_to_buy_and_hold_and_writes_its_files(tmp_path):
    out = tmp_path / "report"
    run = bot(tmp_path, tmp_path / "data", "backtest", "--strategy", "sma", "--start", "2019-01-01",
              "--end", "2019-03-01", "--no-plot", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2019-01-01 00:00 UTC .. 2019-03-01 00:00 UTC (1416 candles of 60)" in run.stdout
    assert "net P&L after fees" in run.stdout and "buy-and-hold" in run.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    trades = (out / "trades.csv").read_text().splitlines()
    assert metrics and len(trades) > 1                  # a header and at least one round trip


def test_backtest_outside_the_data_says_what_it_has(tmp_path, round1_folder):
    """The round-1 cache holds 300 candles of 2017: a 2019 backtest is refused with the reason."""
    run = bot(tmp_path, round1_folder, "backtest", "--strategy", "sma", "--start", "2019-01-01", "--no-plot")
    assert run.returncode == 1
    assert "fewer than 2 candles between --start 2019-01-01" in run.stderr + run.stdout


def test_lessons_reads_the_record_and_learns_nothing_from_too_few_trades(tmp_path, round1_folder):
    run = bot(tmp_path, round1_folder, "lessons", "--replay", "--refresh", "--all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 new lesson(s) from 37 closed trade(s)" in run.stdout


def test_pairs_falls_back_to_the_configured_symbols_when_bybit_is_down(tmp_path):
    run = bot(tmp_path, tmp_path / "data", "pairs", "--top", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "source: fallback" in run.stdout
    rows = [line.split() for line in run.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [r[1] for r in rows] == ["BTCUSDT", "ETHUSDT"]
    assert bot(tmp_path, tmp_path / "data", "pairs", "--top", "0").returncode == 2


def test_close_all_on_a_wallet_with_nothing_open_says_so(tmp_path, round1_folder):
    run = bot(tmp_path, round1_folder, "close-all")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no open positions" in run.stdout and "paper_wallet.json" in run.stdout


def test_paper_stops_cleanly_on_sigterm_and_says_so(tmp_path):
    """`python -m bot paper` stopped the way a service manager stops it (SIGTERM) finishes its
    session and says why, with no traceback or logging error (its signal handler only flags the
    stop: logging from inside it could collide with a log line the main thread was writing)."""
    import signal
    import time

    env = dict(os.environ, HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL=f"http://127.0.0.1:{_closed_port()}", STRATEGY="sma", TELEGRAM_BOT_TOKEN="")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "paper",
                             "--no-supervisor", "--replay", "--pace", "0.01"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = tmp_path / "bot.log"
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and "PAPER session started" not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.1)   # polling the log file for a condition, bounded by `end`
        assert "PAPER session started" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    text = log.read_text() + out
    assert "signal 15: stopping" in text and "PAPER session over" in text
    assert "Traceback" not in text and "Logging error" not in text
