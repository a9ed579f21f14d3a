"""`python -m bot paper` as a user runs it against Bybit with its WebSocket streams, in a real
subprocess: the fake Bybit (REST and WebSocket, 127.0.0.1) serves 1-minute candles on the real
clock, with the values of the real recorded BTC candles; the closed candle reaches the bot through
pybit's kline stream."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

from bot.market.candles import make_frame
from bot.market.seed import load_seed
from self_test.conftest import ROOT
from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream

MINUTE = 60_000


def _minute_candles(n_before: int, n_after: int) -> pd.DataFrame:
    """Real recorded BTC candle values, stamped one minute apart around the current minute."""
    real = load_seed("BTCUSDT", "60").iloc[-(n_before + n_after):]
    start = (int(time.time() * 1000) // MINUTE - n_before + 1) * MINUTE
    stamps = [start + i * MINUTE for i in range(len(real))]
    return make_frame(stamps, real["open"].to_numpy(), real["high"].to_numpy(), real["low"].to_numpy(),
                      real["close"].to_numpy(), real["volume"].to_numpy(), real["turnover"].to_numpy())


def test_paper_on_bybit_gets_its_closed_candle_from_the_kline_stream(tmp_path: Path) -> None:
    frame = _minute_candles(400, 5)
    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        rest.set_klines("BTCUSDT", "1", frame)
        rest.set_price("BTCUSDT", float(frame["close"].iloc[-6]))
        stop = threading.Event()
        rest_calls_at_close: list[int] = []   # REST kline calls made when the first candle closed

        def ticker() -> None:         # Bybit pushes the open candle every second or so, and each close
            while not stop.wait(0.2):
                closed = [p for p in ws.tick() if p[2]]
                if closed and ws.subscribed("kline.1.BTCUSDT") and not rest_calls_at_close:
                    rest_calls_at_close.append(len(rest.calls("/v5/market/kline")))

        threading.Thread(target=ticker, daemon=True).start()
        log = tmp_path / "bot.log"
        env = dict(os.environ, HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(log),
                   BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url, BYBIT_WS_PING_SECONDS="1",
                   BYBIT_WS_STALL_SECONDS="5", MARKET_POLL_SECONDS="1")
        try:
            run = subprocess.run(
                [sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), "paper", "--strategy", "sma",
                 "--symbols", "BTCUSDT", "--interval", "1", "--candles", "1", "--no-training", "--no-supervisor"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        finally:
            stop.set()
    text = log.read_text(encoding="utf-8")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert "Bybit stream connected" in text, text[-3000:]
    # the closed candle came by the stream: no REST kline call from its close to the bot's exit
    assert rest_calls_at_close == [len(rest.calls("/v5/market/kline"))]
    assert any(path == "/v5/public/linear" and m.get("op") == "subscribe" and "kline.1.BTCUSDT" in m.get("args", [])
               for path, m in ws.received)
