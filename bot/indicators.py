"""Technical indicators on plain numpy arrays, equal to TA-Lib's and as fast.

Every function takes 1-D arrays (or lists) and returns float64 arrays of the same length, NaN
during warm-up. No pandas, no hidden state, no Python loop over candles: recursive smoothing
(EMA, Wilder) runs through `scipy.signal.lfilter`, windows through block-anchored cumulative
sums, `np.convolve` or `scipy.ndimage` min/max filters.

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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import lfilter

__all__ = [
    "sma", "ema", "wma", "rsi", "macd", "bollinger", "stddev", "true_range", "atr", "adx",
    "cci", "williams_r", "stochastic", "obv", "cmf", "volume_ratio", "roc", "logret_std",
    "rolling_max", "rolling_min", "compute_all", "required_history", "tail_window", "obv_step",
    "TechnicalIndicators", "DEFAULT_PERIODS",
]

ArrayLike = np.ndarray | Sequence[float]

_ZERO = 1e-8  # TA-Lib's TA_IS_ZERO threshold: |v| below this counts as zero


def _arr(x: Any, name: str = "values") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
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


# ---------------------------------------------------------------------------------------------
# window primitives

def _window_sums(x: np.ndarray, n: int, *, squares: bool = False) -> tuple[np.ndarray, ...]:
    """Sums over every window of n (valid mode, length len(x)-n+1), without cumsum drift.

    A plain cumsum over a million prices accumulates rounding into every later window; here the
    series is cut into overlapping blocks, each cumulated from its own first value (the anchor),
    so error stays at the size of one block of deviations. With `squares` it also returns the
    sum of squared deviations from the anchor, which a variance needs without cancellation.
    """
    m = len(x) - n + 1
    if m <= 0:
        return (np.empty(0),) * (3 if squares else 1)
    b = max(256, 4 * n)
    nb = -(-m // b)
    width = b + n - 1
    xp = np.empty(nb * b + n - 1)
    xp[: len(x)] = x
    xp[len(x):] = x[-1]
    rows = as_strided(xp, shape=(nb, width), strides=(b * 8, 8))
    anchor = rows[:, :1].copy()
    d = rows - anchor
    c = np.zeros((nb, width + 1))
    np.cumsum(d, axis=1, out=c[:, 1:])
    s1 = (c[:, n:] - c[:, :-n]).ravel()[:m]
    a = np.broadcast_to(anchor, (nb, b)).ravel()[:m]
    if not squares:
        return (s1 + n * a,)
    np.multiply(d, d, out=d)
    np.cumsum(d, axis=1, out=c[:, 1:])
    s2 = (c[:, n:] - c[:, :-n]).ravel()[:m]
    return s1 + n * a, s1, s2


def _rolling_var(x: np.ndarray, n: int, ddof: int = 0) -> np.ndarray:
    """Variance over each trailing window of n, full length, NaN for the first n-1."""
    out = _nan(len(x))
    if len(x) >= n:
        _, s1, s2 = _window_sums(x, n, squares=True)
        mean_d = s1 / n
        var = (s2 - n * mean_d * mean_d) / (n - ddof)
        out[n - 1:] = np.maximum(var, 0.0)
    return out


def rolling_max(x: ArrayLike, period: int) -> np.ndarray:
    """Highest value of each trailing window of `period` (current value included)."""
    x, n = _arr(x), _period(period)
    out = _nan(len(x))
    if len(x) >= n:
        out[n - 1:] = maximum_filter1d(x, n, origin=(n - 1) // 2)[n - 1:]
    return out


def rolling_min(x: ArrayLike, period: int) -> np.ndarray:
    """Lowest value of each trailing window of `period` (current value included)."""
    x, n = _arr(x), _period(period)
    out = _nan(len(x))
    if len(x) >= n:
        out[n - 1:] = minimum_filter1d(x, n, origin=(n - 1) // 2)[n - 1:]
    return out


def _recursive(x: np.ndarray, seed: float, a: float, b: float) -> np.ndarray:
    """y[0] = seed; y[t] = a*y[t-1] + b*x[t] for t >= 1 (x[0] is ignored)."""
    y = np.empty(len(x))
    y[0] = seed
    if len(x) > 1:
        y[1:] = lfilter([b], [1.0, -a], x[1:], zi=[a * seed])[0]
    return y


def _ema_from(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """TA-Lib EMA whose first value sits at index `start`, seeded by the mean of x[start-n+1:start+1]."""
    out = _nan(len(x))
    if start < len(x) and start - n + 1 >= 0:
        k = 2.0 / (n + 1)
        seed = float(np.sum(x[start - n + 1:start + 1])) / n
        out[start:] = _recursive(x[start:], seed, 1.0 - k, k)
    return out


# ---------------------------------------------------------------------------------------------
# moving averages and oscillators

def sma(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Simple moving average (TA-Lib SMA)."""
    x, n = _arr(x), _period(period)
    out = _nan(len(x))
    if len(x) >= n:
        out[n - 1:] = _window_sums(x, n)[0] / n
    return out


