"""What the agent and the risk manager see of the market: state vector, regime, support/resistance.

Everything here is causal: the value at candle t uses only candles 0..t, so it can be computed
the same way in training, backtest and the live loop (tests shift the future to prove it).

- `market_features(frame, window=32)` -> (T, M) array of scale-free features per candle, NaN
  rows for the first `warmup_length(window)` candles; names from `market_feature_names(window)`.
- `position_features(position, upnl_pct, held)` -> (..., N_POSITION_FEATURES), vectorised.
- `state_vector(market_row, position, upnl_pct, held)` -> the agent's input, concatenated.
- `market_features_batch(frames, ...)` -> one array per symbol (or stacked (S, T, M)).
- `latest_market_features(frame)` -> the newest row from a bounded tail of
  `feature_history(window)` candles (live loop), equal to the full-history row to 1e-7.
- `FeatureStream(frame)` -> the newest row carried forward candle by candle (`update`), in
  O(window) per candle, equal to the full computation over everything it has seen.
- `regime(frame)` / `regime_codes(frame)` -> trending / choppy / volatile per candle; the rule
  itself is `classify_regime`, which the engine's streaming indicators apply candle by candle.
- `support_resistance(frame)` -> list of `Level(price, touches, kind, last_index)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis import indicators as ind

__all__ = [
    "market_features", "market_feature_names", "warmup_length", "market_features_batch",
    "feature_history", "latest_market_features",
    "position_features", "position_feature_names", "state_vector", "N_POSITION_FEATURES",
    "regime", "regime_codes", "REGIMES", "TRENDING", "CHOPPY", "VOLATILE", "WARMUP",
    "classify_regime", "regime_code", "regime_thresholds", "regime_label", "percentile_linear", "sorted_percentile",
    "support_resistance", "nearest_levels", "Level", "VOL_PERIOD", "plot_regime",
]

VOL_PERIOD = 100        # candles of log returns in the trailing volatility that scales returns
RET_CLIP = 5.0          # normalised returns beyond +-5 sigma are clipped (flash wicks, gaps)
DIST_CLIP = 10.0        # distance to an EMA beyond +-10 ATR is clipped
VOLUME_RATIO_CLIP = 10.0
HELD_HALF_LIFE = 24.0   # candles held at which the held-time feature reaches 0.5
UPNL_SCALE_PCT = 5.0    # unrealised P&L feature = tanh(upnl_pct / 5)

_INDICATOR_FEATURES = ("rsi", "macd_hist_pct", "bb_percent_b", "atr_pct", "adx", "cmf",
                       "volume_ratio", "dist_ema_21", "dist_ema_50", "dist_ema_200")


def _periods(settings: Any) -> tuple[int, int, int, float]:
    g = ind._setting
    return (int(g(settings, "ATR_PERIOD", 14)), int(g(settings, "ADX_PERIOD", 14)),
            int(g(settings, "BB_PERIOD", 20)), float(g(settings, "BB_STD", 2.0)))


def warmup_length(window: int = 32, settings: Any = None) -> int:
    """Candles before the first complete feature row: rows [0, warmup) of `market_features` are NaN."""
    window = ind._period(window, "window")
    atr_n, adx_n, bb_n, _ = _periods(settings)
    return max(200 - 1, VOL_PERIOD + window - 1, 2 * adx_n - 1, atr_n, bb_n - 1, 26 + 9 - 2)


def market_feature_names(window: int = 32) -> list[str]:
    """Column names of `market_features`: returns oldest first (`ret_lag{window-1}` .. `ret_lag0`)."""
    window = ind._period(window, "window")
    return [f"ret_lag{k}" for k in range(window - 1, -1, -1)] + list(_INDICATOR_FEATURES)


def market_features(frame: Any, *, window: int = 32, settings: Any = None,
                    dtype: Any = np.float32) -> np.ndarray:
    """Scale-free features per candle, shape (T, window + 10); rows before the warm-up are NaN.

    Columns (see `market_feature_names`): `window` log returns divided by the trailing
    `VOL_PERIOD`-candle standard deviation of log returns, clipped to +-5; RSI/100; MACD
    histogram / close in percent; Bollinger %b (clipped to [-1, 2]); ATR / close in percent;
    ADX/100; Chaikin money flow; volume ratio (clipped to 10); distance of the close to EMA
    21/50/200 in ATRs (clipped to +-10). Periods for ATR/ADX/Bollinger come from `settings`.
    """
    window = ind._period(window, "window")
    cols = ind._columns(frame)
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    if not np.all(c > 0):
        raise ValueError("close prices must be positive to take log returns")
    atr_n, adx_n, bb_n, bb_k = _periods(settings)
    T = len(c)
    out = np.full((T, window + len(_INDICATOR_FEATURES)), np.nan, dtype=np.float64)
    start = warmup_length(window, settings)
    if T <= start:
        return out.astype(dtype, copy=False)

    r = np.full(T, np.nan)
    r[1:] = np.diff(np.log(c))
    sigma = ind.logret_std(c, VOL_PERIOD)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sigma > 0, r / np.where(sigma > 0, sigma, 1.0), 0.0)
    z = np.clip(z, -RET_CLIP, RET_CLIP)
    # row t holds z[t-window+1 .. t]
    out[window - 1:, :window] = np.lib.stride_tricks.sliding_window_view(z, window)

    atr = ind.atr(h, lo, c, atr_n)
    _, _, hist = ind.macd(c)
    _, _, _, _, pct_b = ind.bollinger(c, bb_n, bb_k)
    adx, _, _ = ind.adx(h, lo, c, adx_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe_atr = np.where(atr > 0, atr, np.nan)
        cols_ind = [
            ind.rsi(c, 14) / 100.0,
            100.0 * hist / c,
            np.clip(pct_b, -1.0, 2.0),
            100.0 * atr / c,
            adx / 100.0,
            ind.cmf(h, lo, c, v, 20),
            np.clip(ind.volume_ratio(v, 20), 0.0, VOLUME_RATIO_CLIP),
        ]
        for n in (21, 50, 200):
            d = (c - ind.ema(c, n)) / safe_atr
            cols_ind.append(np.clip(np.where(atr == 0, 0.0, d), -DIST_CLIP, DIST_CLIP))
    out[:, window:] = np.column_stack(cols_ind)
    out[:start] = np.nan
    return out.astype(dtype, copy=False)


def feature_history(window: int = 32, settings: Any = None, *, tol: float = 1e-10) -> int:
    """Candles a tail needs so the last row of `market_features` on it equals the full-history
    row to 1e-7 (float32 resolution): the indicators' `required_history` at relative `tol`
    (1e-10, because distances to an EMA in ATRs magnify its relative error by price / ATR, up
    to ~1000), plus the return window and its volatility window."""
    return ind.required_history(settings, tol=tol) + VOL_PERIOD + ind._period(window, "window")


def latest_market_features(frame: Any, *, window: int = 32, settings: Any = None,
                           dtype: Any = np.float32) -> np.ndarray:
    """The market features of the newest candle, computed on a bounded tail (live loop)."""
    n = feature_history(window, settings)
    tail = frame.iloc[-n:] if hasattr(frame, "iloc") else {k: np.asarray(v)[-n:]
                                                           for k, v in frame.items()}
    return market_features(tail, window=window, settings=settings, dtype=dtype)[-1]


def market_features_batch(frames: Sequence[Any], *, window: int = 32, settings: Any = None,
                          dtype: Any = np.float32, stack: bool = False) -> list[np.ndarray] | np.ndarray:
    """`market_features` for several symbols: a list of (T_i, M) arrays, or (S, T, M) if `stack`.

    Stacking needs equal lengths (align the frames on time first); the error names the lengths.
    """
    feats = [market_features(f, window=window, settings=settings, dtype=dtype) for f in frames]
    if not stack:
        return feats
    lengths = sorted({len(f) for f in feats})
    if len(lengths) > 1:
        raise ValueError(f"cannot stack features of frames with different lengths {lengths}; "
                         "align the symbols on time first or use stack=False")
    return np.stack(feats)


# ---------------------------------------------------------------------------------------------
# position state

N_POSITION_FEATURES = 5


def position_feature_names() -> list[str]:
    return ["pos_flat", "pos_long", "pos_short", "upnl", "held"]


def position_features(position: Any, unrealised_pnl_pct: Any = 0.0, candles_held: Any = 0, *,
                      dtype: Any = np.float32) -> np.ndarray:
    """Position state, shape (..., 5): one-hot flat/long/short, tanh(upnl% / 5), held/(held + 24).

    `position` is -1 (short), 0 (flat) or 1 (long), a scalar or an array (a batch of envs);
    `unrealised_pnl_pct` is in percent of the entry value (2.0 = +2 %); `candles_held` >= 0.
    """
    pos = np.asarray(position)
    valid = (pos == 0) | (pos == 1) | (pos == -1)   # np.isin costs 4x more; this runs every env step
    if not valid.all():
        bad = np.unique(pos[~valid])[:5]
        raise ValueError(f"position must be -1 (short), 0 (flat) or 1 (long), got {bad.tolist()}")
    upnl = np.asarray(unrealised_pnl_pct, dtype=np.float64)
    held = np.asarray(candles_held, dtype=np.float64)
    if np.any(held < 0):
        raise ValueError("candles_held must be >= 0")
    pos, upnl, held = np.broadcast_arrays(pos, upnl, held)
    out = np.empty(pos.shape + (N_POSITION_FEATURES,), dtype=np.float64)
    out[..., 0] = pos == 0
    out[..., 1] = pos == 1
    out[..., 2] = pos == -1
    out[..., 3] = np.tanh(np.nan_to_num(upnl) / UPNL_SCALE_PCT)
    out[..., 4] = held / (held + HELD_HALF_LIFE)
    return out.astype(dtype, copy=False)


def state_vector(market_row: Any, position: Any, upnl_pct: Any = 0.0, held: Any = 0, *,
                 dtype: Any = np.float32) -> np.ndarray:
    """The agent's input: market features (M,) or (B, M) followed by the position features."""
    m = np.asarray(market_row)
    p = position_features(position, upnl_pct, held, dtype=dtype)
    if m.ndim == 2 and p.ndim == 1:
        p = np.broadcast_to(p, (m.shape[0], N_POSITION_FEATURES))
    if m.shape[:-1] != p.shape[:-1]:
        raise ValueError(f"market rows {m.shape} and positions {p.shape[:-1]} disagree on batch size")
    return np.concatenate([m.astype(dtype, copy=False), p], axis=-1)


