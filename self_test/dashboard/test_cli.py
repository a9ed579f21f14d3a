"""`python -m bot dashboard` as a user types it, in a real subprocess: it serves the dashboard of a
paper bot replaying the real seed candles until Ctrl-C, and refuses to listen beyond loopback
without a token (one clear line, no traceback, exit 2)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from self_test.conftest import ROOT, wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "TELEGRAM_", "BYBIT_"))}
    env.update(HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL=f"http://127.0.0.1:{_free_port()}", TRAINING_ENABLED="false",
               SIMULATION_ORDER_DELAY="0", **extra)
    return env


def test_the_dashboard_command_serves_a_replaying_paper_bot_until_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "dashboard", "--port", str(port),
         "--replay", "--strategy", "sma", "--symbols", "BTCUSDT", "--interval", "D", "--pace", "0.02"],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        states: list[dict] = []

        def serving() -> bool:
            assert proc.poll() is None, proc.communicate()
            try:
                st = httpx.get(url + "/api/state", timeout=5).json()
            except httpx.HTTPError:
                return False
            states.append(st)
            return st["status"] == "Running" and st["candles"] > 50

        wait_for(serving, 120, interval=0.2, message="the dashboard of a running paper bot")
        st = states[-1]
        assert st["mode"] == "PAPER" and st["data_source"] == "REPLAY" and st["active_pairs"] == ["BTCUSDT"]
        page = httpx.get(url + "/", timeout=5)
        assert page.status_code == 200 and "lightweight-charts" in page.text
        refused = httpx.post(url + "/api/control/pause", timeout=5, headers={"X-Requested-By": "dashboard"})
        assert refused.status_code == 403 and "read-only" in refused.text                # by default
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"dashboard: http://127.0.0.1:{port}/ (read-only)" in out
    assert "Traceback" not in err


def test_the_dashboard_command_refuses_other_addresses_without_a_token(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "dashboard",
                        "--host", "0.0.0.0", "--replay"], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "set DASHBOARD_TOKEN" in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "data" / "replay_state.db").exists()          # nothing was started
