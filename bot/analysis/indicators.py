"""Technical indicators on plain numpy arrays, equal to TA-Lib's, in TA-Lib's speed class.

Every function takes 1-D arrays (or lists) and returns float64 arrays of the same length, NaN
during warm-up. Inputs are expected finite (validated candles); a NaN propagates forward. No pandas, no hidden state, no Python loop over candles: recursive smoothing
(EMA, Wilder) runs as blocked matrix products chained by `scipy.signal.lfilter`, windows as
log-step pairwise sums and extremes (see bot/analysis/indicator_kernels.py).

Where TA-Lib has the same indicator the values equal TA-Lib 0.6+/0.8 with its default settings
(no unstable period, default compatibility) to 1e-9 relative, including its seeding:

- EMA: first value at index n-1 = SMA of the first n values, then y += k (x - y), k = 2/(n+1).
- RSI, ATR: Wilder; first value at index n = plain mean of the first n changes / true ranges.
- ADX, +DI, -DI: Wilder *sums* of DM and TR seeded with n-1 values; DI from index n, ADX from
  index 2n-1 = mean of the first n DX; a DX that is undefined (no range) leaves ADX unchanged.
- MACD: both EMAs start at the slow EMA's first index (the fast EMA is seeded by the mean of
  the `fast` closes ending there, not the first `fast` closes); all three outputs start at
  index slow + signal - 2.
- Bollinger and STDDEV use the population standard deviation (ddof 0).

Known deliberate difference: TA-Lib returns a standard deviation of 0 when the variance is
below 1e-8 (its TA_IS_ZERO_OR_NEG guard), which wipes out the bands of coins priced under a
cent; here the true value is returned. `compute_all` lists the keys other parts use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.analysis.indicator_kernels import recursive as _recursive
from bot.analysis.indicator_kernels import rolling_var as _rolling_var
from bot.analysis.indicator_kernels import weighted_window_sums as _wsum
from bot.analysis.indicator_kernels import window_extreme as _rext
from bot.analysis.indicator_kernels import window_sums as _rsum

__all__ = [
    "sma", "ema", "wma", "rsi", "macd", "bbands", "bollinger", "stddev", "true_range", "atr", "adx",
    "cci", "williams_r", "stochastic", "obv", "cmf", "volume_ratio", "roc", "logret_std",
    "rolling_max", "rolling_min", "compute_all", "required_history", "tail_window", "obv_step",
    "TechnicalIndicators",
]

ArrayLike = np.ndarray | Sequence[float]

_ZERO = 1e-8  # TA-Lib's TA_IS_ZERO threshold: |v| below this counts as zero


def _arr(x: Any, name: str = "values") -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of numbers, got shape {a.shape}")
    return a


def _period(n: Any, name: str = "period", lo: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {n!r}")
    return int(n)


def _same_len(*arrays: np.ndarray, names: str) -> None:
    if len({len(a) for a in arrays}) > 1:
        lens = ", ".join(str(len(a)) for a in arrays)
        raise ValueError(f"{names} must have the same length, got {lens}")


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _valid_out(N: int, first: int) -> np.ndarray:
    """A result array with NaN before index `first` (the warm-up)."""
    out = np.empty(N)
    out[: min(first, N)] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# window primitives

def rolling_max(x: ArrayLike, period: int) -> np.ndarray:
    """Highest value of each trailing window of `period` (current value included)."""
    x, n = _arr(x), _period(period)
    out = _valid_out(len(x), n - 1)
    if len(x) >= n:
        _rext(x, n, np.maximum, out=out[n - 1:])
    return out


def rolling_min(x: ArrayLike, period: int) -> np.ndarray:
    """Lowest value of each trailing window of `period` (current value included)."""
    x, n = _arr(x), _period(period)
    out = _valid_out(len(x), n - 1)
    if len(x) >= n:
        _rext(x, n, np.minimum, out=out[n - 1:])
    return out


def _ema_from(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """TA-Lib EMA whose first value sits at index `start`, seeded by the mean of x[start-n+1:start+1]."""
    out = np.empty(len(x))
    out[:start] = np.nan
    if start < len(x) and start - n + 1 >= 0:
        k = 2.0 / (n + 1)
        seed = float(np.sum(x[start - n + 1:start + 1])) / n
        _recursive(x[start:], seed, 1.0 - k, k, out=out[start:])
    else:
        out[start:] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# moving averages and oscillators

def sma(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Simple moving average (TA-Lib SMA)."""
    x, n = _arr(x), _period(period)
    out = _valid_out(len(x), n - 1)
    if len(x) >= n:
        _rsum(x, n, out=out[n - 1:])
        out[n - 1:] /= n
    return out