# ---------------------------------------------------------------------------------------------
# market regime

REGIMES = ("trending", "choppy", "volatile")
TRENDING, CHOPPY, VOLATILE = 0, 1, 2
WARMUP = -1  # code of candles before ADX and the bandwidth percentile exist


def regime_thresholds(settings: Any = None, *, adx_threshold: float | None = None,
                      bb_percentile: float | None = None, lookback: int | None = None) -> tuple[float, float, int]:
    """(ADX threshold, bandwidth percentile, lookback in candles) of the regime rule: the options
    given, else `settings` (ADX_TREND_THRESHOLD, BB_VOLATILE_PERCENTILE, REGIME_LOOKBACK), else
    the seed defaults 25 / 90 / 100."""
    g = ind._setting
    thr = float(adx_threshold if adx_threshold is not None else g(settings, "ADX_TREND_THRESHOLD", 25.0))
    pct = float(bb_percentile if bb_percentile is not None else g(settings, "BB_VOLATILE_PERCENTILE", 90.0))
    look = int(lookback if lookback is not None else g(settings, "REGIME_LOOKBACK", 100))
    if not 0 < pct < 100:
        raise ValueError(f"bb_percentile must be in (0, 100), got {pct}")
    ind._period(look, "lookback", lo=2)
    return thr, pct, look


