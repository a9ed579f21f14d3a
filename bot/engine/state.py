"""The engine's per-pair memory: a bounded tail of candles with its indicators, the trade book
that turns fills into round trips, and the frozen chart data the UI draws.

Kept apart from `engine.py` so the loop reads top to bottom there and the bookkeeping here.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis.feature_stream import numpy_sum, numpy_window_sums, wilder_trend_step
from bot.analysis.features import (
    REGIMES,
    WARMUP,
    classify_regime,
    regime_code,
    regime_label,
    regime_thresholds,
    rolling_sorted_percentile,
    sorted_percentile,
)
from bot.analysis.indicator_stream import SortedWindow
from bot.engine.candle_frames import LazyDict
from bot.exchange.ledger import OpenPosition, PositionLedger
from bot.records import fast_init
from bot.types import CANDLE_COLUMNS, Candle, ClosedTrade, Fill, Position

__all__ = ["ChartData", "TradeMarker", "PairState", "TradeBook", "compute_indicators", "IndicatorReplay", "TAIL"]

# Candles kept per pair: the DQN state's slow features (EMA 200) are computed over up to 2,000
# candles (bot/strategies/dqn.py); the engine's own indicators need far fewer and are computed over
# the last INDICATOR_TAIL only (EMA 50, ATR, ADX and a 100-candle regime window, converged), so a
# candle costs a pass over hundreds of values, never over years of history.
TAIL = 2000
INDICATOR_TAIL = 400
_COLUMNS = pd.Index(list(CANDLE_COLUMNS))   # built once: a column index per frame costs more than the frame
_REGIME_LABELS = np.array([*REGIMES, regime_label(WARMUP)])   # by code; WARMUP (-1) picks the last


@fast_init
@dataclass(frozen=True)
class TradeMarker:
    time_ms: int
    price: float
    side: str           # Buy | Sell
    reason: str = ""


@dataclass(frozen=True)
class ChartData:
    """What the price chart draws for one pair: a copy, safe to use on the UI thread."""

    symbol: str
    interval: str
    candles: pd.DataFrame                  # canonical frame, newest last
    ema21: np.ndarray
    ema50: np.ndarray
    bb_upper: np.ndarray
    bb_lower: np.ndarray
    markers: tuple[TradeMarker, ...] = ()
    stop_loss: float | None = None
    take_profit: float | None = None
    source: str = "REPLAY"


def compute_indicators(frame_arrays: dict[str, np.ndarray], settings: Any) -> dict[str, np.ndarray]:
    """ATR, ADX and Bollinger bandwidth over the bounded tail (bot.analysis.indicators, TA-Lib exact): the
    vector pass that seeds `StreamingIndicators` and that the tests compare it with."""
    from bot.analysis import indicators as ind

    h, lo, c = (frame_arrays[k][-INDICATOR_TAIL:] for k in ("high", "low", "close"))
    adx, pdi, mdi = ind.adx(h, lo, c, settings.ADX_PERIOD)
    return {"atr": ind.atr(h, lo, c, settings.ATR_PERIOD), "adx": adx, "plus_di": pdi, "minus_di": mdi,
            "atr_adx": ind.atr(h, lo, c, settings.ADX_PERIOD),
            "bb_bandwidth": ind.bollinger(c, settings.BB_PERIOD, settings.BB_STD)[3]}


class StreamingIndicators:
    """ATR, ADX and the Bollinger bandwidth of the newest candle, updated in O(1) per candle.

    Seeded once from a vector pass (`compute_indicators`) over the warm-up tail, then carried
    forward with the same recursions TA-Lib uses: Wilder's mean for ATR, Wilder sums of true
    range and directional movement for +DI/-DI, Wilder's mean of DX for ADX (an undefined DX
    holds the ADX, as in bot.analysis.indicators), and the population standard deviation of the last
    BB_PERIOD closes for the bandwidth. The Wilder sums are recovered from the seed as
    n x ATR(n) (their seeds differ, but after INDICATOR_TAIL candles the difference has decayed
    below 1e-12). Tested equal to the full-history vector computation on real candles.
    """

    def __init__(self, arrays: dict[str, np.ndarray], settings: Any) -> None:
        self.n_atr, self.n_adx = int(settings.ATR_PERIOD), int(settings.ADX_PERIOD)
        self.bb_n, self.bb_k = int(settings.BB_PERIOD), float(settings.BB_STD)
        self.thr, self.pct, look = regime_thresholds(settings)
        self.look = look
        v = compute_indicators(arrays, settings)
        h, lo, c = arrays["high"], arrays["low"], arrays["close"]
        self.prev = (float(h[-1]), float(lo[-1]), float(c[-1])) if len(c) else None
        self.closes: deque[float] = deque((float(x) for x in c[-self.bb_n:]), maxlen=self.bb_n)
        self.atr_hist: deque[float] = deque((float(x) for x in v["atr"][-100:]), maxlen=100)
        # the last `look` bandwidths, and the finite ones in order, for their percentile in O(log n)
        self.bw = SortedWindow(look, (float(x) for x in v["bb_bandwidth"][-look:]))
        self.adx_hist: deque[float] = deque((float(x) for x in v["adx"][-100:]), maxlen=100)
        self.atr = float(v["atr"][-1]) if len(c) else math.nan
        self.adx = float(v["adx"][-1]) if len(c) else math.nan
        st = self.n_adx * float(v["atr_adx"][-1]) if len(c) else math.nan
        self.st = st
        self.sp = float(v["plus_di"][-1]) * st / 100.0 if len(c) else math.nan
        self.sm = float(v["minus_di"][-1]) * st / 100.0 if len(c) else math.nan

    def update(self, h: float, lo: float, c: float) -> None:
        prev, closes = self.prev, self.closes
        self.prev = (h, lo, c)
        closes.append(c)
        if prev is None:
            return
        ph, pl, pc = prev
        self.atr, self.st, self.sp, self.sm, self.adx = atr, _, _, _, adx = wilder_trend_step(
            self.atr, self.st, self.sp, self.sm, self.adx, h, lo, c, ph, pl, pc, self.n_atr, self.n_adx)
        n = self.bb_n
        if len(closes) == n:
            # numpy's mean of the closes and of their squares, bit for bit (numpy_sum), without numpy
            win = list(closes)
            mid = numpy_sum(win) / n
            dev = math.sqrt(max(numpy_sum([x * x for x in win]) / n - mid * mid, 0.0)) * self.bb_k
            self.bw.push(2.0 * dev / mid)
        self.atr_hist.append(atr)
        self.adx_hist.append(adx)

    @property
    def bw_hist(self) -> deque[float]:
        """The last REGIME_LOOKBACK bandwidths, newest last."""
        return self.bw.values

    def regime(self) -> str:
        """The regime of the newest candle by `bot.analysis.features.classify_regime`, the rule
        `regime_codes` applies to a whole history, with the bandwidth percentile of the last
        REGIME_LOOKBACK candles ('choppy' while warming up). Tested equal to `regime_codes` on
        real candles. The percentile is `percentile_linear`'s, read off the kept sorted window."""
        return window_regime(self.bw, self.adx, self.look, self.pct, self.thr)

    def context(self) -> dict[str, np.ndarray]:
        """The newest values for a StrategyContext, aligned at the end (newest last), named as
        `bot.analysis.indicators.compute_all` names them."""
        return indicator_context(self.atr_hist, self.adx_hist, self.bw_hist, self.n_atr, self.n_adx)


