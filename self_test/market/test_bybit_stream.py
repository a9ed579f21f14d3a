"""The LIVE feed with Bybit's public kline stream: the real pybit WebSocket against the fake Bybit
(REST and WebSocket sharing one set of real seed candles and one clock), with its faults."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from bot.events import EventBus, EventKind
from bot.market.bybit_klines import BybitKlineSource
from bot.market.bybit_socket import ws_base_url
from bot.market.bybit_stream import parse_kline
from bot.market.feeds import BybitMarket
from bot.types import Candle, Connection
from self_test.conftest import make_settings
from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream

STEP = 3_600_000
SYMBOL = "BTCUSDT"
TOPIC = "kline.60.BTCUSDT"


class Clock:
    """The one clock of the fakes and the feed: candles close when the test moves it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, candles: int) -> None:
        self.t += candles * STEP / 1000


class Rig:
    def __init__(self, tmp_path: Path, frame: pd.DataFrame, **overrides: object) -> None:
        self.frame = frame
        self.k = len(frame) - 40                      # history ends at candle k (closed)
        self.clock = Clock(int(frame.index[self.k]) / 1000 + STEP / 1000 + 1)
        self.rest = FakeBybit(clock=self.clock).start()
        self.rest.set_klines(SYMBOL, "60", frame)
        self.ws = FakeBybitStream(self.rest).start()
        base = dict(BYBIT_BASE_URL=self.rest.url, BYBIT_WS_URL=self.ws.url, BYBIT_WS_PING_SECONDS=0.5,
                    BYBIT_WS_STALL_SECONDS=3.0, MARKET_POLL_SECONDS=0.2, CANDLE_INTERVAL="60")
        base.update(overrides)
        self.settings = make_settings(tmp_path, **base)
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        src = BybitKlineSource.from_settings(self.settings)
        src.clock = self.clock
        self.market = BybitMarket(self.settings, source=src, clock=self.clock, bus=self.bus)
        self.market.history(SYMBOL, 50)
        self.got: list[Candle] = []

    def open_ms(self, i: int) -> int:
        return int(self.frame.index[self.k + i])

    def pump(self, until: Callable[[], bool], timeout: float = 10.0, what: str = "candles") -> None:
        """Read the feed as the engine does (0.2 s at a time) until `until()`."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; got {self.offsets()}"
            self.got.extend(self.market.next_candles([SYMBOL], timeout=0.2))

    def offsets(self) -> list[int]:
        return [(c.open_ms - self.open_ms(0)) // STEP for c in self.got]

    def data_events(self) -> list[str]:
        out = []
        while not self.events.empty():
            ev = self.events.get_nowait()
            if ev.kind == EventKind.DATA:
                out.append(ev.message)
        return out

    def close(self) -> None:
        self.market.close()
        self.ws.stop()
        self.rest.stop()


@pytest.fixture
def rig(tmp_path: Path, btc_hourly: pd.DataFrame) -> Iterator[Rig]:
    r = Rig(tmp_path, btc_hourly)
    yield r
    r.close()


def _caught_up(rig: Rig) -> bool:
    """Subscribed, connected, and the connection's REST catch-up done."""
    s = rig.market._stream
    return (rig.ws.subscribed(TOPIC) and rig.market.connection == Connection.CONNECTED and s is not None
            and rig.market._synced_epoch == s.link.epoch)


def _connected(rig: Rig) -> None:
    rig.pump(lambda: _caught_up(rig), what="the kline subscription")


def test_only_confirmed_candles_reach_the_feed_and_come_by_the_stream(rig: Rig) -> None:
    _connected(rig)
    rest_calls = len(rig.rest.calls("/v5/market/kline"))
    for i in (1, 2, 3):
        rig.clock.advance(1)
        pushed = rig.ws.tick()
        # the fake pushes the closed candle and the one still open (confirm false)
        assert (TOPIC, rig.open_ms(i), True) in pushed and (TOPIC, rig.open_ms(i + 1), False) in pushed
        rig.pump(lambda i=i: len(rig.got) >= i)
    assert rig.offsets() == [1, 2, 3]                               # never the open candle 4
    assert len(rig.rest.calls("/v5/market/kline")) == rest_calls    # pushed, not polled
    first = rig.got[0]
    row = rig.frame.iloc[rig.k + 1]
    assert (first.open, first.close, first.volume) == (row["open"], row["close"], row["volume"])
    assert rig.market.connection == Connection.CONNECTED


