"""The engine on LIVE candles pushed by the kline WebSocket: what the window and the alerts see when
the stream stalls (the snapshot's connection and a DATA event the Telegram notifier forwards), and
that the candles keep coming, by REST, while it is down."""

from __future__ import annotations

from pathlib import Path

from bot.alerts.telegram import format_event
from bot.engine.snapshot import EngineStatus
from bot.engine.trading_engine import TradingEngine
from bot.events import EventKind
from bot.exchange.sim import SimExchange
from bot.journal.store import Journal
from bot.market.bybit_klines import BybitKlineSource
from bot.market.feeds import BybitMarket
from bot.market.seed import load_seed
from bot.types import Connection
from self_test.conftest import make_settings, wait_for
from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream

DAY = 86_400


def test_a_stalled_stream_shows_in_the_snapshot_and_alerts_and_rest_carries_on(tmp_path: Path) -> None:
    frame = load_seed("BTCUSDT", "D")
    k = len(frame) - 30
    now = [int(frame.index[k]) / 1000 + DAY + 1]
    with FakeBybit(clock=lambda: now[0]) as rest, FakeBybitStream(rest) as ws:
        rest.set_klines("BTCUSDT", "D", frame)
        s = make_settings(tmp_path, CANDLE_INTERVAL="D", FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1,
                          STRATEGY="sma", TRAINING_ENABLED=False, BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url,
                          BYBIT_WS_PING_SECONDS=0.5, BYBIT_WS_STALL_SECONDS=2.0, MARKET_POLL_SECONDS=0.2)
        src = BybitKlineSource.from_settings(s)
        src.clock = lambda: now[0]
        market = BybitMarket(s, source=src, clock=lambda: now[0])   # the engine gives it its bus
        engine = TradingEngine(s, market=market, journal=Journal(tmp_path / "j.db"), exchange=SimExchange(s))
        q = engine.subscribe()
        engine.start("PAPER")
        try:
            wait_for(lambda: engine.snapshot().status == EngineStatus.RUNNING, timeout=30, message="running")
            wait_for(lambda: ws.subscribed("kline.D.BTCUSDT") and engine.snapshot().connection == Connection.CONNECTED,
                     timeout=15, message="the kline stream up, shown in the snapshot")
            last = engine.pairs["BTCUSDT"].last_ms
            assert last == int(frame.index[k])
            now[0] += DAY
            ws.tick()                                               # pushed by the stream
            wait_for(lambda: engine.pairs["BTCUSDT"].last_ms == int(frame.index[k + 1]), message="a pushed candle")
            ws.stall()
            wait_for(lambda: engine.snapshot().connection == Connection.POLLING, timeout=15,
                     message="the stall shown as Polling-REST")
            now[0] += DAY                                           # closes while the stream is down
            wait_for(lambda: engine.pairs["BTCUSDT"].last_ms == int(frame.index[k + 2]), message="a polled candle")
            wait_for(lambda: engine.snapshot().connection == Connection.CONNECTED, timeout=15,
                     message="the stream back")
        finally:
            engine.stop(close_positions=False)
    events = [e for e in [q.get_nowait() for _ in range(q.qsize())] if e.kind == EventKind.DATA]
    down = [e for e in events if "stream down" in e.message]
    back = [e for e in events if "stream back" in e.message]
    assert down and down[0].level == "WARNING" and "stalled" in down[0].message
    assert back
    # the phone hears both
    assert (format_event(down[0]) or "").startswith("📡") and (format_event(back[0]) or "").startswith("📡")