def window_regime(bw: SortedWindow, adx: float, look: int, pct: float, thr: float) -> str:
    """The regime label of the newest candle from its ADX and the window of the last `look`
    bandwidths ('choppy' while the window is short or holds a NaN): `StreamingIndicators.regime`."""
    if len(bw.values) < look or bw.nans:
        return regime_label(WARMUP)
    return regime_label(regime_code(adx, bw.values[-1], sorted_percentile(bw.ordered, pct), thr))


def bandwidths(closes: np.ndarray, n: int, k: float) -> np.ndarray:
    """The Bollinger bandwidth `StreamingIndicators.update` computes, for every window of `n`
    closes at once (row i: the window ending at closes[i + n - 1]): the window sums of
    `numpy_window_sums` are `numpy_sum`'s, and the rest is the same arithmetic in the same order,
    so every value is the stream's bit for bit (tested)."""
    c = np.asarray(closes, dtype=np.float64)
    mid = numpy_window_sums(c, n) / n
    dev = np.sqrt(np.maximum(numpy_window_sums(c * c, n) / n - mid * mid, 0.0)) * k
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = 2.0 * dev / mid
    return out


def indicator_context(atr_hist: Any, adx_hist: Any, bw_hist: Any, n_atr: int, n_adx: int) -> dict[str, np.ndarray]:
    """The arrays a StrategyContext's `indicators` hold, from the kept windows of ATR, ADX and
    Bollinger bandwidth (newest last)."""
    atr = np.fromiter(atr_hist, dtype=np.float64)
    adx = np.fromiter(adx_hist, dtype=np.float64)
    out = {"atr": atr, "adx": adx, "bb_bandwidth": np.fromiter(bw_hist, dtype=np.float64)}
    if n_atr == 14:
        out["atr_14"] = atr
    if n_adx == 14:
        out["adx_14"] = adx
    return out


