"""The agent's newest state row, carried forward one candle at a time for the live loop.

`FeatureStream` keeps the recursive indicator states (EMA, MACD, RSI, ATR, ADX) and recomputes
the short windows, so each closed candle costs O(window) instead of recomputing
`bot.analysis.features.market_features` over thousands of candles; tests prove the row equal to the full
computation. `wilder_trend_step` is the one ATR/ADX step, shared with the engine's
`StreamingIndicators`.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from bot.analysis import indicators as ind
from bot.analysis.features import (
    DIST_CLIP,
    RET_CLIP,
    VOL_PERIOD,
    VOLUME_RATIO_CLIP,
    _periods,
    market_features,
    warmup_length,
)

__all__ = ["FeatureStream", "wilder_trend_step", "numpy_sum", "numpy_window_sums"]

_K21, _K50, _K200 = (2.0 / (n + 1) for n in (21, 50, 200))   # the EMAs' smoothing factors
_UNIT = 1 << 1074   # every finite float is a whole multiple of 2**-1074


def _exact(x: float) -> int:
    """The finite float `x` as the whole number x * 2**1074, exactly."""
    n, d = x.as_integer_ratio()
    return n << (1075 - d.bit_length())


def _exact_sums(xs: Any) -> tuple[int, int] | None:
    """The exact sums of the floats and of their squares (as `_exact`), None when one is not
    finite (or its square overflows)."""
    if not all(-1e150 < x < 1e150 for x in xs):
        return None
    return sum(map(_exact, xs)), sum(_exact(x * x) for x in xs)


def numpy_sum(a: list[float], lo: int = 0, n: int | None = None) -> float:
    """`np.sum` of the floats `a[lo:lo + n]`, bit for bit, in plain Python: numpy's pairwise
    summation (eight running sums over blocks of up to 128 values, halves beyond). For the short
    windows a candle updates, a numpy call per sum costs more than the sum; this keeps every
    result the same as the vector code's (tested equal on random and real data)."""
    if n is None:
        n = len(a) - lo
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3, r4, r5, r6, r7 = a[lo:lo + 8]
        i, m = lo + 8, lo + n - n % 8
        while i < m:
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for j in range(i, lo + n):
            res += a[j]
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return numpy_sum(a, lo, n2) + numpy_sum(a, lo + n2, n - n2)


def numpy_window_sums(x: Any, n: int) -> np.ndarray:
    """`numpy_sum` of every window of `n` values at once (row i: the window ending at
    x[i + n - 1]), the same bits: numpy sums each row of a sliding-window view pairwise, as
    `np.sum` sums a window (tested). `indicator_kernels.window_sums` is faster (doubling) but adds
    in another order, so its last bits differ: this one is for numbers a per-candle `numpy_sum`
    must reproduce (the engine's bandwidths, the SMA's means)."""
    v = np.ascontiguousarray(x, dtype=np.float64)
    if n < 1 or len(v) < n:
        return np.empty(0)
    out: np.ndarray = np.lib.stride_tricks.sliding_window_view(v, n).sum(axis=1)
    return out


def wilder_trend_step(atr: float, st: float, sp: float, sm: float, adx: float,
                      h: float, lo: float, c: float, ph: float, pl: float, pc: float,
                      n_atr: int, n_adx: int) -> tuple[float, float, float, float, float]:
    """ATR and ADX one candle on, from the previous candle (ph, pl, pc) and the Wilder states:
    `atr`, the Wilder sums of true range `st`, +DM `sp`, -DM `sm`, and `adx`. Returns the new
    (atr, st, sp, sm, adx). The same recursions as `bot.analysis.indicators.atr` / `adx` (TA-Lib): an
    undefined DX (no range) holds the ADX. Shared by `FeatureStream` and the engine's
    `StreamingIndicators`."""
    tr = max(h - lo, abs(h - pc), abs(lo - pc))
    atr = (atr * (n_atr - 1) + tr) / n_atr
    up, dn = h - ph, pl - lo
    plus = up if (up > 0 and up > dn) else 0.0
    minus = dn if (dn > 0 and up < dn) else 0.0
    a = 1.0 - 1.0 / n_adx
    st = st * a + tr
    sp = sp * a + plus
    sm = sm * a + minus
    if abs(st) >= ind._ZERO:
        p, q = 100.0 * sp / st, 100.0 * sm / st
        if abs(p + q) >= ind._ZERO:
            adx = (adx * (n_adx - 1) + 100.0 * abs(q - p) / (p + q)) / n_adx
    return atr, st, sp, sm, adx


