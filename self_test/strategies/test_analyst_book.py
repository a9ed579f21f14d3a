"""The analyst's book closes higher-timeframe candles exactly as resample does, gaps included."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def _trimmed_series_equals_resample(frame, recorded, tmp_path):
    from bot.strategies.analyst_book import AnalystBook
    from self_test.conftest import make_settings

    book = AnalystBook(make_settings(tmp_path), "60", "240", "D", keep=24 * 50, history=None, recorded=recorded)
    cols = frame[["open", "high", "low", "close", "volume"]].to_numpy()
    times = np.asarray(frame.index, dtype=np.int64)
    trims = 0
    for i in range(0, len(frame), 37):   # uneven steps: trims fall mid-day
        before = len(book._rows)
        book.take(times[:i + 37], cols[:i + 37])
        if len(book._rows) < before + min(37, len(frame) - i):
            trims += 1
            kept = pd.DataFrame(list(book._rows), columns=["t", "open", "high", "low", "close", "volume"]).set_index("t")
            want = resample(kept, "60", "D")
            got = book._confirm_rows
            if recorded is not None:
                rec_last = int(recorded.index[-1])
                assert got[:len(recorded)] == book._recorded
                want = want[want.index > rec_last]
                got = got[len(recorded):]
            assert [r[0] for r in got] == want.index.tolist()
            assert np.array_equal(np.array([r[1:5] for r in got]), want[["open", "high", "low", "close"]].to_numpy())
            assert np.allclose([r[5] for r in got], want["volume"].to_numpy(), rtol=1e-12)
    return trims


def test_confirmation_series_after_a_trim_equals_a_resample_of_the_kept_candles(btc_hourly, btc_daily, tmp_path):
    frame = btc_hourly.iloc[:4000].drop(btc_hourly.index[[1500, 1501, 2890]])   # gaps, one at a trim
    assert _trimmed_series_equals_resample(frame, None, tmp_path) >= 2
    recorded = btc_daily[btc_daily.index < int(frame.index[0]) + 30 * 86_400_000]   # overlaps the kept days
    assert _trimmed_series_equals_resample(frame, recorded, tmp_path) >= 2


def test_numpy_percentile_gives_numpy_s_bits(btc_hourly):
    from bot.strategies.analyst_book import numpy_percentile

    rng = np.random.default_rng(3)
    samples = [rng.normal(size=n) for n in (1, 2, 3, 50, 51, 99, 100, 137)] + \
              [btc_hourly["close"].to_numpy()[i:i + 100] / 7.0 for i in range(0, 5000, 97)]
    for x in samples:
        for q in (0, 1, 10, 25, 30, 33.3, 50, 70, 90, 95, 99, 100):
            assert numpy_percentile(sorted(x.tolist()), q) == float(np.percentile(x, q)), (len(x), q)


def test_regime_and_quiet_bands_read_off_the_sorted_window_as_off_the_numbers(btc_hourly):
    from bot.analysis.indicator_stream import IndicatorStream
    from bot.strategies.analyst_book import EntryView

    kept, longer = IndicatorStream(bandwidth_keep=100), IndicatorStream(bandwidth_keep=160)   # sorted / numpy path
    nan = float("nan")
    numbers = dict.fromkeys(("price", "prev", "open", "high20", "low20", "low2", "high2", "atr", "ema21", "ema50",
                             "rsi", "adx", "plus_di", "minus_di", "hist", "prev_hist", "cmf", "volume_ratio"), nan)
    verdicts = set()
    frame = resample(btc_hourly.iloc[:12000], "60", "240")
    for h, lo, c, v in frame[["high", "low", "close", "volume"]].to_numpy().tolist():
        kept.update(h, lo, c, v)
        longer.update(h, lo, c, v)
        views = [EntryView(**numbers, adx_regime=s.adx[14], bandwidth_window=s.bandwidth_window)
                 for s in (kept, longer)]
        for pct in (90.0, 70.0):
            assert views[0].volatile(100, pct) == views[1].volatile(100, pct)
            verdicts.add(("volatile", views[0].volatile(100, pct)))
        assert views[0].quiet_bands() == views[1].quiet_bands()
        verdicts.add(("quiet", views[0].quiet_bands()))
    assert len(verdicts) == 4   # both answers of both rules came up
