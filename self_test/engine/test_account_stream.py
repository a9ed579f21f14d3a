"""The live engine on Bybit's private streams (real pybit against the fake Bybit's WebSocket): a
position closed outside the bot reaches the snapshot pushed, with no REST position read, and the
journal at once (not at the periodic reconcile); the private stream's drop and return are in the
snapshot and on the bus."""

from __future__ import annotations

import time
from pathlib import Path

from bot.alerts.telegram import format_event
from bot.engine.snapshot import EngineStatus
from bot.engine.trading_engine import TradingEngine
from bot.events import EventKind
from bot.journal.store import Journal
from bot.market.bybit_klines import BybitKlineSource
from bot.market.seed import load_seed
from bot.types import Connection
from self_test.conftest import make_settings, wait_for
from self_test.exchange.test_bybit_account import _by_hand, _paths
from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream
from self_test.fakes.priced_market import PricedMarket

DAY = 86_400


def test_a_position_closed_on_bybit_reaches_the_snapshot_pushed_and_the_journal_at_once(tmp_path: Path) -> None:
    frame = load_seed("BTCUSDT", "D")
    now = [int(frame.index[len(frame) - 30]) / 1000 + DAY + 1]
    keys = {"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}
    with FakeBybit(clock=lambda: now[0]) as rest, FakeBybitStream(rest) as ws:
        rest.set_klines("BTCUSDT", "D", frame)
        s = make_settings(tmp_path, environ=keys, CANDLE_INTERVAL="D", FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1,
                          STRATEGY="sma", TRAINING_ENABLED=False, BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url,
                          BYBIT_WS_PING_SECONDS=0.5, BYBIT_WS_STALL_SECONDS=2.0, MARKET_POLL_SECONDS=0.2,
                          BYBIT_TIMEOUT=2.0, RECONCILE_INTERVAL_SECONDS=3600)   # only an outside change reconciles
        src = BybitKlineSource.from_settings(s)
        src.clock = lambda: now[0]
        journal = Journal(tmp_path / "live.db")
        engine = TradingEngine(s, market=PricedMarket(s, source=src, clock=lambda: now[0], fake=rest), journal=journal)
        q = engine.subscribe()
        engine.give_live_consent()
        engine.start("LIVE")
        try:
            wait_for(lambda: engine.snapshot().status == EngineStatus.RUNNING, timeout=30, message="live session")
            wait_for(lambda: engine.snapshot().account_stream == Connection.CONNECTED, timeout=10,
                     message="the private stream shown connected")
            opened = engine.submit_manual_order("BTCUSDT", "Buy", 100.0).result(timeout=20)
            assert opened.ok, opened
            wait_for(lambda: [p.symbol for p in engine.snapshot().positions] == ["BTCUSDT"], message="the position")
            (pos,) = engine.snapshot().positions
            before = len(rest.requests)
            t0 = time.monotonic()
            _by_hand(rest, "Sell", f"{pos.size:g}")                     # closed on the website
            wait_for(lambda: not engine.snapshot().positions, timeout=5, message="the close in the snapshot")
            seen_s = time.monotonic() - t0
            # pushed: the snapshot learnt it without reading positions over REST (REST reads would be
            # the fallback the stream replaces); the adapter waits at most 0.5 s on a push it expects
            assert "/v5/position/list" not in _paths(rest, before), f"polled, not pushed ({seen_s:.2f} s)"
            print(f"close by hand -> snapshot: {seen_s:.3f} s")
            # and the journal closed the round trip now, not at the hourly reconcile
            wait_for(lambda: [t.symbol for t in journal.closed_trades("LIVE")] == ["BTCUSDT"], timeout=10,
                     message="the round trip journaled")
            assert not journal.positions("LIVE")
            ws.refuse(True)
            ws.drop("/v5/private")
            wait_for(lambda: engine.snapshot().account_stream == Connection.POLLING, timeout=10,
                     message="the private stream shown down")
            ws.refuse(False)
            wait_for(lambda: engine.snapshot().account_stream == Connection.CONNECTED, timeout=15,
                     message="the private stream back")
        finally:
            engine.stop(close_positions=False)
            journal.close()
    events = [e for e in [q.get_nowait() for _ in range(q.qsize())] if e.kind == EventKind.DATA]
    down = [e for e in events if "private stream down" in e.message]
    back = [e for e in events if "private stream back" in e.message]
    assert down and down[0].level == "WARNING" and back and back[0].data.get("alert") is True
    assert (format_event(down[0]) or "").startswith("📡") and (format_event(back[0]) or "").startswith("📡")  # the phone
