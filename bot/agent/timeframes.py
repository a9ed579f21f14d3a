"""Multi-timeframe state: 4 h and daily context appended to the 1 h market features.

No look-ahead: a higher-timeframe candle enters an hourly row's state only once it is complete,
i.e. once the row's own candle closes at or after the end of that higher candle. The features
of the last complete higher candle are carried forward until the next one completes.

Per higher timeframe (4 h, 1 d): log returns over the last 1, 3 and 10 of its candles, the
log distance of its close from its EMA 20 and EMA 50, its RSI 14 as (RSI - 50) / 50, and the
log distance of the current hourly close from its last close.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bot.agent.environment import MarketData

__all__ = ["TIMEFRAMES", "timeframe_feature_names", "timeframe_features", "with_timeframes"]

_HOUR_MS = 3_600_000
TIMEFRAMES = (("4h", 4 * _HOUR_MS), ("1d", 24 * _HOUR_MS))
_PER_FRAME = ("ret1", "ret3", "ret10", "ema20", "ema50", "rsi14", "last")


def timeframe_feature_names() -> list[str]:
    return [f"tf{label}_{n}" for label, _ in TIMEFRAMES for n in _PER_FRAME]


def timeframe_features(frame: pd.DataFrame) -> np.ndarray:
    """(rows, 14) float64: the context of every row of an hourly `frame` (NaN in the warm-up)."""
    from bot.analysis import indicators as ind

    t = frame.index.to_numpy(np.int64)
    close = frame["close"].to_numpy(np.float64)
    step = int(np.median(np.diff(t))) if len(t) > 1 else _HOUR_MS
    cols = []
    for _, ms in TIMEFRAMES:
        bucket = t // ms
        uniq, last_row = np.unique(bucket[::-1], return_index=True)     # last row of each bucket
        last_row = len(t) - 1 - last_row
        htf = close[last_row]                                           # the higher candles' closes
        with np.errstate(divide="ignore", invalid="ignore"):
            lc = np.log(htf)
            feats = [np.concatenate([np.full(k, np.nan), lc[k:] - lc[:-k]]) for k in (1, 3, 10)]
            feats += [lc - np.log(ind.ema(htf, 20)), lc - np.log(ind.ema(htf, 50)),
                      (np.asarray(ind.rsi(htf, 14)) - 50.0) / 50.0]
        table = np.stack(feats, axis=1)
        # the last higher candle complete at each row: its own, if this row closes it, else the one before
        done = np.where((t + step) % ms == 0, bucket, bucket - 1)
        pos = np.searchsorted(uniq, done, side="right") - 1
        ok = pos >= 0
        rows = np.full((len(t), len(_PER_FRAME)), np.nan)
        rows[ok, :6] = table[pos[ok]]
        with np.errstate(divide="ignore", invalid="ignore"):
            rows[ok, 6] = np.log(close[ok] / htf[pos[ok]])
        cols.append(rows)
    return np.concatenate(cols, axis=1)


def with_timeframes(frames: pd.DataFrame | Sequence[pd.DataFrame], *, settings: Any) -> MarketData:
    """`MarketData.from_frames` with the 4 h and daily context appended to every row; each
    frame's usable rows start where both its features and its context are complete."""
    frames = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
    base = MarketData.from_frames(frames, settings=settings)
    extra = np.concatenate([timeframe_features(f) for f in frames])
    segs, offset = [], 0
    for f, (first, last) in zip(frames, base.segments, strict=True):
        part = extra[offset: offset + len(f)]
        complete = np.flatnonzero(np.isfinite(part).all(axis=1)) + offset
        start = max(int(first), int(complete[0]) if len(complete) else int(last))
        if start >= last - 1:
            raise ValueError(f"frame of {len(f)} candles is shorter than the daily context's warm-up")
        segs.append((start, last))
        offset += len(f)
    feats = np.concatenate([base.features, np.nan_to_num(extra, nan=0.0, posinf=0.0, neginf=0.0)
                            .astype(np.float32)], axis=1)
    return dataclasses.replace(base, features=feats, segments=np.asarray(segs, np.int64),
                               feature_names=base.feature_names + tuple(timeframe_feature_names()))