def ema(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Exponential moving average, k = 2/(n+1), seeded with the SMA of the first n (TA-Lib EMA)."""
    x, n = _arr(x), _period(period)
    return _ema_from(x, n - 1, n)


def wma(x: ArrayLike, period: int = 20) -> np.ndarray:
    """Linearly weighted moving average, newest weight n (TA-Lib WMA)."""
    x, n = _arr(x), _period(period)
    out = _nan(len(x))
    if len(x) >= n:
        w = np.arange(n, 0, -1, dtype=np.float64)  # convolve flips: newest gets weight n
        out[n - 1:] = np.convolve(x, w, mode="valid") / (n * (n + 1) / 2.0)
    return out


def rsi(close: ArrayLike, period: int = 14) -> np.ndarray:
    """Relative Strength Index, Wilder smoothing (TA-Lib RSI); 0 where nothing moved."""
    c, n = _arr(close, "close"), _period(period)
    out = _nan(len(c))
    if len(c) <= n:
        return out
    d = np.diff(c)
    gain = np.maximum(d, 0.0)
    loss = np.maximum(-d, 0.0)
    g = _recursive(gain[n - 1:], float(np.sum(gain[:n])) / n, (n - 1) / n, 1.0 / n)
    lo = _recursive(loss[n - 1:], float(np.sum(loss[:n])) / n, (n - 1) / n, 1.0 / n)
    tot = g + lo
    ok = np.abs(tot) >= _ZERO
    out[n:] = np.where(ok, 100.0 * (g / np.where(ok, tot, 1.0)), 0.0)
    return out


def macd(close: ArrayLike, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram (TA-Lib MACD); all start at index slow+signal-2."""
    c = _arr(close, "close")
    fast, slow, signal = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if slow < fast:
        fast, slow = slow, fast  # TA-Lib swaps them too
    start = slow - 1
    line = _ema_from(c, start, fast) - _ema_from(c, start, slow)
    sig = _ema_from(line, start + signal - 1, signal) if len(c) > start else _nan(len(c))
    line[: start + signal - 1] = np.nan
    return line, sig, line - sig


def stddev(x: ArrayLike, period: int = 20, nbdev: float = 1.0, *, ddof: int = 0) -> np.ndarray:
    """Rolling standard deviation times `nbdev` (TA-Lib STDDEV uses ddof=0)."""
    x, n = _arr(x), _period(period)
    return np.sqrt(_rolling_var(x, n, ddof)) * nbdev


def bollinger(close: ArrayLike, period: int = 20, nbdev: float = 2.0) -> tuple[np.ndarray, ...]:
    """Bollinger Bands: (upper, middle, lower, bandwidth, percent_b).

    Middle is the SMA, bands are +-nbdev population standard deviations (TA-Lib BBANDS).
    bandwidth = (upper - lower) / middle; percent_b = (close - lower) / (upper - lower), 0.5 where
    the bands have collapsed (flat prices: the close sits on the middle).
    """
    c, n = _arr(close, "close"), _period(period)
    mid = sma(c, n)
    dev = np.sqrt(_rolling_var(c, n)) * nbdev
    upper, lower = mid + dev, mid - dev
    width = upper - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        bandwidth = width / mid
        pct_b = np.where(width > 0, (c - lower) / np.where(width > 0, width, 1.0), 0.5)
    pct_b[np.isnan(mid)] = np.nan
    return upper, mid, lower, bandwidth, pct_b


# ---------------------------------------------------------------------------------------------
# range and trend

def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> np.ndarray:
    """True range (TA-Lib TRANGE): NaN at index 0, which has no previous close."""
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    tr = _nan(len(c))
    if len(c) > 1:
        pc = c[:-1]
        tr[1:] = np.maximum(np.maximum(h[1:] - lo[1:], np.abs(h[1:] - pc)), np.abs(lo[1:] - pc))
    return tr


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Average True Range, Wilder smoothing seeded with the mean of the first n true ranges."""
    n = _period(period)
    tr = true_range(high, low, close)
    out = _nan(len(tr))
    if len(tr) > n:
        seed = float(np.sum(tr[1:n + 1])) / n
        out[n:] = _recursive(tr[n:], seed, (n - 1) / n, 1.0 / n)
    return out


def adx(high: ArrayLike, low: ArrayLike, close: ArrayLike,
        period: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average Directional Index with +DI and -DI: (adx, plus_di, minus_di), TA-Lib conventions."""
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    n = _period(period, lo=2)
    N = len(c)
    adx_out, pdi, mdi = _nan(N), _nan(N), _nan(N)
    if N <= n:
        return adx_out, pdi, mdi
    up = np.diff(h)                       # index i-1 holds candle i
    dn = -np.diff(lo)
    plus_dm = np.where((up > 0) & (up > dn), up, 0.0)
    minus_dm = np.where((dn > 0) & (up < dn), dn, 0.0)
    tr = true_range(h, lo, c)[1:]
    a = 1.0 - 1.0 / n
    # Wilder sums: seed at candle n-1 with n-1 values, then S = S - S/n + x from candle n
    sp = _recursive(plus_dm[n - 2:], float(np.sum(plus_dm[: n - 1])), a, 1.0)[1:]
    sm = _recursive(minus_dm[n - 2:], float(np.sum(minus_dm[: n - 1])), a, 1.0)[1:]
    st = _recursive(tr[n - 2:], float(np.sum(tr[: n - 1])), a, 1.0)[1:]
    tr_ok = np.abs(st) >= _ZERO
    safe_st = np.where(tr_ok, st, 1.0)
    p = np.where(tr_ok, 100.0 * (sp / safe_st), 0.0)
    m = np.where(tr_ok, 100.0 * (sm / safe_st), 0.0)
    pdi[n:], mdi[n:] = p, m
    s = p + m
    dx_ok = tr_ok & (np.abs(s) >= _ZERO)
    dx = np.where(dx_ok, 100.0 * (np.abs(m - p) / np.where(dx_ok, s, 1.0)), 0.0)
    if N < 2 * n:
        return adx_out, pdi, mdi
    seed = float(np.sum(dx[:n])) / n        # undefined DX count as 0 in the seed, as in TA-Lib
    rest_ok = dx_ok[n:]
    if rest_ok.all():
        adx_out[2 * n - 1:] = _recursive(np.r_[0.0, dx[n:]], seed, (n - 1) / n, 1.0 / n)
    else:
        # An undefined DX holds the ADX: drop those candles, smooth the rest, carry forward.
        run = _recursive(np.r_[0.0, dx[n:][rest_ok]], seed, (n - 1) / n, 1.0 / n)
        adx_out[2 * n - 1:] = run[np.cumsum(np.r_[True, rest_ok]) - 1]
    return adx_out, pdi, mdi


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 20) -> np.ndarray:
    """Commodity Channel Index on the typical price, 0.015 constant (TA-Lib CCI)."""
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    n = _period(period, lo=2)
    out = _nan(len(c))
    if len(c) < n:
        return out
    tp = (h + lo + c) / 3.0
    win = sliding_window_view(tp, n)
    avg, md = np.empty(len(win)), np.empty(len(win))
    step = max(1, (1 << 20) // n)
    # Direct window sums (as TA-Lib) keep a flat stretch's deviation exactly 0, so CCI is 0 there.
    for i in range(0, len(win), step):  # chunks of windows bound the temporary's memory
        w = win[i:i + step]
        a = w.sum(axis=1) / n
        avg[i:i + step] = a
        md[i:i + step] = np.abs(w - a[:, None]).sum(axis=1) / n
    dev = tp[n - 1:] - avg
    ok = (dev != 0.0) & (md != 0.0)
    out[n - 1:] = np.where(ok, dev / (0.015 * np.where(ok, md, 1.0)), 0.0)
    return out


def williams_r(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> np.ndarray:
    """Williams %R in [-100, 0] (TA-Lib WILLR); 0 when the window has no range."""
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    n = _period(period, lo=2)
    hh, ll = rolling_max(h, n), rolling_min(lo, n)
    diff = (hh - ll) * -0.01
    with np.errstate(invalid="ignore"):
        ok = diff != 0.0
        out = np.where(ok, (hh - c) / np.where(ok, diff, 1.0), 0.0)
    out[np.isnan(hh)] = np.nan
    return out


def stochastic(high: ArrayLike, low: ArrayLike, close: ArrayLike, fastk_period: int = 5,
               slowk_period: int = 3, slowd_period: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic (slow %K, %D) with SMA smoothing (TA-Lib STOCH, matype 0)."""
    h, lo, c = _arr(high, "high"), _arr(low, "low"), _arr(close, "close")
    _same_len(h, lo, c, names="high, low, close")
    fk = _period(fastk_period, "fastk_period")
    sk, sd = _period(slowk_period, "slowk_period"), _period(slowd_period, "slowd_period")
    hh, ll = rolling_max(h, fk), rolling_min(lo, fk)
    diff = (hh - ll) / 100.0
    with np.errstate(invalid="ignore"):
        ok = diff != 0.0
        fast = np.where(ok, (c - ll) / np.where(ok, diff, 1.0), 0.0)
    N, start = len(c), fk - 1
    slow_k, slow_d = _nan(N), _nan(N)
    if N > start:
        slow_k[start:] = sma(fast[start:], sk)
        slow_d[start + sk - 1:] = sma(slow_k[start + sk - 1:], sd)
    slow_k[: start + sk + sd - 2] = np.nan  # TA-Lib starts both at the full lookback
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
    step[1:] = np.sign(np.diff(c)) * v[1:]
    return np.cumsum(step)


def cmf(high: ArrayLike, low: ArrayLike, close: ArrayLike, volume: ArrayLike,
        period: int = 20) -> np.ndarray:
    """Chaikin Money Flow: sum(money-flow volume, n) / sum(volume, n), in [-1, 1].

    Money-flow multiplier ((c - l) - (h - c)) / (h - l) is 0 for a candle without range; the
    result is 0 for a window without volume (no money flowed).
    """
    h, lo, c, v = _arr(high, "high"), _arr(low, "low"), _arr(close, "close"), _arr(volume, "volume")
    _same_len(h, lo, c, v, names="high, low, close, volume")
    n = _period(period)
    out = _nan(len(c))
    if len(c) < n:
        return out
    rng = h - lo
    mfm = np.where(rng > 0, ((c - lo) - (h - c)) / np.where(rng > 0, rng, 1.0), 0.0)
    flow = _window_sums(mfm * v, n)[0]
    vol = _window_sums(v, n)[0]
    out[n - 1:] = np.where(vol > 0, flow / np.where(vol > 0, vol, 1.0), 0.0)
    return out


def volume_ratio(volume: ArrayLike, period: int = 20) -> np.ndarray:
    """Volume over its SMA of `period` (current candle included); 1.0 where that SMA is 0."""
    v, n = _arr(volume, "volume"), _period(period)
    avg = sma(v, n)
    with np.errstate(invalid="ignore"):
        ok = avg > 0
        out = np.where(ok, v / np.where(ok, avg, 1.0), 1.0)
    out[np.isnan(avg)] = np.nan
    return out


def roc(x: ArrayLike, period: int = 10) -> np.ndarray:
    """Rate of change in percent: (x / x[t-n] - 1) * 100 (TA-Lib ROC); 0 where x[t-n] is 0."""
    x, n = _arr(x), _period(period)
    out = _nan(len(x))
    if len(x) > n:
        prev = x[:-n]
        ok = prev != 0.0
        out[n:] = np.where(ok, (x[n:] / np.where(ok, prev, 1.0) - 1.0) * 100.0, 0.0)
    return out


def logret_std(close: ArrayLike, period: int = 20, *, ddof: int = 1) -> np.ndarray:
    """Standard deviation of the last `period` log returns (sample std by default)."""
    c, n = _arr(close, "close"), _period(period, lo=2)
    out = _nan(len(c))
    if len(c) > n:
        r = np.diff(np.log(c))
        out[1:] = np.sqrt(_rolling_var(r, n, ddof))
    return out


# ---------------------------------------------------------------------------------------------
# the whole suite over a candle frame

DEFAULT_PERIODS: Mapping[str, int] = {
    "ATR_PERIOD": 14, "ADX_PERIOD": 14, "BB_PERIOD": 20,
}
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
    out["atr"] = atr(h, lo, c, atr_n)
    out["atr_14"] = out["atr"] if atr_n == 14 else atr(h, lo, c, 14)
    out["adx"], out["plus_di"], out["minus_di"] = adx(h, lo, c, adx_n)
    out["adx_14"] = out["adx"] if adx_n == 14 else adx(h, lo, c, 14)[0]
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