def ema(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Exponential moving average, k = 2/(n+1), seeded with the SMA of the first n (TA-Lib EMA)."""
    x, n = _arr(x), _period(period)
    return _ema_from(x, n - 1, n)


def wma(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Linearly weighted moving average, newest weight n (TA-Lib WMA)."""
    x, n = _arr(x), _period(period)
    out = _valid_out(len(x), n - 1)
    if len(x) >= n:
        res = _wsum(x, n, out=out[n - 1:])
        res /= n * (n + 1) / 2.0
    return out


def _wilder_inplace(x: np.ndarray, n: int) -> np.ndarray:
    """Turn x[..., 1:] into Wilder's average in place: mean(x[1:n+1]) at index n, then
    (prev*(n-1) + x)/n; NaN before index n."""
    if x.shape[-1] > n:
        seed = np.sum(x[..., 1:n + 1], axis=-1) / n
        _recursive(x[..., n:], seed, (n - 1) / n, 1.0 / n, out=x[..., n:])
        x[..., :n] = np.nan
    else:
        x[...] = np.nan
    return x


def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Relative Strength Index, Wilder smoothing (TA-Lib RSI); 0 where nothing moved."""
    c, n = _arr(close, "close"), _period(period)
    if len(c) <= n:
        return _nan(len(c))
    moves = np.empty((2, len(c)))           # row 0: gains, row 1: |change| (gain + loss)
    moves[:, 0] = 0.0
    np.subtract(c[1:], c[:-1], out=moves[1, 1:])
    np.maximum(moves[1, 1:], 0.0, out=moves[0, 1:])
    np.abs(moves[1, 1:], out=moves[1, 1:])
    _wilder_inplace(moves, n)
    out, tot = moves[0], moves[1, n:]
    r = out[n:]
    ok = np.abs(tot) >= _ZERO
    np.divide(r, tot, out=r, where=ok)
    r *= 100.0
    if not ok.all():
        r[~ok] = 0.0
    return out


def macd(close: ArrayLike, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram (TA-Lib MACD); all start at index slow+signal-2."""
    c = _arr(close, "close")
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if slow < fast:
        fast, slow = slow, fast  # TA-Lib swaps them too
    start = slow - 1
    line = _ema_from(c, start, fast)
    hist = _ema_from(c, start, slow)
    line -= hist
    sig = _ema_from(line, start + signal - 1, signal) if len(c) > start else _nan(len(c))
    line[: start + signal - 1] = np.nan
    return line, sig, np.subtract(line, sig, out=hist)


def stddev(x: ArrayLike, period: int = 20, nbdev: float = 1.0, *, ddof: int = 0) -> np.ndarray:
    """Rolling standard deviation times `nbdev` (TA-Lib STDDEV uses ddof=0)."""
    x, n = _arr(x), _period(period)
    out = _rolling_var(x, n, ddof)
    np.sqrt(out, out=out)
    if nbdev != 1.0:
        out *= nbdev
    return out


def bbands(close: ArrayLike, period: int = 20,
           nbdev: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger Bands (upper, middle, lower): SMA +- nbdev population std (TA-Lib BBANDS)."""
    c, n = _arr(close, "close"), _period(period)
    mid = sma(c, n)
    upper = stddev(c, n, nbdev)
    lower = np.subtract(mid, upper)
    upper += mid
    return upper, mid, lower


def bollinger(close: ArrayLike, period: int = 20, nbdev: float = 2.0) -> tuple[np.ndarray, ...]:
    """Bollinger Bands with their shape: (upper, middle, lower, bandwidth, percent_b).

    bandwidth = (upper - lower) / middle; percent_b = (close - lower) / (upper - lower), 0.5 where
    the bands have collapsed (flat prices: the close sits on the middle).
    """
    c, n = _arr(close, "close"), _period(period)
    upper, mid, lower = bbands(c, n, nbdev)
    width = np.subtract(upper, lower)
    pct_b = np.subtract(c, lower)
    ok = width > 0
    np.divide(pct_b, width, out=pct_b, where=ok)
    pct_b[~ok] = 0.5
    pct_b[: n - 1] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        width /= mid
    return upper, mid, lower, width, pct_b


# ---------------------------------------------------------------------------------------------
# range and trend

def _hlc(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> tuple[np.ndarray, ...]:
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    return h, lo, c


def _tr(h: np.ndarray, lo: np.ndarray, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """True range with 0 at index 0 (never used: every smoothing starts at index 1).

    max(h, prev close) - min(l, prev close) picks the same two numbers TA-Lib's largest of
    three differences subtracts, so the result is bit-identical, in three passes.
    """
    tr = np.empty(len(c)) if out is None else out
    if len(c):
        tr[0] = 0.0
        pc = c[:-1]
        t = np.maximum(h[1:], pc, out=tr[1:])
        t -= np.minimum(lo[1:], pc)
    return tr


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> np.ndarray:
    """True range (TA-Lib TRANGE): NaN at index 0, which has no previous close."""
    tr = _tr(*_hlc(high, low, close))
    if len(tr):
        tr[0] = np.nan
    return tr


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14, *,
        tr: np.ndarray | None = None, smoothing: str = "wilder") -> np.ndarray:
    """Average True Range; NaN before index n (the first n true ranges need a previous close).

    `smoothing` "wilder" (TA-Lib ATR, the bot's ATR): Wilder's average seeded with the mean of
    the first n true ranges. "mean": the plain mean of the last n true ranges (the SMA
    strategy's stop unit)."""
    n = _period(period)
    h, lo, c = _hlc(high, low, close)
    x = _tr(h, lo, c) if tr is None else tr.copy()
    if smoothing == "wilder":
        return _wilder_inplace(x, n)
    if smoothing != "mean":
        raise ValueError(f"ATR smoothing must be 'wilder' or 'mean', got {smoothing!r}")
    out = _nan(len(x))
    if len(x) > n:
        out[1:] = sma(x[1:], n)
    return out


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14, *,
        tr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average Directional Index with +DI and -DI: (adx, plus_di, minus_di), TA-Lib conventions."""
    h, lo, c = _hlc(high, low, close)
    n = _period(period, lo=2)
    N = len(c)
    if N <= n:
        return _nan(N), _nan(N), _nan(N)
    # The three outputs double as work space: +DM -> +DI, -DM -> -DI, TR -> DX -> ADX.
    pdi, mdi, adx_out = np.empty(N), np.empty(N), np.empty(N)
    up, dn = pdi[1:], mdi[1:]
    np.subtract(h[1:], h[:-1], out=up)
    np.subtract(lo[:-1], lo[1:], out=dn)
    plus = up > dn
    plus &= up > 0
    minus = dn > up
    minus &= dn > 0
    up *= plus                               # a move that is not the larger one counts 0
    dn *= minus
    del plus, minus
    if tr is None:
        _tr(h, lo, c, out=adx_out)
    else:
        adx_out[:] = tr
    a = 1.0 - 1.0 / n
    for x in (pdi, mdi, adx_out):
        # Wilder sums in place: seed at candle n-1 with the sum of n-1 values, then S - S/n + x
        _recursive(x[n - 1:], float(np.sum(x[1:n])), a, 1.0, out=x[n - 1:])
    p, m, st = pdi[n:], mdi[n:], adx_out[n:]
    tr_ok = np.abs(st) >= _ZERO
    all_ok = bool(tr_ok.all())
    if not all_ok:
        st[~tr_ok] = 1.0
    p /= st
    p *= 100.0
    m /= st
    m *= 100.0
    if not all_ok:
        p[~tr_ok] = 0.0
        m[~tr_ok] = 0.0
    pdi[:n] = np.nan
    mdi[:n] = np.nan
    if N < 2 * n:
        adx_out[:] = np.nan
        return adx_out, pdi, mdi
    # DX = 100 |m - p| / (m + p) = 100 |2 m / (m + p) - 1|, computed in place where TR was
    dx = np.add(p, m, out=st)
    dx_ok = np.abs(dx) >= _ZERO
    dx_ok &= tr_ok
    dx_all = bool(dx_ok.all())
    if dx_all:
        np.divide(m, dx, out=dx)
    else:
        np.divide(m, dx, out=dx, where=dx_ok)
    dx *= 2.0
    dx -= 1.0
    np.abs(dx, out=dx)
    dx *= 100.0
    if not dx_all:
        dx[~dx_ok] = 0.0
    seed = float(np.sum(dx[:n])) / n        # undefined DX count as 0 in the seed, as in TA-Lib
    rest = adx_out[2 * n - 1:]               # rest[0] becomes the seed; DX from rest[1] on
    if dx_all or dx_ok[n:].all():
        _recursive(rest, seed, (n - 1) / n, 1.0 / n, out=rest)
    else:
        # An undefined DX holds the ADX: drop those candles, smooth the rest, carry forward.
        rest_ok = dx_ok[n:]
        run = _recursive(np.r_[0.0, rest[1:][rest_ok]], seed, (n - 1) / n, 1.0 / n)
        rest[:] = run[np.cumsum(np.r_[True, rest_ok]) - 1]
    adx_out[: 2 * n - 1] = np.nan
    return adx_out, pdi, mdi


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 20) -> np.ndarray:
    """Commodity Channel Index on the typical price, 0.015 constant (TA-Lib CCI)."""
    h, lo, c = _hlc(high, low, close)
    n = _period(period, lo=2)
    N = len(c)
    out = _valid_out(N, n - 1)
    m = N - n + 1
    if m <= 0:
        return out
    tp = np.add(h, lo)
    tp += c
    tp /= 3.0
    # Direct window sums (as TA-Lib) keep a flat stretch's deviation exactly 0, so CCI is 0 there.
    # Work in cache-sized chunks: the n passes over each chunk stay in L2.
    step = 1 << 14
    avg, md, tmp = np.empty(step), np.empty(step), np.empty(step)
    for i in range(0, m, step):  # chunks of candles, each handled by whole-array operations
        k = min(step, m - i)
        a, d, t = avg[:k], md[:k], tmp[:k]
        np.copyto(a, tp[i:i + k])
        for j in range(1, n):
            a += tp[i + j:i + j + k]
        a /= n
        np.subtract(tp[i:i + k], a, out=d)
        np.abs(d, out=d)
        for j in range(1, n):
            np.subtract(tp[i + j:i + j + k], a, out=t)
            np.abs(t, out=t)
            d += t
        d /= n
        dev = np.subtract(tp[i + n - 1:i + n - 1 + k], a, out=out[i + n - 1:i + n - 1 + k])
        ok = dev != 0.0
        ok &= d != 0.0
        d *= 0.015
        np.divide(dev, d, out=dev, where=ok)
        dev[~ok] = 0.0
    return out


def williams_r(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Williams %R in [-100, 0] (TA-Lib WILLR); 0 when the window has no range."""
    h, lo, c = _hlc(high, low, close)
    n = _period(period, lo=2)
    out = _valid_out(len(c), n - 1)
    if len(c) < n:
        return out
    hh = _rext(h, n, np.maximum, out=out[n - 1:])
    diff = _rext(lo, n, np.minimum)
    np.subtract(hh, diff, out=diff)
    diff *= -0.01
    hh -= c[n - 1:]
    ok = diff != 0.0
    np.divide(hh, diff, out=hh, where=ok)
    hh[~ok] = 0.0
    return out


def stochastic(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk_period: int = 5,
               slowk_period: int = 3, slowd_period: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic (slow %K, %D) with SMA smoothing (TA-Lib STOCH, matype 0)."""
    h, lo, c = _hlc(high, low, close)
    fk = _period(fastk_period, "fastk_period")
    sk, sd = _period(slowk_period, "slowk_period"), _period(slowd_period, "slowd_period")
    N = len(c)
    look = fk + sk + sd - 3
    slow_k, slow_d = _valid_out(N, look), _valid_out(N, look)
    if N <= look:
        slow_k[:] = slow_d[:] = np.nan
        return slow_k, slow_d
    ll = _rext(lo, fk, np.minimum)
    diff = _rext(h, fk, np.maximum)
    diff -= ll
    diff /= 100.0
    fast = np.subtract(c[fk - 1:], ll, out=ll)
    ok = diff != 0.0
    np.divide(fast, diff, out=fast, where=ok)
    fast[~ok] = 0.0
    del diff, ok
    k = _rsum(fast, sk)
    k /= sk
    _rsum(k, sd, out=slow_d[look:])
    slow_d[look:] /= sd
    slow_k[look:] = k[sd - 1:]             # TA-Lib starts both at the full lookback
    return slow_k, slow_d


# ---------------------------------------------------------------------------------------------
# volume and returns

def obv(close: ArrayLike, volume: ArrayLike) -> np.ndarray:
    """On-Balance Volume starting at volume[0] (TA-Lib OBV)."""
    c, v = _arr(close, "close"), _arr(volume, "volume")
    _same_len(c, v, names="close, volume")
    if len(c) == 0:
        return np.empty(0)
    step = np.empty(len(c))
    step[0] = v[0]
    rest = step[1:]
    np.subtract(c[1:], c[:-1], out=rest)
    np.sign(rest, out=rest)
    rest *= v[1:]
    return np.cumsum(step, out=step)


def cmf(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        period: int = 20) -> np.ndarray:
    """Chaikin Money Flow: sum(money-flow volume, n) / sum(volume, n), in [-1, 1].

    Money-flow multiplier ((c - l) - (h - c)) / (h - l) is 0 for a candle without range; the
    result is 0 for a window without volume (no money flowed).
    """
    h, lo, c = _hlc(high, low, close)
    v = _arr(volume, "volume")
    _same_len(c, v, names="close, volume")
    n = _period(period)
    out = _valid_out(len(c), n - 1)
    if len(c) < n:
        return out
    rng = h - lo
    mfm = (c - lo) - (h - c)
    ok = rng > 0
    np.divide(mfm, rng, out=mfm, where=ok)
    mfm[~ok] = 0.0
    mfm *= v
    flow = _rsum(mfm, n, out=out[n - 1:])
    vol = _rsum(v, n, out=mfm[: len(c) - n + 1])
    ok = vol > 0
    np.divide(flow, vol, out=flow, where=ok)
    flow[~ok] = 0.0
    return out


def volume_ratio(volume: ArrayLike, period: int = 20) -> np.ndarray:
    """Volume over its SMA of `period` (current candle included); 1.0 where that SMA is 0."""
    v, n = _arr(volume, "volume"), _period(period)
    out = _valid_out(len(v), n - 1)
    if len(v) < n:
        return out
    avg = _rsum(v, n, out=out[n - 1:])
    avg /= n
    ok = avg > 0
    np.divide(v[n - 1:], avg, out=avg, where=ok)
    avg[~ok] = 1.0
    return out


def roc(x: ArrayLike, period: int = 10) -> np.ndarray:
    """Rate of change in percent: (x / x[t-n] - 1) * 100 (TA-Lib ROC); 0 where x[t-n] is 0."""
    x, n = _arr(x), _period(period)
    out = _valid_out(len(x), n)
    if len(x) > n:
        prev = x[:-n]
        r = out[n:]
        ok = prev != 0.0
        if ok.all():
            np.divide(x[n:], prev, out=r)
        else:
            np.divide(x[n:], prev, out=r, where=ok)
        r -= 1.0
        r *= 100.0
        if not ok.all():
            r[~ok] = 0.0
    return out


def logret_std(close: ArrayLike, period: int = 20, *, ddof: int = 1) -> np.ndarray:
    """Standard deviation of the last `period` log returns (sample std by default).

    Log returns hover around 0, so the plain sums of r and r**2 do not cancel the way sums of
    squared prices would: no anchoring needed. Runs in cache-sized chunks of candles (each
    window's sums are formed the same way whatever the chunking, so results do not depend on it).
    """
    c, n = _arr(close, "close"), _period(period, lo=2)
    N = len(c)
    out = _valid_out(N, n)
    if N <= n:
        out[:] = np.nan
        return out
    step = 1 << 15
    lc, s1 = np.empty(step + n), np.empty(step)
    scratch = np.empty((2, step + n - 1))
    for i in range(n, N, step):  # chunks of candles, each handled by whole-array operations
        k = min(step, N - i)
        lg = np.log(c[i - n:i + k], out=lc[:k + n])
        r = np.subtract(lg[1:], lg[:-1], out=lg[:-1])   # the k + n - 1 returns the windows use
        a = _rsum(r, n, out=s1[:k], scratch=scratch[:, :k + n - 1])
        np.multiply(r, r, out=r)
        var = _rsum(r, n, out=out[i:i + k], scratch=scratch[:, :k + n - 1])
        a *= a
        a /= n
        var -= a
        var /= n - ddof
        np.maximum(var, 0.0, out=var)
        np.sqrt(var, out=var)
    return out


# ---------------------------------------------------------------------------------------------
# the whole suite over a candle frame

_EMA_PERIODS = (9, 21, 50, 200)


def _columns(frame: Any, need: tuple[str, ...] = ("high", "low", "close", "volume")
             ) -> dict[str, np.ndarray]:
    """The candle columns of a DataFrame or a mapping of arrays, as float64 numpy arrays."""
    missing = [k for k in need if k not in frame]
    if missing:
        have = list(frame.keys()) if hasattr(frame, "keys") else type(frame).__name__
        raise ValueError(f"candles lack column(s) {missing}; got {have}")
    cols = {k: _arr(np.asarray(frame[k]), k) for k in need}
    _same_len(*cols.values(), names=", ".join(need))
    return cols


def _setting(settings: Any, name: str, default: float) -> Any:
    return default if settings is None else getattr(settings, name, default)


def compute_all(frame: Any, settings: Any = None) -> dict[str, np.ndarray]:
    """Every indicator of a candle frame (DataFrame or dict of arrays with high/low/close/volume).

    Keys (all arrays as long as the frame, NaN during warm-up):
    - `ema_9`, `ema_21`, `ema_50`, `ema_200`, `sma_20`, `sma_50`, `wma_20`
    - `rsi_14`; `macd`, `macd_signal`, `macd_hist` (12/26/9)
    - `bb_upper`, `bb_middle`, `bb_lower`, `bb_bandwidth`, `bb_percent_b` (BB_PERIOD, BB_STD)
    - `atr` (ATR_PERIOD), `atr_14`; `adx`, `plus_di`, `minus_di` (ADX_PERIOD), `adx_14`
    - `cci_20`, `willr_14`, `stoch_k`, `stoch_d` (5/3/3), `roc_10`
    - `obv`, `cmf_20`, `volume_ratio` (20), `logret_std_20`
    Periods come from `settings` (ATR_PERIOD, ADX_PERIOD, BB_PERIOD, BB_STD) or the defaults;
    names with a number always use that number.
    """
    cols = _columns(frame)
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    atr_n = int(_setting(settings, "ATR_PERIOD", 14))
    adx_n = int(_setting(settings, "ADX_PERIOD", 14))
    bb_n = int(_setting(settings, "BB_PERIOD", 20))
    bb_k = float(_setting(settings, "BB_STD", 2.0))
    out: dict[str, np.ndarray] = {f"ema_{n}": ema(c, n) for n in _EMA_PERIODS}
    out["sma_20"], out["sma_50"], out["wma_20"] = sma(c, 20), sma(c, 50), wma(c, 20)
    out["rsi_14"] = rsi(c, 14)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd(c, 12, 26, 9)
    (out["bb_upper"], out["bb_middle"], out["bb_lower"], out["bb_bandwidth"],
     out["bb_percent_b"]) = bollinger(c, bb_n, bb_k)
    tr = _tr(h, lo, c)                     # shared by ATR and ADX
    out["atr"] = atr(h, lo, c, atr_n, tr=tr)
    out["atr_14"] = out["atr"] if atr_n == 14 else atr(h, lo, c, 14, tr=tr)
    out["adx"], out["plus_di"], out["minus_di"] = adx(h, lo, c, adx_n, tr=tr)
    out["adx_14"] = out["adx"] if adx_n == 14 else adx(h, lo, c, 14, tr=tr)[0]
    out["cci_20"] = cci(h, lo, c, 20)
    out["willr_14"] = williams_r(h, lo, c, 14)
    out["stoch_k"], out["stoch_d"] = stochastic(h, lo, c, 5, 3, 3)
    out["roc_10"] = roc(c, 10)
    out["obv"] = obv(c, v)
    out["cmf_20"] = cmf(h, lo, c, v, 20)
    out["volume_ratio"] = volume_ratio(v, 20)
    out["logret_std_20"] = logret_std(c, 20)
    return out


def _converged_after(pole: float, stages: int, tol: float) -> int:
    """Candles after which `stages` chained recursions with `pole` forget their seed below tol."""
    m = np.arange(1, 200_000, dtype=np.float64)
    # chained first-order filters leave a seed error ~ C(m, stages-1) * pole**m
    log_err = (stages - 1) * np.log(m) + m * np.log(pole)
    return int(m[np.argmax(log_err < np.log(tol))])


def required_history(settings: Any = None, *, tol: float = 1e-15) -> int:
    """Candles a tail must hold so `compute_all` on it equals the full history at its last row.

    Window indicators are exact once the tail covers their window; the EMA/Wilder recursions
    forget their seed geometrically, so the tail adds enough candles for the seed's weight to
    fall below `tol` (relative), with the double smoothing of ADX and the MACD signal counted.
    `obv` is a running total and is excluded: from a tail it is off by a constant (use
    `obv_step` to carry it forward exactly).
    """
    atr_n = int(_setting(settings, "ATR_PERIOD", 14))
    adx_n = int(_setting(settings, "ADX_PERIOD", 14))
    bb_n = int(_setting(settings, "BB_PERIOD", 20))
    need = [
        max(_EMA_PERIODS) + _converged_after(1 - 2 / (max(_EMA_PERIODS) + 1), 1, tol),
        26 + 9 + _converged_after(1 - 2 / 27, 2, tol),
        14 + _converged_after(13 / 14, 1, tol),
        atr_n + _converged_after(1 - 1 / max(atr_n, 14), 1, tol),
        2 * max(adx_n, 14) + _converged_after(1 - 1 / max(adx_n, 14), 3, tol),
        bb_n + 1, 60,
    ]
    return int(max(need)) + 1


def tail_window(frame: Any, settings: Any = None, *, extra: int = 0) -> Any:
    """The last `required_history(settings) + extra` candles of a frame (DataFrame or dict)."""
    n = required_history(settings) + _period(extra + 1, "extra + 1") - 1
    if hasattr(frame, "iloc"):
        return frame.iloc[-n:]
    return {k: np.asarray(v)[-n:] for k, v in frame.items()}


def obv_step(prev_obv: float, prev_close: float, close: float, volume: float) -> float:
    """OBV after one more candle: add the volume on an up close, subtract it on a down close."""
    return prev_obv + (volume if close > prev_close else -volume if close < prev_close else 0.0)


class TechnicalIndicators:
    """All indicators of one candle frame, computed once on first use (`compute_all` keys)."""

    def __init__(self, frame: Any, *, settings: Any = None) -> None:
        self._cols = _columns(frame)
        self._settings = settings
        self._values: dict[str, np.ndarray] | None = None

    @property
    def values(self) -> dict[str, np.ndarray]:
        if self._values is None:
            self._values = compute_all(self._cols, self._settings)
        return self._values

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.values[key]
        except KeyError:
            import difflib
            close = difflib.get_close_matches(key, self.values, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"no indicator {key!r}{hint}") from None

    def latest(self) -> dict[str, float]:
        """The value of every indicator at the last candle."""
        return {k: float(v[-1]) if len(v) else float("nan") for k, v in self.values.items()}
