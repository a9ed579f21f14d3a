"""What the analyst keeps about one symbol, carried forward one base candle at a time.

The analyst reads its entry timeframe (4 h) and its confirmation timeframe (daily), both built
from the bot's candles. Rebuilding them with a pandas resample and recomputing every indicator
over a 1,200-candle window at each entry close cost ~1 ms per base candle. The book instead:

- keeps the base candles (the last CONFIRM_DAYS, trimmed now and then exactly as before);
- closes entry and confirmation candles as the base candles come (`CandleBuckets`: the rule of
  `bot.market.timeframes.resample`, a bucket closes once the data reaches its end or moves past it);
- feeds each closed entry candle to an `IndicatorStream` and a `LevelStream`, and each closed
  confirmation candle (after the recorded ones from the cache) to a second `IndicatorStream`.

The windowed analysis started its recursions 1,200 entry candles back; a new book starts its
entry stream from the history at that same candle, and after that many candles an EMA 50 or a
Wilder average has forgotten its seed below 1e-17 (on the seed candles, two streams started
hundreds of candles apart agree to the bit within ~850 4 h candles), so the streams' values equal
the window's to rounding. The confirmation series starts where the kept base candles start (or
with the recorded ones), as the resample did: when a trim moves that start, the confirmation
stream is rebuilt over the new series (cut from the rows already closed, not resampled again).
Tested against a golden record of the windowed analyst.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis.feature_stream import numpy_sum
from bot.analysis.indicator_stream import IndicatorStream, SortedWindow
from bot.analysis.level_stream import LevelStream
from bot.market.timeframes import bucket_start
from bot.types import interval_ms

__all__ = ["AnalystBook", "CandleBuckets", "EntryView", "Row", "numpy_percentile", "rows_of"]

_WEEK_OFFSET_MS = 4 * 86_400_000   # as bot.market.timeframes: weeks open on Monday
Row = tuple[int, float, float, float, float, float]   # open ms, open, high, low, close, volume


class CandleBuckets:
    """Closed `interval` candles from base candles fed in order, by `resample`'s rule."""

    __slots__ = ("size", "offset", "base_ms", "key", "o", "h", "lo", "c", "vols")

    def __init__(self, interval: str, base_ms: int) -> None:
        self.size = interval_ms(interval)
        self.offset = _WEEK_OFFSET_MS if interval == "W" else 0
        self.base_ms = base_ms
        self.key = -1
        self.o = self.h = self.lo = self.c = 0.0
        self.vols: list[float] = []

    def open_of(self, t: int) -> int:
        """Open time of the bucket that time `t` (ms) falls in (`timeframes.bucket_start`)."""
        return (t - self.offset) // self.size * self.size + self.offset

    def add(self, t: int, o: float, h: float, lo: float, c: float, v: float) -> list[Row]:
        """Take one base candle; returns the candles that closed with it (0, 1 or 2)."""
        return self.feed([(t, o, h, lo, c, v)])

    def feed(self, rows: list[Row]) -> list[Row]:
        """Take base candles in order; returns the candles that closed with them. A bucket closes
        when the data moves past it (even with gaps) or its last base candle comes."""
        out: list[Row] = []
        size, offset, base_ms = self.size, self.offset, self.base_ms
        key, o, h, lo, c, vols = self.key, self.o, self.h, self.lo, self.c, self.vols
        for t, ro, rh, rl, rc, rv in rows:
            k = (t - offset) // size * size + offset
            if k != key:
                if vols:
                    out.append((key, o, h, lo, c, numpy_sum(vols)))
                key, o, h, lo, vols = k, ro, rh, rl, []
            else:   # max() and min() as written out: the first of equals, NaN as they treat it
                if rh > h:
                    h = rh
                if rl < lo:
                    lo = rl
            c = rc
            vols.append(rv)
            if t + base_ms >= k + size:
                out.append((key, o, h, lo, c, numpy_sum(vols)))
                vols = []
        self.key, self.o, self.h, self.lo, self.c, self.vols = key, o, h, lo, c, vols
        return out