def test_parse_kline_keeps_confirmed_rows_only() -> None:
    row = {"start": 1672324800000, "end": 1672325099999, "interval": "5", "open": "16649.5", "close": "16677",
           "high": "16677", "low": "16608", "volume": "2.081", "turnover": "34666.4005", "timestamp": 1}
    msg = {"topic": "kline.5.BTCUSDT", "type": "snapshot", "ts": 1,
           "data": [{**row, "confirm": False}, {**row, "start": 1672324500000, "confirm": True}]}
    (c,) = parse_kline(msg, "5")
    assert (c.symbol, c.open_ms, c.close, c.turnover) == ("BTCUSDT", 1672324500000, 16677.0, 34666.4005)


def test_a_drop_reconnects_and_backfills_over_rest_with_no_candle_missed_or_doubled(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _connected(rig)
    rig.clock.advance(1)
    rig.ws.tick()
    rig.pump(lambda: len(rig.got) >= 1)
    rig.data_events()
    epoch = rig.market._stream.link.epoch if rig.market._stream else 0
    rig.ws.refuse(True)                      # the reconnect fails for a while
    assert rig.ws.drop() == 1
    rig.pump(lambda: rig.market.connection == Connection.POLLING, what="the POLLING state")
    rig.clock.advance(3)                     # three candles close while the stream is down ...
    assert [p for p in rig.ws.tick() if p[2]] == [(TOPIC, rig.open_ms(i), True) for i in (2, 3, 4)]
    rig.ws.refuse(False)
    rig.pump(lambda: rig.market.connection == Connection.CONNECTED and rig.ws.subscribed(TOPIC),
             what="the reconnect")
    rig.clock.advance(1)                     # ... and one after it is back, pushed
    rig.ws.tick()
    rig.pump(lambda: len(rig.got) >= 5)
    rig.pump(lambda: True)                   # one more read: nothing doubled behind them
    assert rig.offsets() == [1, 2, 3, 4, 5]
    assert rig.market._stream is not None and rig.market._stream.link.epoch > epoch
    events = rig.data_events()
    assert any("stream down (connection lost)" in m for m in events), events
    assert any("stream back" in m for m in events), events
    # an expected drop is one warning (the event), not pybit's and websocket-client's ERROR lines
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING and "stream down" in r.getMessage()]) == 1


def test_a_stall_falls_back_to_rest_polling_and_shows_it(rig: Rig) -> None:
    _connected(rig)
    rig.data_events()
    assert rig.ws.stall() == 1               # open, but nothing more comes: no pushes, no pongs
    rig.clock.advance(1)
    rig.ws.tick()                            # this candle is never pushed: the link is stalled
    rig.pump(lambda: rig.market.connection == Connection.POLLING, timeout=15, what="stall detection")
    rig.pump(lambda: len(rig.got) >= 1)
    assert rig.offsets() == [1]              # by REST polling
    assert any("stream down (no message for" in m and "stalled" in m for m in rig.data_events())
    rig.pump(lambda: rig.market.connection == Connection.CONNECTED, timeout=15, what="the stream back")
    rig.clock.advance(1)
    rig.ws.tick()
    rig.pump(lambda: len(rig.got) >= 2)
    assert rig.offsets() == [1, 2]


@pytest.mark.parametrize("text", [
    '{"topic": "kline.60.BTCUSDT", "data": [',                 # not JSON
    '{"topic": "kline.60.BTCUSDT", "type": "snapshot", "data": "oops"}',   # our topic, wrong shape
    '{"topic": "kline.60.ETHUSDT", "data": []}',               # a topic nobody subscribed to
    '{"op": "weird"}',                                         # an op pybit does not know
])
def test_a_malformed_message_is_logged_once_and_survived(rig: Rig, caplog: pytest.LogCaptureFixture,
                                                         text: str) -> None:
    _connected(rig)
    stream = rig.market._stream
    assert stream is not None
    epoch = stream.link.epoch
    with caplog.at_level(logging.WARNING, logger="bot.market"):
        assert rig.ws.send_malformed(text=text) == 1
        rig.clock.advance(1)
        rig.ws.tick()
        rig.pump(lambda: len(rig.got) >= 1)
    bad = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(bad) == 1, [r.getMessage() for r in caplog.records]
    assert stream.link.epoch == epoch and stream.link.malformed + stream.bad_messages == 1  # the same connection
    assert rig.offsets() == [1]


