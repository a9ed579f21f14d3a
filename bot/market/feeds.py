"""Where the engine's closed candles come from: Bybit (LIVE) or recorded real candles (REPLAY).

Both feeds answer the same three questions: `history(symbol, n)` (warm-up candles, given at
once), `next_candles(timeout)` (candles that closed since the last call, oldest first, or []
when none closed within `timeout`), and `source` (LIVE or REPLAY, shown in the snapshot and in
every log line about market data). No feed ever invents a price: a symbol without recorded
candles is reported and left out of REPLAY, never filled in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bot.errors import DataError, NetworkError
from bot.events import EventBus, EventKind
from bot.market.bybit_klines import BybitKlineSource
from bot.market.bybit_socket import LinkState, ws_base_url
from bot.market.bybit_stream import KlineStream
from bot.market.data_manager import DataManager
from bot.types import CANDLE_COLUMNS, Candle, Connection, DataSource, interval_ms, ms_to_iso

__all__ = ["ReplayFeed", "MarketFeed", "ReplayMarket", "BybitMarket", "frame_to_candles"]

log = logging.getLogger(__name__)


class MarketFeed(Protocol):
    """What the engine needs from a market-data source."""

    source: DataSource
    connection: Connection
    interval: str

    def symbols_available(self, wanted: Iterable[str]) -> list[str]: ...
    def history(self, symbol: str, n: int) -> pd.DataFrame: ...
    def next_candles(self, symbols: Iterable[str], timeout: float) -> list[Candle]: ...
    def close(self) -> None: ...


def frame_to_candles(frame: pd.DataFrame, symbol: str, interval: str) -> list[Candle]:
    idx = np.asarray(frame.index, dtype=np.int64)
    vals = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
    return [Candle(symbol, interval, int(t), *map(float, v)) for t, v in zip(idx, vals, strict=True)]


class ReplayMarket:
    """Recorded real candles of several symbols played in time order, all symbols in step.

    The first `warmup` candles (at most half of a symbol's record) are history (handed over at once so the
    indicators are warm before the first decision); then one timestamp at a time, `pace` seconds
    apart (0 = as fast as asked). Symbols start when their own data starts.
    """

    source = DataSource.REPLAY
    connection = Connection.OFFLINE_REPLAY

    def __init__(self, settings: Any, *, symbols: Iterable[str] | None = None,
                 frames: dict[str, pd.DataFrame] | None = None, data: DataManager | None = None,
                 interval: str | None = None, pace: float | None = None, warmup: int = 2000,
                 start_ms: int | None = None, end_ms: int | None = None) -> None:
        self.interval = str(interval or settings.CANDLE_INTERVAL)
        self.pace = settings.REPLAY_CANDLE_SECONDS if pace is None else float(pace)
        self.warmup = int(warmup)
        self._data = data
        self._settings = settings
        self._stop = threading.Event()
        self._frames: dict[str, pd.DataFrame] = {}
        self._missing: dict[str, str] = {}
        for sym, frame in (frames or {}).items():
            self._frames[sym] = frame
        for sym in symbols or ():
            self._load(sym)
        if start_ms is None:
            # `warmup` candles of history before the first replayed one (the agent's slow features
            # want 2,000), but never more than half of a symbol's record, so a short one still plays.
            starts = [int(f.index[min(self.warmup, len(f) // 2)]) for f in self._frames.values() if len(f)]
            start_ms = min(starts) if starts else 0
        self.start_ms = int(start_ms)
        self.end_ms = end_ms
        self._cursor = self.start_ms      # next open time to hand out
        self._last_step: float | None = None     # monotonic time of the last step; None: none yet
        self._idx: dict[str, np.ndarray] = {}
        self._vals: dict[str, np.ndarray] = {}
        for sym in self._frames:
            self._index(sym)
        for sym, f in self._frames.items():
            log.info("REPLAY %s/%s: %d recorded real candles %s .. %s, replay from %s", sym, self.interval,
                     len(f), ms_to_iso(f.index[0]), ms_to_iso(f.index[-1]), ms_to_iso(self.start_ms))

    def _load(self, symbol: str) -> bool:
        if symbol in self._frames:
            return True
        if symbol in self._missing:
            return False
        try:
            dm = self._data or DataManager(self._settings)
            self._data = dm
            self._frames[symbol] = dm.replay_frame(symbol, self.interval)
            return True
        except DataError as exc:
            self._missing[symbol] = str(exc)
            log.warning("REPLAY: %s is left out: %s", symbol, exc)
            return False

    def _index(self, symbol: str) -> None:
        f = self._frames[symbol]
        self._idx[symbol] = np.asarray(f.index, dtype=np.int64)
        self._vals[symbol] = f[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)

    def symbols_available(self, wanted: Iterable[str]) -> list[str]:
        out = []
        for s in wanted:
            if self._load(s):
                if s not in self._idx:
                    self._index(s)
                out.append(s)
        return out

    def seek(self, open_ms: int) -> None:
        """Continue the replay from the candle opening at or after `open_ms` (a restart resumes)."""
        self._cursor = max(int(open_ms), self.start_ms)
        log.info("REPLAY resumes at %s", ms_to_iso(self._cursor))

    @property
    def missing(self) -> dict[str, str]:
        return dict(self._missing)

    def history(self, symbol: str, n: int) -> pd.DataFrame:
        if not self._load(symbol):
            raise DataError(self._missing[symbol])
        f = self._frames[symbol]
        f = f[f.index < self._cursor]
        return f.iloc[-n:] if n else f.iloc[0:0]

    @property
    def exhausted(self) -> bool:
        return all(len(ix) == 0 or self._cursor > ix[-1] for ix in self._idx.values()) or (
            self.end_ms is not None and self._cursor > self.end_ms)

    def next_candles(self, symbols: Iterable[str], timeout: float) -> list[Candle]:
        """The candles of the next recorded timestamp for `symbols`, after the pace has elapsed."""
        if self.pace > 0 and self._last_step is not None:
            wait = self._last_step + self.pace - time.monotonic()
            if wait > 0:
                if self._stop.wait(min(wait, timeout)) or wait > timeout:
                    return []
        if self._stop.is_set():
            return []
        syms = [s for s in symbols if s in self._idx]
        while not self.exhausted:
            nxt = [ix[np.searchsorted(ix, self._cursor)] for s in syms
                   for ix in (self._idx[s],) if np.searchsorted(ix, self._cursor) < len(ix)]
            if not nxt:
                self._cursor = max(int(ix[-1]) for ix in self._idx.values()) + 1
                return []
            t = int(min(nxt))
            if self.end_ms is not None and t > self.end_ms:
                self._cursor = self.end_ms + 1
                return []
            out = []
            for s in syms:
                ix = self._idx[s]
                i = int(np.searchsorted(ix, t))
                if i < len(ix) and ix[i] == t:
                    out.append(Candle(s, self.interval, t, *map(float, self._vals[s][i])))
            self._cursor = t + 1
            self._last_step = time.monotonic()
            return out
        return []

    def close(self) -> None:
        self._stop.set()


class BybitMarket:
    """Closed candles from Bybit: pushed by the public kline WebSocket (`KlineStream`, only
    `confirm: true` candles) while it is up, polled from the REST kline endpoint every
    MARKET_POLL_SECONDS while it is down or when there is no stream (BYBIT_BASE_URL set without
    BYBIT_WS_URL). Each (re)connection and each hole in the pushed candles is filled over REST, and
    a candle is handed out once: the last open time per symbol is the one truth.

    `connection` is what the snapshot shows: CONNECTED, POLLING (stream down, REST polling) or
    RECONNECTING (REST failing too; the engine sets that). Stream changes are also events on `bus`.
    Raises `NetworkError` when REST cannot be reached, so the engine can say so."""

    source = DataSource.LIVE

    def __init__(self, settings: Any, *, source: BybitKlineSource | None = None, interval: str | None = None,
                 clock: Callable[[], float] = time.time, bus: EventBus | None = None,
                 stream_url: str | None | bool = True) -> None:
        self.interval = str(interval or settings.CANDLE_INTERVAL)
        self.poll_seconds = settings.MARKET_POLL_SECONDS
        self.src = source or BybitKlineSource.from_settings(settings)
        self.clock = clock
        self.bus = bus
        self._settings = settings
        # True: from the settings; None/False: no stream (REST polling only); a string: that base URL
        self._stream_url = ws_base_url(settings) if stream_url is True else (stream_url or None)
        self._stream: KlineStream | None = None
        self._synced_epoch = 0                  # the stream connection last caught up over REST
        self._rest_state = Connection.CONNECTED
        self._told_state = ""                   # the stream state last announced on the bus
        self._last: dict[str, int] = {}       # symbol -> last open time handed out
        self._next_poll = 0.0
        self._stop = threading.Event()

    @property
    def connection(self) -> Connection:
        if self._rest_state != Connection.CONNECTED:
            return self._rest_state
        if self._stream is not None and not self._stream.connected:
            return Connection.POLLING
        return Connection.CONNECTED

    @connection.setter
    def connection(self, value: Connection) -> None:
        """The engine's word on REST (CONNECTED after a good call, RECONNECTING after a failed one)."""
        self._rest_state = Connection(value)

    def symbols_available(self, wanted: Iterable[str]) -> list[str]:
        return list(wanted)

    def history(self, symbol: str, n: int) -> pd.DataFrame:
        step = interval_ms(self.interval)
        start = int(self.clock() * 1000) - (n + 2) * step
        df = self.src.fetch(symbol, self.interval, start)
        if len(df):
            self._last[symbol] = int(df.index[-1])
        return df.iloc[-n:]

    # -- the stream ----------------------------------------------------------------------------
    def _stream_for(self, symbols: list[str]) -> KlineStream | None:
        if self._stream_url is None or self._stop.is_set():
            return None
        if self._stream is not None and self._stream.symbols != sorted(set(symbols)):
            self._stream.close()          # the pairs rotated: a stream for the new set
            self._stream = None
        if self._stream is None:
            self._stream = KlineStream(self._settings, symbols, self.interval, base_url=self._stream_url,
                                       on_state=self._on_stream_state).start()
        return self._stream

    def _on_stream_state(self, state: str, why: str) -> None:
        told, self._told_state = self._told_state, state
        if self.bus is None or state == told:
            return              # each failed attempt while down is logged by the link, not re-announced
        if state == LinkState.CONNECTED:
            again = self._stream is not None and self._stream.link.epoch > 1
            self.bus.emit(EventKind.DATA, f"LIVE candles: Bybit stream {'back' if again else 'connected'} "
                          f"({self.interval})", stream=state, alert=again)
        elif state == LinkState.DOWN:
            self.bus.emit(EventKind.DATA, f"LIVE candles: Bybit stream down ({why}); REST polling every "
                          f"{self.poll_seconds:g} s until it is back", level="WARNING", stream=state)

    def next_candles(self, symbols: Iterable[str], timeout: float) -> list[Candle]:
        syms = list(symbols)
        stream = self._stream_for(syms)
        if stream is None or not stream.connected:
            return self._poll(syms, timeout)
        if stream.link.epoch != self._synced_epoch:
            # (re)connected: what closed while the stream was down comes over REST, once
            self._synced_epoch = stream.link.epoch
            missed = self._fetch_after_last(syms)
            if missed:
                log.info("LIVE %s: %d candle(s) backfilled over REST after the stream (re)connected",
                         self.interval, len(missed))
                return missed
        return self._accept(stream.get(timeout), syms)

    def _accept(self, pushed: list[Candle], symbols: list[str]) -> list[Candle]:
        """Pushed candles not handed out yet; a hole before one is filled over REST first. If that
        REST call fails nothing is marked as handed out, so the next poll or backfill brings them."""
        step = interval_ms(self.interval)
        last_of = dict(self._last)
        out: list[Candle] = []
        for c in sorted(pushed, key=lambda c: c.open_ms):
            if c.symbol not in symbols:
                continue
            last = last_of.get(c.symbol)
            if last is not None and c.open_ms <= last:
                continue                                   # already handed out (REST got it first)
            if last is not None and c.open_ms > last + step:
                df = self.src.fetch(c.symbol, self.interval, last + step, c.open_ms - 1)
                out.extend(x for x in frame_to_candles(df, c.symbol, self.interval) if x.open_ms < c.open_ms)
                log.info("LIVE %s %s: %d candle(s) the stream skipped backfilled over REST",
                         c.symbol, self.interval, len(df))
            out.append(c)
            last_of[c.symbol] = c.open_ms
        self._last = last_of
        return sorted(out, key=lambda c: c.open_ms)

    # -- REST ----------------------------------------------------------------------------------
    def _fetch_after_last(self, symbols: list[str]) -> list[Candle]:
        step = interval_ms(self.interval)
        out: list[Candle] = []
        for sym in symbols:
            last = self._last.get(sym)
            start = last + step if last is not None else int(self.clock() * 1000) - 2 * step
            df = self.src.fetch(sym, self.interval, start)   # NetworkError propagates on purpose
            if len(df):
                self._last[sym] = int(df.index[-1])
                out.extend(frame_to_candles(df, sym, self.interval))
        return sorted(out, key=lambda c: c.open_ms)

    def _poll(self, symbols: list[str], timeout: float) -> list[Candle]:
        wait = self._next_poll - time.monotonic()
        if wait > 0:
            if self._stop.wait(min(wait, timeout)) or wait > timeout:
                return []
        self._next_poll = time.monotonic() + self.poll_seconds
        return self._fetch_after_last(symbols)

    def close(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()


def probe_bybit(settings: Any, symbol: str, *, bus: EventBus | None = None) -> tuple[BybitMarket | None, str]:
    """A LIVE feed if Bybit answers for `symbol`, else (None, why not). `bus` hears about its stream."""
    try:
        m = BybitMarket(settings, bus=bus)
        m.history(symbol, 5)
        return m, ""
    except (NetworkError, DataError) as exc:
        return None, str(exc)


class ReplayFeed:
    """Plays a recorded frame candle by candle: as fast as possible, at real time, or xN.

    `speed=0` yields at once; `speed=1` waits one interval between candles; `speed=N` waits
    interval / N. `pace_seconds` (if given) overrides the wait with a fixed number of seconds.
    `stop()` ends the iteration promptly from another thread.
    """

    def __init__(self, frame: pd.DataFrame, symbol: str, interval: str, *, speed: float = 0.0,
                 pace_seconds: float | None = None, start: int = 0) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self.symbol = symbol
        self.interval = str(interval)
        self.speed = speed
        self.pace_seconds = pace_seconds
        self.position = start
        self._stopped = threading.Event()
        self._idx = np.asarray(frame.index, dtype=np.int64)
        self._vals = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self._idx)

    def stop(self) -> None:
        self._stopped.set()

    def _wait(self) -> float:
        if self.pace_seconds is not None:
            return self.pace_seconds
        if self.speed == 0:
            return 0.0
        return interval_ms(self.interval) / 1000.0 / self.speed

    def candle_at(self, i: int) -> Candle:
        o, h, lo, c, v, t = self._vals[i]
        return Candle(self.symbol, self.interval, int(self._idx[i]), o, h, lo, c, v, t)

    def __iter__(self) -> Iterator[Candle]:
        while self.position < len(self._idx) and not self._stopped.is_set():
            if self.position > 0:
                wait = self._wait()
                if wait > 0 and self._stopped.wait(wait):
                    return
            candle = self.candle_at(self.position)
            self.position += 1
            yield candle