def _f(x: float) -> float:
    return x if math.isfinite(x) else math.nan


@dataclass
class EntryView:
    """The entry timeframe at its last closed candle: the numbers the analyst's rules read, as
    `compute_all` over the entry candles would give them at its last row."""

    price: float
    prev: float
    open: float
    high20: float          # highest high of the 20 candles before the last
    low20: float
    low2: float            # lowest low of the last two candles
    high2: float
    atr: float             # ATR 14
    ema21: float
    ema50: float
    rsi: float
    adx: float             # ADX 14
    plus_di: float         # +DI/-DI of ADX_PERIOD
    minus_di: float
    hist: float            # MACD histogram, this candle and the one before
    prev_hist: float
    cmf: float
    volume_ratio: float
    adx_regime: float      # ADX of ADX_PERIOD, as the regime rule reads it
    # the last Bollinger bandwidths (`values`, newest last, NaN while warming up), the finite
    # ones in ascending order (`ordered`) and how many are not (`nans`)
    bandwidth_window: SortedWindow

    def volatile(self, lookback: int, percentile: float) -> bool:
        """The regime rule's volatile verdict (`features.regime_codes`) at this candle: the
        bandwidth above its rolling `percentile` over `lookback` candles, once the ADX and that
        percentile are defined."""
        from bot.analysis.features import percentile_linear, sorted_percentile

        window = self.bandwidth_window
        bws = window.values
        if not self.adx_regime == self.adx_regime or len(bws) < lookback:
            return False
        if lookback == bws.maxlen:   # the window the stream keeps sorted
            return not window.nans and bws[-1] > sorted_percentile(window.ordered, percentile)
        last = np.fromiter(bws, dtype=np.float64, count=len(bws))[-lookback:]
        if not np.isfinite(last).all():
            return False
        return bool(last[-1] > percentile_linear(last, percentile))

    def quiet_bands(self) -> bool:
        """Narrow bands: the last bandwidth in the lowest 30 % of the last 100 (50 at least)."""
        quiet: bool | None = self.__dict__.get("_quiet")
        if quiet is None:   # asked once per side: computed once
            bws = self.bandwidth_window.values
            if bws.maxlen == 100:   # the window the stream keeps sorted
                ok = self.bandwidth_window.ordered
                newest = next((x for x in reversed(bws) if x == x), math.nan)
                quiet = len(ok) >= 50 and newest <= numpy_percentile(ok, 30)
            else:
                bw = np.fromiter(bws, dtype=np.float64, count=len(bws))[-100:]
                bw = bw[np.isfinite(bw)]
                quiet = bool(len(bw) >= 50 and bw[-1] <= np.percentile(bw, 30))
            self.__dict__["_quiet"] = quiet
        return quiet


def numpy_percentile(ordered: list[float], q: float) -> float:
    """`np.percentile(values, q)` (its default, linear) of values given in ascending order, bit
    for bit: numpy's index (n - 1) * (q / 100) and its two-sided interpolation."""
    n = len(ordered)
    k = (n - 1) * (q / 100)
    if k >= n - 1:
        return ordered[-1]
    f = math.floor(k)
    a, b, t = ordered[f], ordered[f + 1], k - f
    d = b - a
    return b - d * (1 - t) if t >= 0.5 else a + d * t


