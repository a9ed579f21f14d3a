"""Higher timeframes from the candles we already have, without look-ahead.

The analyst trades 4 h candles confirmed by the daily trend, but the cache (and the only hourly
seed series) holds hourly candles. `resample` builds the higher timeframe from them and keeps
only buckets that have *closed*: a 4 h or daily candle appears only once source data reaching its
end exists. So a daily candle is never visible at 15:00 of its own day, and changing candles
after a moment `t` cannot change anything computed at `t`.

Buckets are aligned like Bybit's: minute intervals and days to UTC epoch multiples, weeks to
Monday 00:00 UTC. Month candles have no fixed length and are refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bot.errors import DataError
from bot.types import interval_ms

__all__ = ["resample", "bucket_start", "closed_until", "ratio"]

# 1970-01-01 was a Thursday; Bybit's weekly candles open on Monday, 4 days later.
_WEEK_OFFSET_MS = 4 * 86_400_000
_COLUMNS = ("open", "high", "low", "close", "volume", "turnover")


def _check_interval(interval: str) -> str:
    key = str(interval).upper() if str(interval).upper() in ("D", "W", "M") else str(interval)
    if key == "M":
        raise DataError("interval 'M' (months) cannot be resampled: months have no fixed length; "
                        "allowed: minute intervals, D, W")
    interval_ms(key)  # raises DataError naming the bad interval
    return key


def bucket_start(open_ms: np.ndarray | int, interval: str) -> np.ndarray | int:
    """Open time (ms) of the `interval` bucket that each source open time falls in."""
    key = _check_interval(interval)
    size = interval_ms(key)
    offset = _WEEK_OFFSET_MS if key == "W" else 0
    t = np.asarray(open_ms, dtype=np.int64)
    out = (t - offset) // size * size + offset
    return int(out) if out.ndim == 0 else out


def ratio(source_interval: str, target_interval: str) -> int:
    """How many source candles make one target candle (e.g. 60 -> 240: 4)."""
    src, dst = interval_ms(_check_interval(source_interval)), interval_ms(_check_interval(target_interval))
    if dst < src or dst % src:
        raise DataError(f"cannot build {target_interval} candles from {source_interval} candles: "
                        f"the target must be a whole multiple of the source")
    return dst // src


def closed_until(frame: pd.DataFrame, source_interval: str) -> int:
    """The moment (ms) up to which `frame` proves time has passed: close of its newest candle."""
    if len(frame) == 0:
        return 0
    return int(frame.index[-1]) + interval_ms(_check_interval(source_interval))


def resample(frame: pd.DataFrame, source_interval: str, target_interval: str, *,
             as_of_ms: int | None = None, include_partial: bool = False) -> pd.DataFrame:
    """Aggregate canonical `frame` (source candles) into closed `target_interval` candles.

    - `as_of_ms`: use only source candles that had closed by then (close time <= as_of_ms).
    - `include_partial`: also return the still-open last bucket (for charts; never for signals).

    A bucket is closed when the source data reaches its end: the newest source candle closes at
    or after the bucket's end. Missing source candles inside a bucket (exchange gaps) do not
    keep it open forever; the bucket is built from the candles it has.
    """
    ratio(source_interval, target_interval)
    src_ms = interval_ms(_check_interval(source_interval))
    if as_of_ms is not None and len(frame):
        idx = frame.index.to_numpy(dtype=np.int64)
        frame = frame.iloc[: int(np.searchsorted(idx, int(as_of_ms) - src_ms, side="right"))]
    if len(frame) == 0:
        return frame.iloc[:0].copy()
    open_ms = frame.index.to_numpy(dtype=np.int64)
    buckets = bucket_start(open_ms, target_interval)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    cols = {c: frame[c].to_numpy(dtype=np.float64) for c in _COLUMNS if c in frame.columns}
    out = {
        "open": cols["open"][starts],
        "high": np.maximum.reduceat(cols["high"], starts),
        "low": np.minimum.reduceat(cols["low"], starts),
        "close": cols["close"][np.r_[starts[1:] - 1, len(open_ms) - 1]],
        "volume": np.add.reduceat(cols["volume"], starts),
    }
    if "turnover" in cols:
        # NaN turnover (sources that do not report it) stays NaN rather than turning into 0.
        out["turnover"] = np.add.reduceat(cols["turnover"], starts)
    result = pd.DataFrame(out, index=pd.Index(buckets[starts], name=frame.index.name or "open_time"))
    if not include_partial:
        end_of_data = int(open_ms[-1]) + src_ms
        last_end = int(result.index[-1]) + interval_ms(_check_interval(target_interval))
        if end_of_data < last_end:
            result = result.iloc[:-1]
    return result
