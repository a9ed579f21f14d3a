"""Higher timeframes from the real hourly seed: closed buckets only, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.errors import DataError
from bot.market.timeframes import bucket_start, ratio, resample

HOUR = 3_600_000
DAY = 24 * HOUR


def test_daily_from_hourly_matches_the_recorded_daily_candles(btc_hourly, btc_daily):
    daily = resample(btc_hourly, "60", "D")
    joined = daily.join(btc_daily.add_suffix("_rec"), how="inner")
    assert len(joined) > 800
    # Same exchange, same UTC days: closes agree for nearly every day.
    same = np.isclose(joined["close"], joined["close_rec"], rtol=1e-6)
    assert same.mean() > 0.9
    assert (daily["high"] >= daily[["open", "close"]].max(axis=1)).all()
    assert (daily["low"] <= daily[["open", "close"]].min(axis=1)).all()


def test_4h_buckets_aggregate_their_four_hours(btc_hourly):
    four = resample(btc_hourly, "60", "240")
    t = int(four.index[10])
    hours = btc_hourly.loc[t:t + 3 * HOUR]
    assert len(hours) == 4
    row = four.loc[t]
    assert row["open"] == hours["open"].iloc[0]
    assert row["close"] == hours["close"].iloc[-1]
    assert row["high"] == hours["high"].max()
    assert row["low"] == hours["low"].min()
    assert row["volume"] == pytest.approx(hours["volume"].sum())
    assert (four.index.to_numpy() % (4 * HOUR) == 0).all()


def test_daily_candle_is_used_only_once_closed(btc_hourly):
    day = int(bucket_start(int(btc_hourly.index[5000]), "D"))
    # Up to 22:00 of that day (the 23:00 candle is not there yet): the day is still open.
    partial = btc_hourly.loc[: day + 22 * HOUR]
    assert resample(partial, "60", "D").index[-1] == day - DAY
    # With the 23:00 candle (closing at midnight) the day has closed and appears.
    full = btc_hourly.loc[: day + 23 * HOUR]
    assert resample(full, "60", "D").index[-1] == day
    # include_partial shows the open bucket, for charts only.
    assert resample(partial, "60", "D", include_partial=True).index[-1] == day


def test_changing_candles_after_t_changes_nothing_at_t(btc_hourly):
    t = int(btc_hourly.index[9000]) + HOUR  # the moment the 9000th candle closed
    before = resample(btc_hourly, "60", "D", as_of_ms=t)
    altered = btc_hourly.copy()
    later = altered.index > t - HOUR
    # Move every later candle to a different (real) price level: the 2017 prices, reversed.
    altered.loc[later, ["open", "high", "low", "close"]] = (
        btc_hourly[["open", "high", "low", "close"]].to_numpy()[: later.sum()][::-1])
    after = resample(altered, "60", "D", as_of_ms=t)
    pd.testing.assert_frame_equal(before, after)
    assert int(before.index[-1]) + DAY <= t


def test_bad_intervals_are_named():
    with pytest.raises(DataError, match="whole multiple"):
        ratio("240", "60")
    with pytest.raises(DataError, match="months"):
        ratio("60", "M")
    with pytest.raises(DataError, match="'7'"):
        ratio("60", "7")


def test_weeks_open_on_monday():
    monday = int(pd.Timestamp("2019-01-07", tz="UTC").timestamp() * 1000)
    assert bucket_start(monday + 3 * DAY, "W") == monday
