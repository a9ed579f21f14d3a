"""LevelStream gives support_resistance's levels over the last `lookback` candles, incrementally."""

from __future__ import annotations

from bot.analysis.features import support_resistance
from bot.analysis.indicators import atr as atr_of
from bot.analysis.level_stream import LevelStream
from bot.market.timeframes import resample


def test_same_levels_as_support_resistance_on_real_4h_candles(btc_hourly):
    frame = resample(btc_hourly, "60", "240")
    h, lo, c = (frame[k].to_numpy() for k in ("high", "low", "close"))
    atr = atr_of(h, lo, c, 14)
    stream = LevelStream(lookback=300, tolerance_atr=0.5)
    compared = with_levels = 0
    for i in range(len(frame)):
        stream.update(h[i], lo[i])
        if i >= 20 and i % 3 == 0:
            want = support_resistance({"high": h[:i + 1], "low": lo[:i + 1], "close": c[:i + 1]},
                                      atr=atr[:i + 1], lookback=300, tolerance_atr=0.5)
            got = stream.levels(float(atr[i]), float(c[i]))
            assert [(lv.price, lv.touches, lv.kind) for lv in got] == \
                [(lv.price, lv.touches, lv.kind) for lv in want], i       # bit for bit
            assert [(cl.price, cl.touches) for cl in stream.clusters(float(atr[i]))] == \
                [(lv.price, lv.touches) for lv in want]
            compared += 1
            with_levels += any(lv.touches >= 3 for lv in want)
    assert compared > 1500 and with_levels > 500   # real clusters, not only single pivots


def test_clusters_near_a_price_are_the_full_list_cut_to_that_band(btc_hourly):
    frame = resample(btc_hourly.iloc[:6000], "60", "240")
    stream = LevelStream(lookback=300)
    for hi, low in zip(frame["high"], frame["low"], strict=True):
        stream.update(hi, low)
    price, atr = float(frame["close"].iloc[-1]), 150.0
    band = [cl for cl in stream.clusters(atr) if abs(cl.price - price) <= 3 * atr]
    assert stream.clusters(atr, near=price, within=3 * atr) == band and 0 < len(band) < len(stream.clusters(atr))


def test_clusters_near_a_price_equal_the_full_list_cut_at_every_candle(btc_hourly):
    frame = resample(btc_hourly, "60", "240")
    stream = LevelStream(lookback=300)
    big = cut = 0
    for hi, low, close in zip(frame["high"], frame["low"], frame["close"], strict=True):
        stream.update(hi, low)
        for atr in (0.002 * close, 0.02 * close, 0.2 * close):   # a tolerance from tiny to wide
            full = stream.clusters(atr)
            big += any(cl.touches >= 8 for cl in full)    # groups whose mean is numpy's pairwise sum
            for within in (0.5 * atr, 3.5 * atr):
                band = stream.clusters(atr, near=close, within=within)
                assert band == [cl for cl in full if abs(cl.price - close) <= within]
                cut += len(band) < len(full)
    assert big > 100 and cut > 1000