class IndicatorReplay:
    """A `StreamingIndicators` carried ahead over candles known in advance (a backtest's), then
    read back one candle at a time. Every value is the stream's own, bit for bit: its `update`'s
    recursions in one tight pass before the run, the bandwidths and regimes of all windows at
    once (`bandwidths`, `rolling_sorted_percentile`), so a candle of the run costs an index step
    instead of the recursions (in the engine's step they cost a third of a do-nothing candle). `update` checks
    that the candle is the next one expected and raises `LookupError` otherwise (the engine then
    seeds a live stream; a backtest never feeds another candle)."""

    def __init__(self, stream: StreamingIndicators, closes: list[float], highs: list[float],
                 lows: list[float]) -> None:
        if len(stream.closes) != stream.bb_n:
            raise ValueError("IndicatorReplay needs a stream seeded with a full Bollinger window")
        self.n_atr, self.n_adx, self.look = stream.n_atr, stream.n_adx, stream.look
        self._atr, self._adx, self._bw = list(stream.atr_hist), list(stream.adx_hist), list(stream.bw_hist)
        self._regime = [stream.regime()]
        self._closes = closes
        bws = bandwidths(np.array([*stream.closes, *closes])[1:], stream.bb_n, stream.bb_k)
        # StreamingIndicators.update candle after candle, with its state in locals (the stream is
        # used up: the replay holds every value it had)
        step, n_atr, n_adx = wilder_trend_step, stream.n_atr, stream.n_adx
        atr, st, sp, sm, adx = stream.atr, stream.st, stream.sp, stream.sm, stream.adx
        assert stream.prev is not None
        ph, pl, pc = stream.prev
        atrs, adxs = self._atr, self._adx
        for h, lo, c in zip(highs, lows, closes, strict=True):
            atr, st, sp, sm, adx = step(atr, st, sp, sm, adx, h, lo, c, ph, pl, pc, n_atr, n_adx)
            ph, pl, pc = h, lo, c
            atrs.append(atr)
            adxs.append(adx)
        # ... and its regime (`window_regime`), for every candle at once: the bandwidth percentile
        # of each window of the last `look` (`rolling_sorted_percentile`: the SortedWindow's, bit
        # for bit), NaN (warm-up) while the window is short or holds a NaN
        seen = np.array([*stream.bw.values, *bws])
        look, short = stream.look, len(seen) - len(bws)
        pct = np.full(len(bws), np.nan)
        rolled = rolling_sorted_percentile(seen, look, stream.pct)
        first = max(look - 1 - short, 0)        # the first new candle whose window is full
        pct[first:] = rolled[short + first - look + 1:]
        codes = classify_regime(adxs[len(adxs) - len(bws):], bws, pct, stream.thr)
        self._regime.extend(_REGIME_LABELS[codes].tolist())
        bws = bws.tolist()
        self._bw.extend(bws)
        self._k = 0           # candles taken since the seed
        self._a0, self._b0 = len(self._atr) - len(closes) - 1, len(self._bw) - len(closes) - 1
        self.atr, self.adx = self._atr[self._a0], self._adx[self._a0]

    def update(self, h: float, lo: float, c: float) -> None:
        k = self._k
        if k >= len(self._closes) or self._closes[k] != c:
            raise LookupError("not the candle the replay expected")
        self._k = k = k + 1
        self.atr, self.adx = self._atr[self._a0 + k], self._adx[self._a0 + k]

    def advance(self, closes: list[float]) -> None:
        """`update` for several candles, by their closes (LookupError unless they are the next
        ones expected; then nothing moved)."""
        k, m = self._k, len(closes)
        if self._closes[k:k + m] != closes:
            raise LookupError("not the candles the replay expected")
        self._k = k = k + m
        self.atr, self.adx = self._atr[self._a0 + k], self._adx[self._a0 + k]

    def regime(self) -> str:
        return self._regime[self._k]

    @property
    def atr_hist(self) -> list[float]:
        end = self._a0 + self._k + 1
        return self._atr[max(end - 100, 0):end]

    @property
    def adx_hist(self) -> list[float]:
        end = self._a0 + self._k + 1
        return self._adx[max(end - 100, 0):end]

    @property
    def bw_hist(self) -> list[float]:
        end = self._b0 + self._k + 1
        return self._bw[max(end - self.look, 0):end]

    def context(self) -> dict[str, np.ndarray]:
        return indicator_context(self.atr_hist, self.adx_hist, self.bw_hist, self.n_atr, self.n_adx)


