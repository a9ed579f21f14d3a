"""The newest values of the rule indicators, carried forward one closed candle at a time.

`IndicatorStream` follows a candle series from its first candle with the recursions and windows
of `bot.analysis.indicators` (TA-Lib's): EMAs, MACD 12/26/9, RSI 14, Wilder ATR, ADX with
+DI/-DI, Bollinger bandwidth, Chaikin money flow 20 and the volume ratio 20, each undefined
(NaN) for exactly the candles its array in `compute_all` is NaN for, and seeded the same way
(means of the first values, Wilder sums). After any number of `update`s its values equal the
last row of `compute_all` over the same candles to rounding (~1e-13 relative; tested on real
candles), at a constant cost per candle instead of a pass over the whole window.

Unlike `FeatureStream` (seeded once from a long frame by one vector pass), this stream starts
empty, so a strategy that warms up candle by candle sees the same warm-up as the full
computation. It shares `ind._ZERO` (TA-Lib's zero) and the TA-Lib conventions with indicators.py.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable

from bot.analysis import indicators as ind

__all__ = ["IndicatorStream", "SeededRecursion", "SortedWindow"]

NAN = math.nan


class SeededRecursion:
    """y = a*y + b*x after a seed: the first `skip` inputs are ignored, the next `count` are
    summed and the seed is that sum / `div` (NaN until then). The shape of every TA-Lib
    recursion: an EMA (skip 0, count n, div n), a Wilder mean (skip 1: the first candle has no
    change), a Wilder sum (div 1)."""

    __slots__ = ("a", "b", "skip", "count", "div", "seen", "total", "value", "seeded")

    def __init__(self, a: float, b: float, *, skip: int, count: int, div: float) -> None:
        self.a, self.b, self.skip, self.count, self.div = a, b, skip, count, div
        self.seen = 0
        self.total = 0.0
        self.value = NAN
        self.seeded = False

    def update(self, x: float) -> float:
        if self.seeded:
            v = self.value = self.a * self.value + self.b * x
            return v
        seen = self.seen = self.seen + 1
        if seen > self.skip + self.count:
            self.seeded = True
            self.value = self.a * self.value + self.b * x
        elif seen > self.skip:
            self.total += x
            if seen == self.skip + self.count:
                self.value = self.total / self.div
        return self.value


def _ema(n: int, skip: int = 0) -> SeededRecursion:
    k = 2.0 / (n + 1)
    return SeededRecursion(1.0 - k, k, skip=skip, count=n, div=n)


def _wilder_mean(n: int) -> SeededRecursion:
    return SeededRecursion((n - 1) / n, 1.0 / n, skip=1, count=n, div=n)


class _Adx:
    """ADX(n) with +DI/-DI exactly as `indicators.adx` forms them (its DX formula, its seed, an
    undefined DX holding the ADX)."""

    __slots__ = ("n", "sums", "seen", "dx_total", "adx", "plus_di", "minus_di")

    def __init__(self, n: int) -> None:
        self.n = n = ind._period(n, "ADX period", lo=2)
        a = 1.0 - 1.0 / n
        self.sums = [SeededRecursion(a, 1.0, skip=1, count=n - 1, div=1.0) for _ in range(3)]  # +DM, -DM, TR
        self.seen = 0
        self.dx_total = 0.0
        self.adx = self.plus_di = self.minus_di = NAN

    def update(self, up: float, dn: float, tr: float) -> None:
        n = self.n
        t = self.seen
        self.seen += 1
        sp = self.sums[0].update(up if (up > dn and up > 0) else 0.0)
        sm = self.sums[1].update(dn if (dn > up and dn > 0) else 0.0)
        st = self.sums[2].update(tr)
        if t < n:
            return
        ok = abs(st) >= ind._ZERO
        if ok:
            p, m = sp / st * 100.0, sm / st * 100.0
        else:
            p = m = 0.0
        self.plus_di, self.minus_di = p, m
        s = p + m
        dx_ok = ok and abs(s) >= ind._ZERO
        dx = abs(m / s * 2.0 - 1.0) * 100.0 if dx_ok else 0.0
        if t < 2 * n:
            self.dx_total += dx                    # undefined DX count as 0 in the seed
            if t == 2 * n - 1:
                self.adx = self.dx_total / n
        elif dx_ok:
            self.adx = (n - 1) / n * self.adx + 1.0 / n * dx


class SortedWindow:
    """The last `size` values as they came (`values`, a deque) and, kept in order as they come,
    the finite ones among them (`ordered`) and how many are not (`nans`): a percentile of the
    window is a lookup (`features.sorted_percentile`) instead of a sort."""

    __slots__ = ("values", "ordered", "nans")

    def __init__(self, size: int, values: Iterable[float] = ()) -> None:
        self.values: deque[float] = deque(values, maxlen=size)
        self.ordered = sorted(x for x in self.values if x == x)
        self.nans = len(self.values) - len(self.ordered)

    def push(self, x: float) -> None:
        kept = self.values
        if len(kept) == kept.maxlen:
            old = kept[0]
            if old == old:
                del self.ordered[bisect_left(self.ordered, old)]
            else:
                self.nans -= 1
        kept.append(x)
        if x == x:
            insort(self.ordered, x)
        else:
            self.nans += 1


class IndicatorStream:
    """The last values of the `compute_all` indicators a rule strategy reads, one candle at a time.

    Options (keyword-only): `emas` (periods), `atr_periods`, `adx_periods`, `bb_period`, `bb_std`,
    `bandwidth_keep` (how many recent Bollinger bandwidths to keep for percentiles), `windows`
    (False: only the recursions; bandwidths, money flow and volume ratio stay unset). Read after
    `update`: `ema[n]`, `atr[n]`, `adx[n]`, `plus_di[n]`, `minus_di[n]`, `rsi`, `macd_hist`,
    `prev_macd_hist`, `bandwidths` (newest last, NaN while warming up; `bandwidth_window`: the
    same as a `SortedWindow`, for percentiles), `cmf`, `volume_ratio`,
    and `candles` (how many were seen). The caller feeds closed candles in order.
    """

    def __init__(self, *, emas: tuple[int, ...] = (9, 21, 50, 200), atr_periods: tuple[int, ...] = (14,),
                 adx_periods: tuple[int, ...] = (14,), bb_period: int = 20, bb_std: float = 2.0,
                 bandwidth_keep: int = 100, windows: bool = True) -> None:
        self.windows = bool(windows)
        self._emas = {ind._period(n, "EMA period"): _ema(n) for n in emas}
        self.ema = dict.fromkeys(self._emas, NAN)
        # MACD 12/26/9: both EMAs start at candle 25 (the fast one seeded by its last 12 closes),
        # the signal 8 candles later (seeded by the mean of the first 9 MACD values)
        self._fast, self._slow, self._signal = _ema(12, skip=14), _ema(26), _ema(9)
        self.macd_hist = self.prev_macd_hist = NAN
        self._gain, self._move = _wilder_mean(14), _wilder_mean(14)
        self.rsi = NAN
        self._atrs = {ind._period(n, "ATR period"): _wilder_mean(n) for n in atr_periods}
        self.atr = dict.fromkeys(self._atrs, NAN)
        self._adxs = {n: _Adx(n) for n in adx_periods}
        self.adx = dict.fromkeys(self._adxs, NAN)
        self.plus_di = dict.fromkeys(self._adxs, NAN)
        self.minus_di = dict.fromkeys(self._adxs, NAN)
        self.bb_n, self.bb_k = ind._period(bb_period, "bb_period"), float(bb_std)
        self._closes: deque[float] = deque(maxlen=self.bb_n)
        self.bandwidth_window = SortedWindow(ind._period(bandwidth_keep, "bandwidth_keep"))
        self.bandwidths = self.bandwidth_window.values
        self._mfv: deque[float] = deque(maxlen=20)
        self._vol: deque[float] = deque(maxlen=20)
        self.cmf = self.volume_ratio = NAN
        self.candles = 0
        self._prev: tuple[float, float, float] | None = None
        self._settled = False   # every recursion seeded: `_step` from then on

    def update(self, high: float, low: float, close: float, volume: float) -> None:
        """Move on by one closed candle (the next after the last one seen)."""
        h, lo, c, v = float(high), float(low), float(close), float(volume)
        if self._settled:
            self._step(h, lo, c, v)
            return
        self._warm_up(h, lo, c, v)
        if self.candles >= 35 and self._all_seeded():   # 35: the MACD signal's seed, the latest fixed one
            self._settled = True

    def _all_seeded(self) -> bool:
        recs = [*self._emas.values(), self._fast, self._slow, self._signal, self._gain, self._move,
                *self._atrs.values(), *(r for x in self._adxs.values() for r in x.sums)]
        return all(r.seeded for r in recs) and all(x.seen >= 2 * x.n for x in self._adxs.values())

    def _warm_up(self, h: float, lo: float, c: float, v: float) -> None:
        """One candle while some recursion is still seeding: each follows its own seed rule."""
        self.candles += 1
        for n, e in self._emas.items():
            self.ema[n] = e.update(c)
        fast, slow = self._fast.update(c), self._slow.update(c)
        if self.candles >= 26:
            sig = self._signal.update(fast - slow)
            self.prev_macd_hist = self.macd_hist
            self.macd_hist = (fast - slow) - sig
        prev = self._prev
        ph, pl, pc = prev if prev is not None else (NAN, NAN, NAN)
        d = c - pc if prev is not None else 0.0
        gain, move = self._gain.update(max(d, 0.0)), self._move.update(abs(d))
        if gain == gain:
            self.rsi = gain / move * 100.0 if abs(move) >= ind._ZERO else 0.0
        tr = max(h, pc) - min(lo, pc) if prev is not None else 0.0
        for n, a in self._atrs.items():
            self.atr[n] = a.update(tr)
        up, dn = (h - ph, pl - lo) if prev is not None else (0.0, 0.0)
        for n, x in self._adxs.items():
            x.update(up, dn, tr)
            self.adx[n], self.plus_di[n], self.minus_di[n] = x.adx, x.plus_di, x.minus_di
        self._prev = (h, lo, c)
        if self.windows:
            self._windows(h, lo, c, v)

    def _step(self, h: float, lo: float, c: float, v: float) -> None:
        """One candle once every recursion is seeded: their `a * y + b * x` written out in one
        place (the same operations in the same order as `_warm_up`'s, so the same bits) instead of
        a call per recursion."""
        self.candles += 1
        ema = self.ema
        for n, e in self._emas.items():
            ema[n] = e.value = e.a * e.value + e.b * c
        f, s, g = self._fast, self._slow, self._signal
        fast = f.value = f.a * f.value + f.b * c
        slow = s.value = s.a * s.value + s.b * c
        sig = g.value = g.a * g.value + g.b * (fast - slow)
        self.prev_macd_hist = self.macd_hist
        self.macd_hist = (fast - slow) - sig
        ph, pl, pc = self._prev  # type: ignore[misc]
        d = c - pc
        gr, mr = self._gain, self._move
        gain = gr.value = gr.a * gr.value + gr.b * max(d, 0.0)
        move = mr.value = mr.a * mr.value + mr.b * abs(d)
        if gain == gain:
            self.rsi = gain / move * 100.0 if abs(move) >= ind._ZERO else 0.0
        tr = max(h, pc) - min(lo, pc)
        for n, a in self._atrs.items():
            self.atr[n] = a.value = a.a * a.value + a.b * tr
        up, dn = h - ph, pl - lo
        pdm = up if (up > dn and up > 0) else 0.0
        mdm = dn if (dn > up and dn > 0) else 0.0
        zero = ind._ZERO
        for n, x in self._adxs.items():
            x.seen += 1
            rp, rm, rt = x.sums
            sp = rp.value = rp.a * rp.value + rp.b * pdm
            sm = rm.value = rm.a * rm.value + rm.b * mdm
            st = rt.value = rt.a * rt.value + rt.b * tr
            ok = abs(st) >= zero
            if ok:
                p, m = sp / st * 100.0, sm / st * 100.0
            else:
                p = m = 0.0
            self.plus_di[n], self.minus_di[n] = x.plus_di, x.minus_di = p, m
            tot = p + m
            if ok and abs(tot) >= zero:
                x.adx = (n - 1) / n * x.adx + 1.0 / n * (abs(m / tot * 2.0 - 1.0) * 100.0)
            self.adx[n] = x.adx
        self._prev = (h, lo, c)
        if self.windows:
            self._windows(h, lo, c, v)

    def _windows(self, h: float, lo: float, c: float, v: float) -> None:
        """Bollinger bandwidth (population std), money flow and volume ratio over 20 candles."""
        closes = self._closes
        closes.append(c)
        nb = self.bb_n
        if len(closes) == nb:
            mid = math.fsum(closes) / nb
            sd = math.sqrt(math.fsum([d * d for d in [x - mid for x in closes]]) / nb)
            if self.bb_k != 1.0:
                sd *= self.bb_k
            self.bandwidth_window.push(((sd + mid) - (mid - sd)) / mid if mid != 0 else NAN)
        else:
            self.bandwidth_window.push(NAN)
        rng = h - lo
        self._mfv.append((((c - lo) - (h - c)) / rng if rng > 0 else 0.0) * v)
        vols = self._vol
        vols.append(v)
        if len(vols) == 20:
            vol = math.fsum(vols)
            self.cmf = math.fsum(self._mfv) / vol if vol > 0 else 0.0
            avg = vol / 20
            self.volume_ratio = v / avg if avg > 0 else 1.0
