"""IndicatorStream carries compute_all's last row forward candle by candle, warm-up included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.analysis.feature_stream import numpy_sum
from bot.analysis.indicator_stream import IndicatorStream
from bot.analysis.indicators import compute_all
from bot.market.timeframes import resample

KEYS = {  # compute_all key -> how to read the stream
    "ema_21": lambda s: s.ema[21], "ema_50": lambda s: s.ema[50], "ema_200": lambda s: s.ema[200],
    "rsi_14": lambda s: s.rsi, "macd_hist": lambda s: s.macd_hist, "atr_14": lambda s: s.atr[14],
    "adx_14": lambda s: s.adx[14], "plus_di": lambda s: s.plus_di[14], "minus_di": lambda s: s.minus_di[14],
    "bb_bandwidth": lambda s: s.bandwidths[-1], "cmf_20": lambda s: s.cmf, "volume_ratio": lambda s: s.volume_ratio,
}


def test_every_value_equals_compute_all_on_real_4h_candles(btc_hourly):
    frame = resample(btc_hourly, "60", "240")
    cols = {k: frame[k].to_numpy() for k in ("high", "low", "close", "volume")}
    full = compute_all(cols)
    stream = IndicatorStream(emas=(21, 50, 200))
    checked = 0
    for i in range(len(frame)):
        stream.update(cols["high"][i], cols["low"][i], cols["close"][i], cols["volume"][i])
        if i < 300 or i % 11 == 0:
            assert stream.candles == i + 1
            for key, read in KEYS.items():
                want, got = float(full[key][i]), float(read(stream))
                assert math.isnan(want) == math.isnan(got), (key, i, want, got)   # same warm-up
                if not math.isnan(want):
                    scale = max(abs(want), 1e-6 * float(cols["close"][i]) if key == "macd_hist" else 1e-12)
                    assert abs(got - want) <= 1e-9 * scale, (key, i, want, got)
            if i >= 1 and not math.isnan(full["macd_hist"][i - 1]):
                assert stream.prev_macd_hist == pytest.approx(full["macd_hist"][i - 1], rel=1e-6, abs=1e-6)
            checked += 1
    assert checked > 700


def test_other_periods_follow_the_settings(btc_hourly):
    frame = btc_hourly.iloc[:3000]
    cols = {k: frame[k].to_numpy() for k in ("high", "low", "close", "volume")}
    s = type("S", (), {"ATR_PERIOD": 10, "ADX_PERIOD": 7, "BB_PERIOD": 30, "BB_STD": 1.5})()
    full = compute_all(cols, s)
    stream = IndicatorStream(emas=(9,), atr_periods=(10,), adx_periods=(7,), bb_period=30, bb_std=1.5)
    for i in range(len(frame)):
        stream.update(cols["high"][i], cols["low"][i], cols["close"][i], cols["volume"][i])
    for key, got in (("ema_9", stream.ema[9]), ("atr", stream.atr[10]), ("adx", stream.adx[7]),
                     ("plus_di", stream.plus_di[7]), ("bb_bandwidth", stream.bandwidths[-1])):
        assert got == pytest.approx(float(full[key][-1]), rel=1e-9), key


def test_numpy_sum_gives_numpy_s_bits():
    rng = np.random.default_rng(7)
    for n in (1, 5, 7, 8, 9, 16, 23, 64, 127, 128, 200):
        xs = (rng.standard_normal(n) * 1e4 + 3e4).tolist()
        assert numpy_sum(xs) == float(np.sum(np.array(xs))), n


def test_sorted_bandwidths_are_the_kept_ones_in_order(btc_hourly):
    frame = btc_hourly.iloc[:600]
    stream = IndicatorStream(bandwidth_keep=50)
    for i, (h, lo, c, v) in enumerate(frame[["high", "low", "close", "volume"]].to_numpy().tolist()):
        stream.update(h, lo, c if i != 300 else math.nan, v)   # one NaN close: 20 NaN bandwidths
        kept = list(stream.bandwidths)
        assert stream.bandwidth_window.ordered == sorted(x for x in kept if x == x)
        assert stream.bandwidth_window.nans == sum(x != x for x in kept)
    assert stream.bandwidth_window.nans == 0 and len(stream.bandwidth_window.ordered) == 50


def _recursions(s: IndicatorStream) -> str:
    return repr((s.ema, s.atr, s.adx, s.plus_di, s.minus_di, s.rsi, s.macd_hist))   # NaN == NaN here


def test_without_windows_the_recursions_are_the_same(btc_hourly):
    rows = btc_hourly[["high", "low", "close", "volume"]].to_numpy()[:1500].tolist()
    full, bare = IndicatorStream(), IndicatorStream(windows=False)
    for row in rows:
        full.update(*row)
        bare.update(*row)
        assert _recursions(bare) == _recursions(full)
    assert not bare.bandwidths and math.isnan(bare.cmf) and math.isnan(bare.volume_ratio)
