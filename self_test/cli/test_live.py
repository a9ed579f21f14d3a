"""`python -m bot live` as a real process: its help, and the path from the command line to the
engine's settings and assembly (the full live session against the fake Bybit is tested in
self_test/engine/test_trading_engine.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bot(tmp_path: Path, *args: str, **env_values: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "test.env"
    values = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "bot.log"),
              "BYBIT_BASE_URL": f"http://127.0.0.1:{closed_port()}", "BYBIT_TIMEOUT": "1",
              "SIMULATION_ORDER_DELAY": "0", "TELEGRAM_BOT_TOKEN": "", **env_values}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "TELEGRAM_", "CRASH_AT"))}
    env.update(values)
    return subprocess.run([sys.executable, "-m", "bot", "--env-file", str(env_file), *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))


def test_live_help_lists_its_options(tmp_path: Path) -> None:
    proc = run_bot(tmp_path, "live", "--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--yes", "--strategy", "--symbols", "--interval", "--candles", "--close-on-exit",
                   "--no-training", "--no-supervisor", "--override-gate"):
        assert option in proc.stdout, option
    assert "--pace" not in proc.stdout and "--replay" not in proc.stdout   # paper's options only


def test_live_builds_its_settings_and_engine_then_needs_bybit_market_data(tmp_path: Path) -> None:
    """The command line that once died in the settings (`'Namespace' object has no attribute
    'pace'`) reaches the engine: consent stored, pairs pinned by --symbols at interval 1, then the
    session refuses to trade live without Bybit's candles (exit 3, nothing traded)."""
    proc = run_bot(tmp_path, "live", "--yes", "--override-gate", "--strategy", "sma", "--symbols", "BTCUSDT,ETHUSDT",
                   "--interval", "1", "--no-supervisor", BYBIT_API_KEY="testkey", BYBIT_API_SECRET="testsecret",
                   RESTART_MAX_PER_HOUR="0")
    log = (tmp_path / "bot.log").read_text()
    assert "AttributeError" not in proc.stderr + log, proc.stderr[-2000:]
    assert proc.returncode == 3, log[-3000:]
    assert "live trading needs Bybit market data" in log and "engine stopped after 0 restarts" in log
    assert (tmp_path / "data" / "state.db").exists()            # the consent went into the record
    assert not (tmp_path / "data" / "paper_wallet.json").exists()


def test_live_with_the_gate_unmet_refuses_without_the_override_and_says_which_criteria(tmp_path: Path) -> None:
    """A fresh record has not passed the promotion gate: `--yes` alone trades nothing (exit 1,
    the checklist printed and the unmet criteria named); typed at the prompt, anything but the
    override word trades nothing either."""
    proc = run_bot(tmp_path, "live", "--yes", "--no-supervisor", BYBIT_API_KEY="testkey", BYBIT_API_SECRET="testsecret")
    assert proc.returncode == 1, proc.stderr
    assert "[ ] closed trades: 0 (needs >= 30)" in proc.stdout and "never count" in proc.stdout
    assert "has not passed (unmet: closed trades" in proc.stderr and "--override-gate" in proc.stderr
    assert "Traceback" not in proc.stderr
    env_file = tmp_path / "test.env"
    typed = subprocess.run([sys.executable, "-c", "import sys, builtins; from bot.cli import live; "
                            "import argparse; from config import load_settings; "
                            f"s = load_settings({str(env_file)!r}); "
                            "a = argparse.Namespace(yes=False, override_gate=False); "
                            "print('RESULT', live._gate_unmet(a, s, ask=lambda p: 'yes please'))"],
                           capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert "RESULT None" in typed.stdout and "gate not overridden" in typed.stdout, typed.stderr[-2000:]
