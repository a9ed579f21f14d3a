"""The canonical candle frame and its validation.

The canonical frame: index `open_time` = candle open time in UTC milliseconds (int64), columns
open, high, low, close, volume (base coin), turnover (quote coin), all float64, sorted and
unique. `turnover` is NaN where the source did not record quote volume; every other field must
be a real number. No random or synthetic prices anywhere: gaps are reported, never filled.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import DataError
from bot.types import CANDLE_COLUMNS, interval_ms, ms_to_iso

__all__ = ['PRICE_COLUMNS', 'Gap', 'make_frame', 'validate_candles', 'find_gaps', 'merge_frames']

log = logging.getLogger(__name__)


PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones: [start_ms, end_ms) and how many are missing."""

    start_ms: int
    end_ms: int
    missing: int

    def __str__(self) -> str:
        return f"{self.missing} candle(s) missing from {ms_to_iso(self.start_ms)} to {ms_to_iso(self.end_ms)}"


# ---------------------------------------------------------------------------------------------
# the canonical frame and its validation

def make_frame(open_ms: Any, open_: Any, high: Any, low: Any, close: Any, volume: Any,
               turnover: Any = None) -> pd.DataFrame:
    """Build a canonical frame from columns (any order of rows; it is sorted, not deduplicated)."""
    idx = np.asarray(open_ms, dtype=np.int64)
    n = len(idx)
    df = pd.DataFrame({
        "open": np.asarray(open_, dtype=np.float64), "high": np.asarray(high, dtype=np.float64),
        "low": np.asarray(low, dtype=np.float64), "close": np.asarray(close, dtype=np.float64),
        "volume": np.asarray(volume, dtype=np.float64),
        "turnover": np.full(n, np.nan) if turnover is None else np.asarray(turnover, dtype=np.float64),
    }, index=pd.Index(idx, name="open_time"))
    return df.sort_index(kind="stable")


def _first_bad(mask: np.ndarray, index: np.ndarray) -> int | None:
    pos = np.flatnonzero(mask)
    return int(index[pos[0]]) if len(pos) else None


def validate_candles(df: pd.DataFrame, symbol: str, *, now_ms: int | None = None,
                     interval: str | None = None) -> None:
    """Raise `DataError` naming symbol, timestamp and field for the first rule a batch breaks.

    Rules: the canonical columns exist; index is int ms, strictly increasing (no duplicates, no
    disorder); no NaN in prices or volume; prices > 0; volume >= 0; high >= max(open, close);
    low <= min(open, close); high >= low; no candle opens in the future (or, with `interval`,
    closes after `now_ms`).
    """
    missing = [c for c in CANDLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{symbol}: candles lack column(s) {', '.join(missing)}")
    if len(df) == 0:
        return
    idx = np.asarray(df.index, dtype=np.int64)
    d = np.diff(idx)
    if len(d):
        dup = _first_bad(d == 0, idx[1:])
        if dup is not None:
            raise DataError(f"{symbol}: duplicate timestamp {ms_to_iso(dup)} ({dup}) in field open_time")
        back = _first_bad(d < 0, idx[1:])
        if back is not None:
            raise DataError(f"{symbol}: timestamp {ms_to_iso(back)} ({back}) is out of order in field open_time")
    cols = {c: df[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS}
    for c in ("open", "high", "low", "close", "volume"):
        bad = _first_bad(~np.isfinite(cols[c]), idx)
        if bad is not None:
            raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a NaN/inf in field {c}")
    for c in PRICE_COLUMNS:
        bad = _first_bad(cols[c] <= 0, idx)
        if bad is not None:
            raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a non-positive price in field {c}")
    bad = _first_bad(cols["volume"] < 0, idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a negative value in field volume")
    bad = _first_bad(cols["turnover"] < 0, idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a negative value in field turnover")
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    bad = _first_bad(h < np.maximum(o, c), idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has field high below max(open, close)")
    bad = _first_bad(lo > np.minimum(o, c), idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has field low above min(open, close)")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    limit = now - (interval_ms(interval) if interval else 0)
    bad = _first_bad(idx > limit, idx)
    if bad is not None:
        what = "closes" if interval else "opens"
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) {what} in the future in field open_time")


def find_gaps(df: pd.DataFrame, interval: str) -> list[Gap]:
    """Missing candles inside the frame's span (none are invented)."""
    if len(df) < 2 or str(interval).upper() == "M":
        return []
    step = interval_ms(interval)
    idx = np.asarray(df.index, dtype=np.int64)
    d = np.diff(idx)
    where = np.flatnonzero(d > step)
    return [Gap(int(idx[i]) + step, int(idx[i + 1]), int(d[i] // step) - 1) for i in where]


def merge_frames(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two canonical frames; on a shared timestamp the newer batch wins."""
    if len(old) == 0:
        return new.sort_index()
    if len(new) == 0:
        return old
    both = pd.concat([old, new])
    both = both[~both.index.duplicated(keep="last")]
    return both.sort_index(kind="stable")