def classify_regime(adx: Any, bandwidth: Any, bandwidth_percentile: Any, adx_threshold: float) -> np.ndarray:
    """The regime rule, on numbers or arrays: int8 codes TRENDING 0, CHOPPY 1, VOLATILE 2, WARMUP -1.

    Volatile: Bollinger `bandwidth` above `bandwidth_percentile` (its rolling percentile over
    the lookback). Trending: `adx` above `adx_threshold`. Otherwise choppy. Volatile wins over
    trending: a crash has a high ADX too, and the risk manager should size it as volatile.
    Warm-up where the ADX or the percentile is not defined (NaN)."""
    adx = np.asarray(adx, dtype=np.float64)
    bw = np.asarray(bandwidth, dtype=np.float64)
    q = np.asarray(bandwidth_percentile, dtype=np.float64)
    codes = np.where(bw > q, VOLATILE, np.where(adx > adx_threshold, TRENDING, CHOPPY))
    return np.where(np.isnan(adx) | np.isnan(q), WARMUP, codes).astype(np.int8)


def regime_code(adx: float, bandwidth: float, bandwidth_percentile: float, adx_threshold: float) -> int:
    """`classify_regime` on plain floats (one candle, no arrays): the same rule and codes."""
    if adx != adx or bandwidth_percentile != bandwidth_percentile:
        return WARMUP
    return VOLATILE if bandwidth > bandwidth_percentile else TRENDING if adx > adx_threshold else CHOPPY


def regime_label(code: int) -> str:
    """The regime name the risk manager sizes by: a candle still warming up counts as choppy."""
    return REGIMES[code] if code >= 0 else REGIMES[CHOPPY]


