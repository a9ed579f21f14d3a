"""bot/analysis/features.py on the real BTC hourly seed candles: state vector, no look-ahead, regime, S/R."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.analysis import features as F
from bot.analysis import indicators as ind
from bot.market.seed import load_seed


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return load_seed("BTCUSDT", "60").iloc[:6000]


def test_shape_names_and_warmup(hourly):
    for window in (8, 32):
        x = F.market_features(hourly, window=window)
        w = F.warmup_length(window)
        assert x.shape == (len(hourly), len(F.market_feature_names(window)))
        assert x.dtype == np.float32
        assert np.isnan(x[:w]).all(), "warm-up rows must be NaN"
        assert np.isfinite(x[w:]).all(), "every row after the warm-up must be complete"
    names = F.market_feature_names(4)
    assert names[:4] == ["ret_lag3", "ret_lag2", "ret_lag1", "ret_lag0"]


def test_features_are_what_they_claim(hourly):
    x = F.market_features(hourly, window=16, dtype=np.float64)
    names = F.market_feature_names(16)
    col = {n: x[:, i] for i, n in enumerate(names)}
    c = hourly["close"].to_numpy()
    t = len(c) - 1
    all_ = ind.compute_all(hourly)
    assert col["rsi"][t] == pytest.approx(all_["rsi_14"][t] / 100)
    assert col["adx"][t] == pytest.approx(all_["adx"][t] / 100)
    assert col["dist_ema_50"][t] == pytest.approx((c[t] - all_["ema_50"][t]) / all_["atr"][t])
    sigma = np.std(np.diff(np.log(c[t - 100:t + 1])), ddof=1)
    assert col["ret_lag0"][t] == pytest.approx(np.log(c[t] / c[t - 1]) / sigma)
    assert col["ret_lag1"][t] == pytest.approx(col["ret_lag0"][t - 1])
    # clipping holds on real data with crashes in it
    assert np.nanmax(np.abs(x[:, :16])) <= F.RET_CLIP


def test_no_look_ahead_future_shifted(hourly):
    """State at t must not change when every candle after t is replaced by other real candles."""
    full = F.market_features(hourly)
    seed = load_seed("BTCUSDT", "60")
    for t in (450, 3001, len(hourly) - 2):
        other = seed.iloc[10000:10000 + len(hourly) - t - 1]  # a different real stretch
        altered = pd.concat([hourly.iloc[:t + 1], other.set_axis(hourly.index[t + 1:])])
        assert not np.array_equal(altered["close"].to_numpy(), hourly["close"].to_numpy())
        x_alt = F.market_features(altered)
        x_cut = F.market_features(hourly.iloc[:t + 1])
        np.testing.assert_array_equal(x_alt[:t + 1], full[:t + 1])
        np.testing.assert_array_equal(x_cut, full[:t + 1])
    # and the check can fail: the future itself does change
    assert not np.array_equal(x_alt[t + 1:], full[t + 1:])


def test_batch_of_symbols():
    frames = [load_seed(s, "D") for s in ("BTCUSDT", "ETHUSDT", "LTCUSDT")]
    feats = F.market_features_batch(frames, window=16)
    assert [f.shape[0] for f in feats] == [len(f) for f in frames]
    for f, frame in zip(feats, frames, strict=True):
        np.testing.assert_array_equal(f, F.market_features(frame, window=16))
    n = min(len(f) for f in frames)
    tails = [f.iloc[-n:] for f in frames]
    stacked = F.market_features_batch(tails, window=16, stack=True)
    assert stacked.shape == (3, n, 16 + 10)
    with pytest.raises(ValueError, match="different lengths"):
        F.market_features_batch(frames, stack=True)


def test_position_features_and_state_vector():
    p = F.position_features(np.array([0, 1, -1]), [0.0, 5.0, -5.0], [0, 24, 240])
    assert p.shape == (3, F.N_POSITION_FEATURES)
    np.testing.assert_array_equal(p[:, :3], np.eye(3, dtype=np.float32))
    assert p[1, 3] == pytest.approx(np.tanh(1.0)) and p[2, 3] == pytest.approx(-np.tanh(1.0))
    assert p[1, 4] == pytest.approx(0.5) and p[0, 4] == 0.0
    single = F.position_features(-1, 1.0, 3)
    assert single.shape == (5,) and single[2] == 1.0
    with pytest.raises(ValueError, match="position must be"):
        F.position_features(2, 0.0, 0)
    row = np.arange(42, dtype=np.float32)
    s = F.state_vector(row, 1, 2.0, 4)
    assert s.shape == (47,) and np.array_equal(s[:42], row)
    b = F.state_vector(np.stack([row, row]), np.array([0, -1]), [0, 1], [0, 2])
    assert b.shape == (2, 47) and b[1, 42 + 2] == 1.0
    assert F.position_feature_names()[0] == "pos_flat"


def test_regime_rules_on_real_data(hourly):
    codes = F.regime_codes(hourly)
    names = F.regime(hourly)
    ind_all = ind.compute_all(hourly)
    adx, bw = ind_all["adx"], ind_all["bb_bandwidth"]
    q = pd.Series(bw).rolling(100).quantile(0.9).to_numpy()
    ready = ~np.isnan(q) & ~np.isnan(adx)
    assert (codes[~ready] == F.WARMUP).all() and (names[~ready] == "warmup").all()
    vol = ready & (bw > q)
    trend = ready & ~vol & (adx > 25)
    chop = ready & ~vol & ~trend
    assert (codes[vol] == F.VOLATILE).all() and (names[vol] == "volatile").all()
    assert (codes[trend] == F.TRENDING).all() and (names[trend] == "trending").all()
    assert (codes[chop] == F.CHOPPY).all()
    # real markets spend time in all three
    assert vol.sum() > 100 and trend.sum() > 100 and chop.sum() > 100
    # volatile wins over trending where both hold
    assert (vol & (adx > 25)).any()
    same = F.regime_codes(None, indicators=ind_all)
    np.testing.assert_array_equal(same, codes)
    stricter = F.regime_codes(hourly, adx_threshold=40)
    assert (stricter == F.TRENDING).sum() < (codes == F.TRENDING).sum()


def test_regime_thresholds_from_settings(hourly, tmp_path):
    from self_test.conftest import make_settings
    s = make_settings(tmp_path, ADX_TREND_THRESHOLD=40.0)
    np.testing.assert_array_equal(F.regime_codes(hourly, settings=s),
                                  F.regime_codes(hourly, adx_threshold=40.0))


def test_support_resistance_on_real_data(hourly):
    frame = hourly.iloc[-500:]
    levels = F.support_resistance(frame, pivot_span=5)
    assert levels, "500 real candles must produce levels"
    prices = [lv.price for lv in levels]
    assert prices == sorted(prices)
    last = float(frame["close"].iloc[-1])
    assert all((lv.kind == "support") == (lv.price < last) for lv in levels)
    h, lo = frame["high"].to_numpy(), frame["low"].to_numpy()
    span = 5
    pivots = [h[i] for i in range(span, len(h) - span) if h[i] == h[i - span:i + span + 1].max()]
    pivots += [lo[i] for i in range(span, len(lo) - span) if lo[i] == lo[i - span:i + span + 1].min()]
    assert sum(lv.touches for lv in levels) == len(pivots)
    tol = 0.5 * ind.atr(h, lo, frame["close"].to_numpy(), 14)[-1]
    for a, b in zip(levels, levels[1:], strict=False):
        assert b.price - a.price > 0  # distinct clusters
    assert any(lv.touches >= 3 for lv in levels)
    assert all(lv.last_index <= len(frame) - 1 - span for lv in levels), "unconfirmed pivot used"
    wide = F.support_resistance(frame, tolerance_atr=5.0)
    assert len(wide) < len(levels)
    assert sum(lv.touches for lv in wide) == len(pivots)
    below, above = F.nearest_levels(levels, last)
    assert below is None or below.price < last
    assert above is None or above.price > last
    assert tol > 0


def test_support_resistance_no_look_ahead(hourly):
    """Pivots known at t are pivots for good: later candles never remove or move them."""
    t, span = 3000, 5
    h, lo = hourly["high"].to_numpy(), hourly["low"].to_numpy()
    for x, high in ((h, True), (lo, False)):
        early = F._pivots(x[:t], span, high=high)
        late = F._pivots(x, span, high=high)
        assert len(early) > 50
        assert early.max() <= t - 1 - span, "a pivot without its right span is not confirmed"
        assert set(early.tolist()) <= set(late.tolist())
    a = F.support_resistance(hourly.iloc[:t], lookback=400)
    b = F.support_resistance(hourly.iloc[:t].copy(), lookback=400)
    assert a == b
    later = F.support_resistance(hourly.iloc[:t + 50], lookback=450)
    assert a != later


def test_regime_no_look_ahead(hourly):
    full = F.regime_codes(hourly)
    for t in (500, 4000):
        np.testing.assert_array_equal(F.regime_codes(hourly.iloc[:t + 1]), full[:t + 1])


def test_bad_input_names_the_problem(hourly):
    with pytest.raises(ValueError, match="volume"):
        F.market_features(hourly.drop(columns=["volume"]))
    with pytest.raises(ValueError, match="window"):
        F.market_features(hourly, window=0)


def test_plot_regime_writes_a_png(hourly, tmp_path):
    path = F.plot_regime(hourly, str(tmp_path / "regime.png"), last=600)
    data = (tmp_path / "regime.png").read_bytes()
    assert path.endswith("regime.png") and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_latest_features_from_a_bounded_tail(btc_hourly):
    n = F.feature_history(32)
    assert n < 4000
    full = F.market_features(btc_hourly, dtype=np.float64)
    for end in (n + 5, 15_000, len(btc_hourly)):
        latest = F.latest_market_features(btc_hourly.iloc[:end], dtype=np.float64)
        np.testing.assert_allclose(latest, full[end - 1], rtol=0, atol=1e-7)
    # too short a tail is visibly different (EMA 200 still remembers its seed)
    short = F.market_features(btc_hourly.iloc[-300:], dtype=np.float64)[-1]
    assert np.max(np.abs(short - full[-1])) > 1e-4


def test_the_regime_rule_by_hand():
    """classify_regime on single candles (the engine's streaming use) and arrays alike."""
    nan = float("nan")
    cases = [  # (adx, bandwidth, its percentile) -> code, threshold 25
        ((30.0, 0.05, 0.04), F.VOLATILE),    # volatile wins over trending
        ((30.0, 0.03, 0.04), F.TRENDING),
        ((20.0, 0.05, 0.04), F.VOLATILE),
        ((20.0, 0.04, 0.04), F.CHOPPY),      # at the percentile is not above it
        ((25.0, 0.03, 0.04), F.CHOPPY),      # at the threshold is not above it
        ((nan, 0.05, 0.04), F.WARMUP),
        ((30.0, 0.05, nan), F.WARMUP),
    ]
    for (adx, bw, q), want in cases:
        assert int(F.classify_regime(adx, bw, q, 25.0)) == want, (adx, bw, q)
    arr = F.classify_regime(*(np.array(col) for col in zip(*(c for c, _ in cases), strict=True)), 25.0)
    assert arr.dtype == np.int8 and arr.tolist() == [w for _, w in cases]
    assert [F.regime_label(c) for c in (F.TRENDING, F.CHOPPY, F.VOLATILE, F.WARMUP)] == [
        "trending", "choppy", "volatile", "choppy"]


def test_percentile_linear_is_the_rolling_quantile(hourly):
    bw = ind.compute_all(hourly)["bb_bandwidth"][-400:]
    rolling = pd.Series(bw).rolling(100).quantile(0.9).to_numpy()
    for end in (100, 217, 400):
        window = bw[end - 100:end]
        assert F.percentile_linear(window, 90.0) == pytest.approx(np.percentile(window, 90.0), rel=1e-14)
        assert F.percentile_linear(window, 90.0) == pytest.approx(rolling[end - 1], rel=1e-12)


def test_the_rolling_sorted_percentile_is_the_sorted_windows_bit_for_bit(hourly):
    """`rolling_sorted_percentile` (the engine's replay takes every regime window at once) equals
    `sorted_percentile` of a `SortedWindow` as it is pushed, on real bandwidths with their NaN
    warm-up and a NaN in the middle, for several percentiles and window lengths; NaN where the
    window holds a NaN."""
    from bot.analysis import indicators as ind
    from bot.analysis.indicator_stream import SortedWindow

    bw = ind.bollinger(hourly["close"].to_numpy()[:1500], 20, 2.0)[3]
    bw[700] = np.nan
    for n, q in ((100, 90.0), (37, 50.0), (5, 99.9), (1, 90.0)):
        got = F.rolling_sorted_percentile(bw, n, q)
        window = SortedWindow(n)
        want = []
        for x in bw.tolist():
            window.push(x)
            if len(window.values) == n:
                want.append(F.sorted_percentile(window.ordered, q) if not window.nans else np.nan)
        assert len(got) == len(want) and np.isnan(got).sum() > 19
        assert np.array_equal(got, np.array(want), equal_nan=True), (n, q)
    assert len(F.rolling_sorted_percentile(bw[:3], 5, 90.0)) == 0
