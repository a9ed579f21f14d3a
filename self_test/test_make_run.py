"""`make run` as a user types it, on a machine with no display: the paper bot starts headless
(under the supervisor), says it found no display, trades on replayed real candles when Bybit
cannot be reached, and stops on Ctrl-C. Bybit is pointed at a closed loopback port, so nothing
leaves the machine and the bot falls back to REPLAY at once."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from self_test.conftest import ROOT


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or not (ROOT / ".venv" / ".runtime").exists(),
                    reason="needs make and the project's .venv (make test creates both)")
def test_make_run_without_a_display_trades_headless_and_stops_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL=f"http://127.0.0.1:{_closed_port()}", STRATEGY="sma",
               TELEGRAM_BOT_TOKEN="", TELEGRAM_CHAT_ID="", BYBIT_API_KEY="", BYBIT_API_SECRET="")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []

    def read_until(text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return True
        return False

    try:
        assert read_until("PAPER session started", 180), "".join(seen)[-3000:]
        os.killpg(proc.pid, signal.SIGINT)          # Ctrl-C in the terminal reaches the whole group
        proc.wait(60)
        read_until("\0never\0", 2)                   # collect what was printed while stopping
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = "".join(seen)
    assert "No display found: running the paper bot headless" in out
    assert "REPLAY" in out and "strategy sma" in out
    assert "PAPER session over" in out, out[-3000:]
    assert "Traceback" not in out