def percentile_linear(values: np.ndarray, q: float) -> float:
    """numpy's default ('linear') percentile of a small window, without np.percentile's overhead
    (a sort and one interpolation); equal to the rolling quantile `regime_codes` takes."""
    return sorted_percentile(np.sort(values), q)


def sorted_percentile(a: Any, q: float) -> float:
    """`percentile_linear` of values already sorted (an array or a list kept sorted)."""
    k = (len(a) - 1) * q / 100.0
    f = int(math.floor(k))
    if f + 1 >= len(a):
        return float(a[-1])
    return float(a[f] + (a[f + 1] - a[f]) * (k - f))


def rolling_sorted_percentile(values: Any, n: int, q: float) -> np.ndarray:
    """`sorted_percentile` of every window of `n` values (row i: the window ending at values[i +
    n - 1]), NaN for a window holding a NaN: each window sorted, then the same arithmetic in the
    same order, so every value is `sorted_percentile`'s bit for bit (what a `SortedWindow` of
    `n` gives as it fills)."""
    v = np.asarray(values, dtype=np.float64)
    if n < 1 or len(v) < n:
        return np.empty(0)
    a = np.sort(np.lib.stride_tricks.sliding_window_view(v, n), axis=1)
    k = (n - 1) * q / 100.0
    f = int(math.floor(k))
    out: np.ndarray = a[:, -1].copy() if f + 1 >= n else a[:, f] + (a[:, f + 1] - a[:, f]) * (k - f)
    nan = np.isnan(v)
    if nan.any():
        counts = np.cumsum(nan)
        out[(counts[n - 1:] - np.concatenate(([0], counts[:-n]))) > 0] = np.nan
    return out