class PairState:
    """One traded pair: the bounded candle tail (numpy, appended in O(tail)), its latest
    indicators, and the markers of the trades made on it."""

    def __init__(self, symbol: str, interval: str, history: pd.DataFrame | None, *, tail: int = TAIL,
                 bollinger: tuple[int, float] = (20, 2.0)) -> None:
        self.symbol = symbol
        self.settings_bb = bollinger
        self.interval = interval
        self.tail = tail
        h = history.iloc[-tail:] if history is not None else None   # None: no history yet
        # The tail lives in buffers with room for `tail` more candles: a candle is written after the
        # last row and the tail is a view ending there (no copy of 2,000 rows per candle); when the
        # room is used up the last `tail` rows move to new buffers. A row of a buffer is never
        # written twice, so a view handed out (to the UI thread, a strategy) never changes under it.
        n = len(h) if h is not None else 0
        self._bt = np.empty(tail + max(n, tail), dtype=np.int64)
        self._bv = np.empty((len(self._bt), len(CANDLE_COLUMNS)), dtype=np.float64)
        if h is not None:
            self._bt[:n] = np.asarray(h.index, dtype=np.int64)
            self._bv[:n] = h[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
        self._end = n
        self._last_ms = int(self._bt[n - 1]) if n else -1
        # (open times, values) swapped as one object, so another thread never pairs new times with old values.
        self._tv: tuple[np.ndarray, np.ndarray] = (self._bt[:n], self._bv[:n])
        self.stream: StreamingIndicators | IndicatorReplay | None = None   # set by the engine (needs the settings)
        self.regime = "choppy"
        self.markers: deque[TradeMarker] = deque(maxlen=200)
        self.last_decision: Any = None
        self.held_candles = 0
        self.learn_prev: tuple[Any, ...] | None = None     # (state, position taken, equity, pair value) for the learner

    @property
    def tail_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(open times, values) of the kept candles, as one pair (never new times with old values)."""
        return self._tv

    @property
    def t(self) -> np.ndarray:
        return self._tv[0]

    @property
    def v(self) -> np.ndarray:
        return self._tv[1]

    def __len__(self) -> int:
        return len(self._tv[0])

    @property
    def last_ms(self) -> int:
        return self._last_ms

    @property
    def price(self) -> float:
        return float(self.v[-1, 3]) if len(self.v) else 0.0

    def append(self, c: Candle) -> bool:
        """Add a closed candle; False (and nothing changes) if it is not newer than the last."""
        if c.open_ms <= self._last_ms:
            return False
        end = self._end
        if end == len(self._bt):
            end = self._make_room(1)
        self._bt[end] = c.open_ms
        self._bv[end] = (c.open, c.high, c.low, c.close, c.volume, c.turnover)
        end += 1
        start = end - self.tail if end > self.tail else 0
        self._end = end
        self._last_ms = c.open_ms
        self._tv = (self._bt[start:end], self._bv[start:end])
        return True

    def extend(self, times: np.ndarray, values: np.ndarray) -> None:
        """Add closed candles in one go (open times, values in CANDLE_COLUMNS order), as `append`
        would one by one; they must all be newer than the last, in order (ValueError otherwise)."""
        m = len(times)
        if m == 0:
            return
        if int(times[0]) <= self._last_ms or (m > 1 and not bool(np.all(times[1:] > times[:-1]))):
            raise ValueError(f"{self.symbol}: candles to add are not all newer than the last, in order")
        end = self._end
        if end + m > len(self._bt):
            end = self._make_room(m)
        self._bt[end:end + m] = times
        self._bv[end:end + m] = values
        end += m
        self._end = end
        self._last_ms = int(times[-1])
        self._tv = (self._bt[max(end - self.tail, 0):end], self._bv[max(end - self.tail, 0):end])

    def _make_room(self, m: int) -> int:
        """New buffers holding the last tail - 1 rows (the views handed out keep the old ones),
        with room for `m` more candles and then `tail`; returns where the next row goes."""
        end = self._end
        keep = min(self.tail - 1, end)
        bt = np.empty(self.tail + max(keep + m, self.tail), dtype=np.int64)
        bv = np.empty((len(bt), len(CANDLE_COLUMNS)), dtype=np.float64)
        bt[:keep] = self._bt[end - keep:end]
        bv[:keep] = self._bv[end - keep:end]
        self._bt, self._bv = bt, bv
        return keep

    def arrays(self) -> dict[str, np.ndarray]:
        v = self._tv[1]
        return {name: v[:, i] for i, name in enumerate(CANDLE_COLUMNS)}

    def frame(self, n: int | None = None) -> pd.DataFrame:
        """A canonical frame copy of the last `n` candles (all kept ones by default)."""
        sl = slice(-n, None) if n else slice(None)
        t, v = self._tv
        # One float64 block, already sorted and unique: the canonical frame without make_frame's sort.
        return pd.DataFrame(v[sl].copy(), index=pd.Index(t[sl].copy(), name="open_time"), columns=_COLUMNS)

    def atr(self) -> float:
        a = self.stream.atr if self.stream is not None else math.nan
        return float(a) if math.isfinite(a) else 0.0

    def atr_median(self) -> float:
        """np.median of the finite ATRs of the last 100 candles (0.0 without any), in plain Python:
        the middle value, or the two middle ones' (a + b) / 2 as numpy takes their mean."""
        if self.stream is None:
            return 0.0
        hist = self.stream.atr_hist
        total = sum(hist)    # finite only when every value is (a NaN or an inf would carry through)
        a = sorted(hist) if total - total == 0.0 else sorted(x for x in hist if math.isfinite(x))
        n = len(a)
        if n == 0:
            return 0.0
        return float(a[n // 2]) if n % 2 else (a[n // 2 - 1] + a[n // 2]) / 2

    @property
    def indicators(self) -> dict[str, np.ndarray]:
        """The newest indicator values for a StrategyContext, built when a strategy reads them
        (most never do: three arrays per candle were a tenth of the step)."""
        stream = self.stream
        return LazyDict(stream.context) if stream is not None else {}

    def chart_copy(self, n: int, position: Any, source: str) -> ChartData:
        """The chart's data for the last `n` candles, overlays computed here (any thread: the
        candle arrays are read once, as the engine thread swaps them whole)."""
        from bot.analysis import indicators as ind

        t, v = self._tv
        k = min(n, len(t))
        w = min(len(t), k + INDICATOR_TAIL)   # overlays warmed up on the candles before the window
        c = v[-w:, 3]
        bb = ind.bollinger(c, self.settings_bb[0], self.settings_bb[1])
        first = int(t[-k]) if k else 0
        frame = pd.DataFrame(v[-k:].copy(), index=pd.Index(t[-k:].copy(), name="open_time"), columns=_COLUMNS)
        return ChartData(self.symbol, self.interval, frame, ind.ema(c, 21)[-k:], ind.ema(c, 50)[-k:],
                         bb[0][-k:], bb[2][-k:], tuple(m for m in list(self.markers) if m.time_ms >= first),
                         getattr(position, "stop_loss", None), getattr(position, "take_profit", None), source)


class TradeBook(PositionLedger):
    """Turns fills into round trips (`ClosedTrade`), whoever caused them: a signal, a stop
    triggered by the exchange, a manual order or close-all. P&L is net of every fee.

    The accounting is `bot.exchange.ledger.PositionLedger`'s; this adds the net P&L per symbol."""

    def __init__(self, mode: str = "PAPER") -> None:
        super().__init__(mode=mode)
        self.closed_pnl: dict[str, float] = {}

    @property
    def open(self) -> dict[str, OpenPosition]:
        """The open position per symbol."""
        return self.positions

    def seed(self, position: Position) -> None:
        """Take in a position that exists at start-up (persisted paper wallet, adopted live one),
        so its exit makes a proper round trip."""
        self.positions[position.symbol] = OpenPosition(position.side, position.size, position.entry_price,
                                                       position.opened_ms, fees=position.fees,
                                                       max_size=position.size)

    def value(self, symbol: str, mark: float) -> float:
        """Net P&L made on `symbol` so far: closed round trips + the open one marked at `mark`."""
        v = self.closed_pnl.get(symbol, 0.0)
        p = self.positions.get(symbol)
        if p is not None:
            v += p.realised - p.fees + p.unrealised(mark)
        return v

    def apply(self, fill: Fill, *, dust: float = 0.0) -> ClosedTrade | None:
        """Book one fill; returns the round trip it completed, if any. The exchange's realised
        P&L of the fill, when it reports one, counts instead of the computed one. `dust`: see
        `PositionLedger.book` (spot: one quantity step)."""
        booked = self.book(fill.symbol, fill.side, fill.qty, fill.price, fill.fee, fill.time_ms,
                           reason=fill.reason, realised=fill.realised_pnl, dust=dust)
        trade = booked.closed
        if trade is not None:
            self.closed_pnl[fill.symbol] = self.closed_pnl.get(fill.symbol, 0.0) + trade.pnl
        return trade