def _wilder_sum_last(x: np.ndarray, n: int) -> float:
    """The last value of a Wilder *sum* (seed: sum of x[1:n] at index n-1), as `ind.adx` forms it."""
    return float(ind._recursive(x[n - 1:].copy(), float(np.sum(x[1:n])), 1.0 - 1.0 / n, 1.0)[-1])


class FeatureStream:
    """The newest row of `market_features`, carried forward in O(window) per candle.

    Seeded once from a candle frame (the row there is `market_features(frame)[-1]`, and the
    recursive states are read from the same vector pass: EMA 21/50/200, the MACD's two EMAs and
    signal, RSI's Wilder means, ATR, ADX's Wilder sums); each `update` then applies the
    recursions TA-Lib uses and recomputes the short windows (Bollinger, CMF, volume ratio, the
    return volatility, the return lags) directly. After `update`s the row equals
    `market_features(seed frame + the new candles)[-1]` to ~1e-12 (tested on real candles):
    the features of an ever-growing history, in constant time. The caller keeps candles in
    order and reseeds after a gap (see `DQNStrategy.state_for`).
    """

    def __init__(self, frame: Any, *, window: int = 32, settings: Any = None) -> None:
        self.window = window = ind._period(window, "window")
        cols = ind._columns(frame)
        h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
        need = warmup_length(window, settings) + 1
        if len(c) < need:
            raise ValueError(f"a feature stream needs at least {need} candles to seed, got {len(c)}")
        self.n_atr, self.n_adx, self.bb_n, self.bb_k = _periods(settings)
        self.row = market_features(frame, window=window, settings=settings, dtype=np.float64)[-1]
        self._z: deque[float] = deque(self.row[:window].tolist(), maxlen=window)
        lg = np.log(c[-(VOL_PERIOD + 1):])
        self._rets: deque[float] = deque(np.diff(lg).tolist(), maxlen=VOL_PERIOD)
        # the window's sum and sum of squares, exact (whole numbers of 2**-1074) and rolled on: the
        # correctly rounded quotient is math.fsum's correctly rounded sum, without its 100-term pass
        self._ret_sums = _exact_sums(self._rets)
        self._log_c = float(lg[-1])
        self._closes: deque[float] = deque(c[-self.bb_n:].tolist(), maxlen=self.bb_n)
        rng = h[-20:] - lo[-20:]
        mfv = np.where(rng > 0, ((c[-20:] - lo[-20:]) - (h[-20:] - c[-20:])) / np.where(rng > 0, rng, 1.0),
                       0.0) * v[-20:]
        self._mfv: deque[float] = deque(mfv.tolist(), maxlen=20)
        self._vol: deque[float] = deque(v[-20:].tolist(), maxlen=20)
        self._emas = [float(ind.ema(c, n)[-1]) for n in (21, 50, 200)]
        self._fast = float(ind._ema_from(c, 25, 12)[-1])
        self._slow = float(ind._ema_from(c, 25, 26)[-1])
        self._signal = float(ind.macd(c)[1][-1])
        moves = np.zeros((2, len(c)))             # RSI's Wilder means of gains and |changes|
        d = np.diff(c)
        moves[0, 1:], moves[1, 1:] = np.maximum(d, 0.0), np.abs(d)
        ind._wilder_inplace(moves, 14)
        self._gain, self._move = float(moves[0, -1]), float(moves[1, -1])
        self._atr = float(ind.atr(h, lo, c, self.n_atr)[-1])
        n = self.n_adx
        up, dn = np.diff(h), -np.diff(lo)
        plus = np.r_[0.0, np.where((up > dn) & (up > 0), up, 0.0)]
        minus = np.r_[0.0, np.where((dn > up) & (dn > 0), dn, 0.0)]
        self._st = _wilder_sum_last(ind._tr(h, lo, c), n)
        self._sp, self._sm = _wilder_sum_last(plus, n), _wilder_sum_last(minus, n)
        self._adx = float(ind.adx(h, lo, c, n)[0][-1])
        self._prev = (float(h[-1]), float(lo[-1]), float(c[-1]))

    def update(self, high: float, low: float, close: float, volume: float) -> np.ndarray:
        """Move on by one closed candle (the next one after the last seen); returns the new row
        (float64, the stream's own array: copy it to keep it)."""
        h, lo, c, v = float(high), float(low), float(close), float(volume)
        if not c > 0:
            raise ValueError(f"close prices must be positive to take log returns, got {c}")
        ph, pl, pc = self._prev
        # log returns scaled by their trailing volatility (sample std, as ind.logret_std)
        log_c = math.log(c)
        r = log_c - self._log_c
        self._log_c = log_c
        rets = self._rets
        old = rets[0] if len(rets) == rets.maxlen else None
        rets.append(r)
        m = len(rets)
        sums = self._ret_sums
        if sums is not None and -1e150 < r < 1e150:
            total, squares = sums[0] + _exact(r), sums[1] + _exact(r * r)
            if old is not None:
                total, squares = total - _exact(old), squares - _exact(old * old)
            self._ret_sums = (total, squares)
            s1, s2 = total / _UNIT, squares / _UNIT      # == math.fsum(rets), math.fsum(x * x ...)
        else:   # a return that is not finite in the window: summed afresh until it has left
            s1, s2 = math.fsum(rets), math.fsum([x * x for x in rets])
            self._ret_sums = _exact_sums(rets)
        var = max((s2 - s1 * s1 / m) / (m - 1), 0.0)
        sigma = math.sqrt(var)
        self._z.append(min(max(r / sigma, -RET_CLIP), RET_CLIP) if sigma > 0 else 0.0)
        # recursions: EMAs, MACD, RSI (Wilder), ATR and ADX (Wilder)
        e21, e50, e200 = self._emas
        e21 = (1.0 - _K21) * e21 + _K21 * c
        e50 = (1.0 - _K50) * e50 + _K50 * c
        e200 = (1.0 - _K200) * e200 + _K200 * c
        self._emas = [e21, e50, e200]
        self._fast = (1.0 - 2.0 / 13) * self._fast + (2.0 / 13) * c
        self._slow = (1.0 - 2.0 / 27) * self._slow + (2.0 / 27) * c
        line = self._fast - self._slow
        self._signal = (1.0 - 2.0 / 10) * self._signal + (2.0 / 10) * line
        hist = line - self._signal
        d = c - pc
        self._gain = (13 / 14) * self._gain + (1 / 14) * max(d, 0.0)
        self._move = (13 / 14) * self._move + (1 / 14) * abs(d)
        rsi = self._gain / self._move if abs(self._move) >= ind._ZERO else 0.0
        self._atr, self._st, self._sp, self._sm, self._adx = wilder_trend_step(
            self._atr, self._st, self._sp, self._sm, self._adx, h, lo, c, ph, pl, pc, self.n_atr, self.n_adx)
        atr = self._atr
        # windows: Bollinger %b (population std), Chaikin money flow, volume ratio
        closes = self._closes
        closes.append(c)
        nb = len(closes)
        mid = math.fsum(closes) / nb
        dev = math.sqrt(math.fsum([(x - mid) ** 2 for x in closes]) / nb) * self.bb_k
        upper, lower = mid + dev, mid - dev
        width = upper - lower
        pct_b = (c - lower) / width if width > 0 else 0.5
        rng = h - lo
        self._mfv.append((((c - lo) - (h - c)) / rng if rng > 0 else 0.0) * v)
        self._vol.append(v)
        vol = math.fsum(self._vol)
        cmf = math.fsum(self._mfv) / vol if vol > 0 else 0.0
        avg = vol / len(self._vol)
        ratio = v / avg if avg > 0 else 1.0
        if atr > 0:
            dists = [min(max((c - e) / atr, -DIST_CLIP), DIST_CLIP) for e in (e21, e50, e200)]
        else:
            dists = [0.0] * 3 if atr == 0 else [math.nan] * 3
        row = self.row
        row[:] = [*self._z, rsi, 100.0 * hist / c, min(max(pct_b, -1.0), 2.0), 100.0 * atr / c,
                  self._adx / 100.0, cmf, min(max(ratio, 0.0), VOLUME_RATIO_CLIP), *dists]
        self._prev = (h, lo, c)
        return row
