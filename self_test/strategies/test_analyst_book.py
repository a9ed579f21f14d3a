"""The analyst's book closes higher-timeframe candles exactly as resample does, gaps included."""

from __future__ import annotations

import numpy as np

from bot.market.timeframes import resample
from bot.strategies.analyst_book import CandleBuckets

HOUR = 3_600_000


def _closed(frame, interval):
    buckets = CandleBuckets(interval, HOUR)
    rows = []
    for t, (o, h, lo, c, v) in zip(frame.index.tolist(), frame[["open", "high", "low", "close", "volume"]]
                                   .to_numpy().tolist(), strict=True):
        rows.extend(buckets.add(t, o, h, lo, c, v))
    return rows


def test_closed_buckets_equal_resample_on_real_candles_with_gaps(btc_hourly):
    frame = btc_hourly.iloc[:5000]
    frame = frame.drop(frame.index[[100, 101, 102, 103, 2000, 3001]])   # a whole 4 h bucket and odd hours
    for interval in ("240", "D", "W"):
        got = _closed(frame, interval)
        want = resample(frame, "60", interval)
        assert [r[0] for r in got] == want.index.tolist(), interval
        arr = np.array([r[1:] for r in got])
        assert np.array_equal(arr[:, :4], want[["open", "high", "low", "close"]].to_numpy()), interval
        assert np.allclose(arr[:, 4], want["volume"].to_numpy(), rtol=1e-12), interval