def regime_codes(frame: Any, *, adx_threshold: float | None = None,
                 bb_percentile: float | None = None, lookback: int | None = None,
                 settings: Any = None, indicators: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Regime per candle as int8 codes (`classify_regime`): TRENDING 0, CHOPPY 1, VOLATILE 2, WARMUP -1.

    The bandwidth percentile is its rolling `bb_percentile` over the last `lookback` candles
    (current included, linear interpolation). Options not given come from `settings`
    (`regime_thresholds`). `indicators` may pass a `compute_all` result to skip recomputing.
    """
    thr, pct, look = regime_thresholds(settings, adx_threshold=adx_threshold, bb_percentile=bb_percentile,
                                       lookback=lookback)
    if indicators is not None and "adx" in indicators and "bb_bandwidth" in indicators:
        adx, bw = np.asarray(indicators["adx"]), np.asarray(indicators["bb_bandwidth"])
    else:
        cols = ind._columns(frame, ("high", "low", "close"))
        atr_n, adx_n, bb_n, bb_k = _periods(settings)
        adx = ind.adx(cols["high"], cols["low"], cols["close"], adx_n)[0]
        bw = ind.bollinger(cols["close"], bb_n, bb_k)[3]
    q = pd.Series(bw).rolling(look, min_periods=look).quantile(pct / 100.0).to_numpy()
    return classify_regime(adx, bw, q, thr)


def regime(frame: Any, **options: Any) -> np.ndarray:
    """Regime per candle as strings ('trending' / 'choppy' / 'volatile', 'warmup' before data).

    Same options as `regime_codes`.
    """
    names = np.array(REGIMES + ("warmup",))
    return names[regime_codes(frame, **options)]  # code -1 picks 'warmup', the last name


# ---------------------------------------------------------------------------------------------
# support and resistance

@dataclass(frozen=True)
class Level:
    """A price level where pivots clustered: support below the last close, resistance above."""

    price: float       # mean price of the pivots in the cluster
    touches: int       # pivots (highs and lows) in the cluster
    kind: str          # 'support' or 'resistance', relative to the last close
    last_index: int    # position in the frame of the cluster's latest pivot


def _pivots(x: np.ndarray, span: int, *, high: bool) -> np.ndarray:
    """Indices i with x[i] the extreme of x[i-span .. i+span]; only confirmed pivots (i+span < T)."""
    T = len(x)
    if T < 2 * span + 1:
        return np.empty(0, dtype=np.int64)
    f = ind.rolling_max if high else ind.rolling_min
    ext = f(x, 2 * span + 1)[2 * span:]          # extreme of the window centred on span..T-span-1
    centre = x[span:T - span]
    return np.flatnonzero(centre == ext) + span


def support_resistance(frame: Any, *, atr: Any = None, tolerance_atr: float | None = None,
                       pivot_span: int = 5, lookback: int | None = None, min_touches: int = 1,
                       settings: Any = None) -> list[Level]:
    """Support and resistance levels from pivot highs and lows clustered by price, sorted by price.

    A pivot high is a high that is the highest of `pivot_span` candles on each side, so a
    pivot is only known `pivot_span` candles after it happened: the last `pivot_span` candles
    given can never be pivots, and nothing after the frame is looked at. Pivots (highs and lows
    together; a broken resistance becomes support) are sorted by price and grouped while each
    stays within `tolerance_atr` x ATR of its group's mean. ATR is `atr` (a number, or an
    array whose last finite value is used) or the frame's ATR(ATR_PERIOD) at its last candle.
    `lookback` keeps only the last that many candles.
    """
    tol_atr = float(tolerance_atr if tolerance_atr is not None
                    else ind._setting(settings, "SR_TOLERANCE_ATR", 0.5))
    span = ind._period(pivot_span, "pivot_span")
    cols = ind._columns(frame, ("high", "low", "close"))
    h, lo, c = cols["high"], cols["low"], cols["close"]
    if atr is None:
        atr = ind.atr(h, lo, c, int(ind._setting(settings, "ATR_PERIOD", 14)))
    a = np.asarray(atr, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if len(a) == 0 or len(c) == 0:
        return []
    tol = tol_atr * float(a[-1])
    first = 0 if lookback is None else max(0, len(c) - ind._period(lookback, "lookback"))
    ph = _pivots(h[first:], span, high=True)
    pl = _pivots(lo[first:], span, high=False)
    idx = np.concatenate([ph, pl])
    prices = np.concatenate([h[first:][ph], lo[first:][pl]])
    order = np.argsort(prices, kind="stable")
    prices, idx = prices[order], idx[order] + first
    last_close = float(c[-1])
    levels: list[Level] = []
    group_p: list[float] = []
    group_i: list[int] = []

    def close_group() -> None:
        if len(group_p) >= min_touches:
            p = float(np.mean(group_p))
            levels.append(Level(p, len(group_p), "support" if p < last_close else "resistance",
                                int(max(group_i))))

    for p, i in zip(prices.tolist(), idx.tolist(), strict=True):  # one pass over pivots, not candles
        if group_p and p - float(np.mean(group_p)) > tol:
            close_group()
            group_p, group_i = [], []
        group_p.append(p)
        group_i.append(i)
    if group_p:
        close_group()
    return levels


def nearest_levels(levels: Sequence[Level], price: float) -> tuple[Level | None, Level | None]:
    """The closest level below `price` and the closest above it (None where there is none)."""
    below = [lv for lv in levels if lv.price < price]
    above = [lv for lv in levels if lv.price > price]
    return (max(below, key=lambda lv: lv.price) if below else None,
            min(above, key=lambda lv: lv.price) if above else None)


def plot_regime(frame: Any, path: str, *, last: int = 1500, levels: int = 8,
                settings: Any = None, title: str = "") -> str:
    """Save a chart of the close shaded by regime, with the `levels` most-touched
    support/resistance levels of the same candles; returns the path. For eyeballing the
    thresholds; needs matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    view = frame.iloc[-last:] if hasattr(frame, "iloc") else {k: np.asarray(v)[-last:]
                                                              for k, v in frame.items()}
    codes = regime_codes(frame, settings=settings)[-last:]
    close = np.asarray(view["close"], dtype=np.float64)
    x = np.arange(len(close))
    colours = {TRENDING: "tab:green", CHOPPY: "tab:gray", VOLATILE: "tab:red", WARMUP: "white"}
    fig, ax = plt.subplots(figsize=(12, 5))
    ax.plot(x, close, color="black", linewidth=0.7, label="close")
    for code, colour in colours.items():
        if code == WARMUP:
            continue
        mask = codes == code
        ax.fill_between(x, close.min(), close.max(), where=mask, color=colour, alpha=0.15,
                        step="mid", linewidth=0, label=REGIMES[code])
    found = support_resistance(view, settings=settings)
    for lv in sorted(found, key=lambda lv: -lv.touches)[:levels]:
        colour = "tab:blue" if lv.kind == "support" else "tab:orange"
        ax.axhline(lv.price, color=colour, linewidth=1.0, alpha=0.8)
        ax.annotate(f"{lv.kind} {lv.price:,.0f} ({lv.touches} touches)", (len(close), lv.price),
                    xytext=(3, 0), textcoords="offset points", fontsize=7, color=colour,
                    va="center")
    ax.set_xlabel("candles (oldest left)")
    ax.set_ylabel("close")
    ax.set_xlim(0, len(close) * 1.2)       # room for the level labels
    ax.set_title(title or f"regime (shaded) and the {levels} most-touched support/resistance levels")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