class AnalystBook:
    """Base candles, the entry timeframe's indicators and levels, and the confirmation trend's
    indicators of one symbol, as of the newest base candle taken in."""

    def __init__(self, settings: Any, base_interval: str, entry_interval: str, confirm_interval: str,
                 keep: int, history: pd.DataFrame | None, recorded: pd.DataFrame | None,
                 entry_history: int | None = None) -> None:
        self.settings = settings
        self.base_ms = interval_ms(base_interval)
        self.base_interval, self.entry_interval, self.confirm_interval = base_interval, entry_interval, confirm_interval
        self.keep = keep
        self.evaluated_ms = -1
        self.decision: Any = None
        self.daily_key = -1
        self.daily: Any = None
        self.daily_candles = 0
        self.last_ms = -1
        self._rows: deque[Row] = deque()        # base candles kept, as the frame was
        self._entry_buckets = CandleBuckets(entry_interval, self.base_ms)
        self._confirm_buckets = CandleBuckets(confirm_interval, self.base_ms)
        s = settings
        lookback = max(100, int(getattr(s, "REGIME_LOOKBACK", 100)))
        self.entry = IndicatorStream(emas=(21, 50), atr_periods=(14,), adx_periods=tuple({14, int(s.ADX_PERIOD)}),
                                     bb_period=int(s.BB_PERIOD), bb_std=float(s.BB_STD), bandwidth_keep=lookback)
        self.levels = LevelStream(lookback=300, tolerance_atr=float(s.SR_TOLERANCE_ATR))
        self.recent: deque[Row] = deque(maxlen=21)   # the last entry candles, newest last
        self._highs: deque[float] = deque(maxlen=21)   # their highs and lows, for the 20-candle extremes
        self._lows: deque[float] = deque(maxlen=21)
        rec = recorded if recorded is not None and len(recorded) else None
        self._recorded: list[Row] = [] if rec is None else _rows(rec)
        self._confirm_rows: list[Row] = list(self._recorded)
        self.confirm = self._confirm_stream(self._confirm_rows)
        if history is not None and len(history):
            times = np.asarray(history.index, dtype=np.int64)
            n = len(times) if entry_history is None else min(len(times), entry_history)
            # Each timeframe from where it needs the base candles: the entry one from the start
            # of the windowed analyst's window (its recursions forget their seed well within it);
            # the confirmation one after the recorded candles it would drop anyway.
            cb = self._confirm_buckets
            confirm_from = cb.open_of(self._recorded[-1][0]) + cb.size if self._recorded else None
            self.take_newer(rows_of(times, history[["open", "high", "low", "close", "volume"]].to_numpy()),
                            entry_from=int(times[-n]), confirm_from=confirm_from)

    def _confirm_stream(self, rows: list[Row]) -> IndicatorStream:
        s = self.settings
        # the daily trend reads EMA 50/200 and ADX/DI only: no windows
        stream = IndicatorStream(emas=(50, 200), atr_periods=(), adx_periods=tuple({14, int(s.ADX_PERIOD)}),
                                 windows=False)
        for r in rows:
            stream.update(r[2], r[3], r[4], r[5])
        return stream

    # -- candles in ------------------------------------------------------------------------------
    def take(self, times: np.ndarray, values: np.ndarray) -> None:
        """Take the base candles newer than the last one taken (values: open, high, low, close,
        volume columns), then trim the kept ones as the windowed analyst did."""
        first = int(np.searchsorted(times, self.last_ms, side="right"))
        if first < len(times):
            self.take_newer(rows_of(times[first:], values[first:]))

    def take_newer(self, rows: list[Row], *, entry_from: int | None = None, confirm_from: int | None = None) -> None:
        """`take` of base candles all newer than the last one taken, as rows (at least one); the
        entry timeframe is built from those opened at `entry_from` or later, the confirmation one
        from `confirm_from` (None: all)."""
        self._rows.extend(rows)
        self.last_ms = rows[-1][0]
        entry = rows if entry_from is None else rows[bisect.bisect_left(rows, (entry_from,)):]
        for e in self._entry_buckets.feed(entry):
            self._entry_closed(e)
        rec_last = self._recorded[-1][0] if self._recorded else None
        confirm = rows if confirm_from is None else rows[bisect.bisect_left(rows, (confirm_from,)):]
        for d in self._confirm_buckets.feed(confirm):
            if rec_last is None or d[0] > rec_last:
                self._confirm_rows.append(d)
                self.confirm.update(d[2], d[3], d[4], d[5])
        keep = self.keep
        if len(self._rows) > keep + keep // 10:   # trim now and then, not on every candle
            for _ in range(len(self._rows) - keep):
                self._rows.popleft()
            self._rebuild_confirm()

    def _entry_closed(self, row: Row) -> None:
        _, _, h, lo, c, v = row
        self.entry.update(h, lo, c, v)
        self.levels.update(h, lo)
        self.recent.append(row)
        self._highs.append(h)
        self._lows.append(lo)

    def _rebuild_confirm(self) -> None:
        """The confirmation series after a trim: the recorded candles, then those resampled from
        the kept base candles; the stream starts over only if the series changed. The resample of
        the kept candles is the series already closed, cut at the bucket of the first kept candle,
        whose candle is rebuilt from the kept candles in it (the trim may have cut it)."""
        kept, cb = self._rows, self._confirm_buckets
        first = cb.open_of(kept[0][0])
        end = first + cb.size
        part = []
        for r in kept:
            if r[0] >= end:
                break
            part.append(r)
        rows: list[Row] = []
        if len(part) < len(kept) or part[-1][0] + self.base_ms >= end:   # closed, as resample keeps it
            rows.append((first, part[0][1], max([r[2] for r in part]), min([r[3] for r in part]), part[-1][4],
                         numpy_sum([r[5] for r in part])))
        rows += [r for r in self._confirm_rows if r[0] > first]
        if self._recorded:
            rec_last = self._recorded[-1][0]
            rows = self._recorded + [r for r in rows if r[0] > rec_last]
        same = len(rows) == len(self._confirm_rows) and all(
            a[:5] == b[:5] for a, b in zip(rows, self._confirm_rows, strict=True))
        if not same:
            self._confirm_rows = rows
            self.confirm = self._confirm_stream(rows)

    # -- what the analyst reads ------------------------------------------------------------------
    def entry_view(self, adx_period: int) -> EntryView:
        """The entry timeframe's numbers at its last closed candle (needs two or more)."""
        st, rc, n = self.entry, self.recent, adx_period
        last, before = rc[-1], rc[-2]
        earlier = len(rc) - 1
        return EntryView(price=last[4], prev=before[4], open=last[1], high20=max(islice(self._highs, earlier)),
                         low20=min(islice(self._lows, earlier)), low2=min(last[3], before[3]),
                         high2=max(last[2], before[2]), atr=_f(st.atr[14]), ema21=_f(st.ema[21]),
                         ema50=_f(st.ema[50]), rsi=_f(st.rsi), adx=_f(st.adx[14]), plus_di=_f(st.plus_di[n]),
                         minus_di=_f(st.minus_di[n]), hist=_f(st.macd_hist), prev_hist=_f(st.prev_macd_hist),
                         cmf=_f(st.cmf), volume_ratio=_f(st.volume_ratio), adx_regime=_f(st.adx[n]),
                         bandwidth_window=st.bandwidth_window)

    @property
    def confirm_close(self) -> float:
        """Close of the last confirmation candle."""
        return self._confirm_rows[-1][4]

    @property
    def confirm_count(self) -> int:
        """Closed confirmation candles, the recorded ones included."""
        return len(self._confirm_rows)

    def window_entry_count(self, rows: int) -> int:
        """How many closed entry candles the last `rows` base candles make (the windowed analyst's
        `len(entry)`; read only while warming up)."""
        kept = self._rows
        times = np.fromiter((kept[i][0] for i in range(max(0, len(kept) - rows), len(kept))), dtype=np.int64)
        if not len(times):
            return 0
        keys = bucket_start(times, self.entry_interval)
        n = 1 + int(np.count_nonzero(keys[1:] != keys[:-1]))
        return n if int(times[-1]) + self.base_ms >= int(keys[-1]) + interval_ms(self.entry_interval) else n - 1


def rows_of(times: np.ndarray, values: np.ndarray) -> list[Row]:
    """Base candles as rows: open times and the first five columns (open, high, low, close, volume)."""
    cols = np.asarray(values[:, :5], dtype=np.float64).T.tolist()
    return list(zip(np.asarray(times, dtype=np.int64).tolist(), *cols, strict=True))


def _rows(frame: pd.DataFrame) -> list[Row]:
    return rows_of(np.asarray(frame.index), frame[["open", "high", "low", "close", "volume"]].to_numpy())