def test_no_stream_to_the_official_bybit_when_only_the_rest_url_is_set(tmp_path: Path,
                                                                      btc_hourly: pd.DataFrame) -> None:
    r = Rig(tmp_path, btc_hourly, BYBIT_WS_URL="")
    try:
        assert ws_base_url(r.settings) is None
        r.clock.advance(2)
        r.pump(lambda: len(r.got) >= 2)          # REST polling alone
        assert r.offsets() == [1, 2] and r.ws.opened == 0 and r.market.connection == Connection.CONNECTED
    finally:
        r.close()
    official = make_settings(tmp_path)
    assert ws_base_url(official) == ""           # "" = pybit's own endpoints


def test_more_than_ten_spot_symbols_are_subscribed_in_chunks_bybit_accepts(tmp_path: Path) -> None:
    """Bybit spot refuses a subscribe request of more than 10 topics (pybit only logs that, and the
    candles of every symbol in it would never come): the stream sends chunks of at most 10."""
    from bot.market.bybit_stream import SUBSCRIBE_ARGS_MAX, KlineStream

    symbols = [f"C{i:02d}USDT" for i in range(23)]
    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        settings = make_settings(tmp_path, EXCHANGE_CATEGORY="spot", BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url,
                                 BYBIT_WS_PING_SECONDS=0.5, BYBIT_WS_STALL_SECONDS=3.0)
        stream = KlineStream(settings, symbols, "1", base_url=ws.url).start()
        try:
            assert ws.wait(lambda: all(ws.subscribed(f"kline.1.{s}", "/v5/public/spot") for s in symbols)), \
                "every spot symbol subscribed"
            requests = [m["args"] for path, m in ws.received if m.get("op") == "subscribe"]
            assert len(requests) == 3 and max(map(len, requests)) == SUBSCRIBE_ARGS_MAX == 10
            assert sorted(a for r in requests for a in r) == sorted(f"kline.1.{s}" for s in symbols)
        finally:
            stream.close()
        # the fake refuses what Bybit refuses: one request of 11 spot topics
        from bot.market.bybit_socket import StreamLink

        link = StreamLink("spot", lambda w: w.kline_stream(interval="1", symbol=symbols[:11], callback=print),
                          base_url=ws.url, ping_seconds=0.5, stall_seconds=3.0).start()
        try:
            assert link.wait_connected(5.0)
            assert ws.wait(lambda: ws.refused == ["error:args size >10"])
            assert not ws.subscribed(f"kline.1.{symbols[0]}", "/v5/public/spot")
        finally:
            link.close()


def test_demo_trading_takes_the_demo_private_stream_and_the_real_market_data(tmp_path: Path) -> None:
    """BYBIT_DEMO: pybit's demo=True on the private stream (stream-demo.bybit.com); Bybit's demo
    trading has no market-data stream of its own, so the kline stream stays on mainnet (or testnet)."""
    from bot.exchange.bybit_stream import PrivateStream
    from bot.market.bybit_stream import KlineStream

    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        settings = make_settings(tmp_path, environ={"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"},
                                 BYBIT_DEMO=True, BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url,
                                 BYBIT_WS_PING_SECONDS=0.5, BYBIT_WS_STALL_SECONDS=3.0)
        private = PrivateStream(settings).start()
        public = KlineStream(settings, [SYMBOL], "1", base_url=ws.url).start()
        try:
            assert private.link.wait_connected(5.0) and public.link.wait_connected(5.0)
            assert private.link._ws.demo is True and public.link._ws.demo is False
            assert ws.wait(lambda: ws.subscribed("execution", "/v5/private")) and ws.auth_results == [True]
        finally:
            private.close()
            public.close()
