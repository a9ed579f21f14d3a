"""bot/analysis/indicators.py equals TA-Lib on the real BTC hourly seed candles, and streams exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from bot.analysis import indicators as ind

RTOL = 1e-9


def assert_matches(ours: np.ndarray, ref: np.ndarray, rtol: float = RTOL) -> None:
    """Same NaN warm-up, then |ours - ref| <= rtol x max(|ref|, median |ref|).

    The median floor only matters where an indicator crosses zero (MACD, CCI, ROC, OBV):
    there a 1e-12 rounding difference is a huge *relative* error of a value that is ~0.
    """
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg="warm-up differs")
    ok = ~np.isnan(ref)
    assert ok.sum() > 100
    scale = np.maximum(np.abs(ref[ok]), np.median(np.abs(ref[ok])))
    err = np.abs(ours[ok] - ref[ok]) / scale
    assert err.max() <= rtol, f"max scaled error {err.max():.3e} at {np.argmax(err)}"


@pytest.fixture(scope="module")
def hlcv(btc_hourly: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(btc_hourly[k].to_numpy() for k in ("high", "low", "close", "volume"))


@pytest.mark.parametrize("n", [2, 9, 20, 50, 200])
def test_moving_averages(hlcv, n):
    c = hlcv[2]
    assert_matches(ind.sma(c, n), talib.SMA(c, n))
    assert_matches(ind.ema(c, n), talib.EMA(c, n))
    assert_matches(ind.wma(c, n), talib.WMA(c, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_wilder_family(hlcv, n):
    h, lo, c, _ = hlcv
    assert_matches(ind.rsi(c, n), talib.RSI(c, n))
    assert_matches(ind.atr(h, lo, c, n), talib.ATR(h, lo, c, n))
    a, p, m = ind.adx(h, lo, c, n)
    assert_matches(a, talib.ADX(h, lo, c, n))
    assert_matches(p, talib.PLUS_DI(h, lo, c, n))
    assert_matches(m, talib.MINUS_DI(h, lo, c, n))
    assert_matches(ind.true_range(h, lo, c), talib.TRANGE(h, lo, c))


@pytest.mark.parametrize("fast,slow,signal", [(12, 26, 9), (5, 35, 5), (26, 12, 9)])
def test_macd(hlcv, fast, slow, signal):
    c = hlcv[2]
    for ours, ref in zip(ind.macd(c, fast, slow, signal), talib.MACD(c, fast, slow, signal), strict=True):
        assert_matches(ours, ref)


def test_bollinger_and_stddev(hlcv):
    c = hlcv[2]
    up, mid, lo, bw, pb = ind.bollinger(c, 20, 2.0)
    t_up, t_mid, t_lo = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    assert_matches(up, t_up)
    assert_matches(mid, t_mid)
    assert_matches(lo, t_lo)
    assert_matches(bw, (t_up - t_lo) / t_mid)
    assert_matches(pb, (c - t_lo) / (t_up - t_lo))
    assert_matches(ind.stddev(c, 20, 1.5), talib.STDDEV(c, 20, 1.5))
    r = np.r_[np.nan, np.diff(np.log(c))]
    assert_matches(ind.logret_std(c, 20, ddof=0), talib.STDDEV(r, 20, 1.0))
    # the default sample std of log returns equals pandas' rolling std
    assert_matches(ind.logret_std(c, 20), pd.Series(r).rolling(20).std().to_numpy())


def test_oscillators(hlcv):
    h, lo, c, v = hlcv
    for n in (14, 20):
        assert_matches(ind.cci(h, lo, c, n), talib.CCI(h, lo, c, n))
        assert_matches(ind.williams_r(h, lo, c, n), talib.WILLR(h, lo, c, n))
    for args in ((5, 3, 3), (14, 3, 5)):
        for ours, ref in zip(ind.stochastic(h, lo, c, *args),
                             talib.STOCH(h, lo, c, args[0], args[1], 0, args[2], 0), strict=True):
            assert_matches(ours, ref)
    assert_matches(ind.roc(c, 10), talib.ROC(c, 10))
    assert_matches(ind.obv(c, v), talib.OBV(c, v))
    assert_matches(ind.rolling_max(h, 14), talib.MAX(h, 14))
    assert_matches(ind.rolling_min(lo, 14), talib.MIN(lo, 14))


def test_cmf_hand_worked():
    # multipliers: ((9.5-8)-(10-9.5))/2 = 0.5; ((9.5-9)-(11-9.5))/2 = -0.5; no range -> 0
    h, lo, c, v = [10, 11, 12], [8, 9, 12], [9.5, 9.5, 12], [100, 200, 50]
    out = ind.cmf(h, lo, c, v, 2)
    assert np.isnan(out[0])
    assert out[1] == pytest.approx((50 - 100) / 300)
    assert out[2] == pytest.approx((-100 + 0) / 250)
    assert ind.cmf([1, 1], [1, 1], [1, 1], [0, 0], 2)[1] == 0.0  # no volume, no flow


def test_volume_ratio_hand_worked():
    out = ind.volume_ratio([100, 200, 300, 0], 3)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(300 / 200)
    assert out[3] == 0.0
    assert ind.volume_ratio([0, 0, 0], 3)[2] == 1.0


def test_compute_all_keys_and_wrapper(btc_hourly):
    out = ind.compute_all(btc_hourly)
    for key in ("ema_9", "ema_21", "ema_50", "ema_200", "rsi_14", "macd", "macd_signal",
                "macd_hist", "bb_upper", "bb_middle", "bb_lower", "bb_bandwidth", "bb_percent_b",
                "atr", "atr_14", "adx", "adx_14", "plus_di", "minus_di", "cmf_20",
                "volume_ratio", "obv", "cci_20", "willr_14", "stoch_k", "stoch_d", "roc_10",
                "logret_std_20", "sma_20", "sma_50", "wma_20"):
        assert out[key].shape == (len(btc_hourly),), key
        assert np.isfinite(out[key][-1]), key
    ti = ind.TechnicalIndicators(btc_hourly)
    np.testing.assert_array_equal(ti["rsi_14"], out["rsi_14"])
    assert ti.latest()["atr"] == out["atr"][-1]
    with pytest.raises(KeyError, match="did you mean 'rsi_14'"):
        ti["rsi14"]


def test_compute_all_periods_from_settings(btc_hourly, tmp_path):
    from self_test.conftest import make_settings
    s = make_settings(tmp_path, ATR_PERIOD=10, BB_PERIOD=30, BB_STD=2.5)
    h, lo, c = (btc_hourly[k].to_numpy() for k in ("high", "low", "close"))
    out = ind.compute_all(btc_hourly, s)
    assert_matches(out["atr"], talib.ATR(h, lo, c, 10))
    assert_matches(out["atr_14"], talib.ATR(h, lo, c, 14))
    assert_matches(out["bb_upper"], talib.BBANDS(c, 30, 2.5, 2.5, 0)[0])


def test_streaming_tail_equals_full_history(btc_hourly):
    full = ind.compute_all(btc_hourly)
    need = ind.required_history()
    assert need < len(btc_hourly) // 4, "the tail must be bounded, not the whole history"
    for end in range(need + 10, len(btc_hourly) + 1, 1_613):
        frame = btc_hourly.iloc[:end]
        tail = ind.tail_window(frame)
        assert len(tail) == need
        last = ind.compute_all(tail)
        for key, values in full.items():
            if key == "obv":
                continue
            # relative to the value, or to the indicator's typical size where it nears zero
            # (a MACD is a difference of two ~1e4 EMAs: its rounding is absolute, ~1e-12)
            ref = values[end - 1]
            scale = max(abs(ref), float(np.nanmedian(np.abs(values))))
            assert abs(last[key][-1] - ref) <= 1e-12 * scale, key
    # a tail too short to forget the EMA seed does differ: the test can fail
    short = ind.compute_all(btc_hourly.iloc[-400:])
    assert abs(short["ema_200"][-1] - full["ema_200"][-1]) > 1e-6
    # OBV is a running total: carried exactly with obv_step
    c, v = btc_hourly["close"].to_numpy(), btc_hourly["volume"].to_numpy()
    assert ind.obv_step(full["obv"][-2], c[-2], c[-1], v[-1]) == pytest.approx(full["obv"][-1])


def test_short_input_and_bad_input():
    assert np.isnan(ind.ema([1.0, 2.0], 5)).all()
    assert np.isnan(ind.adx([1, 2, 3], [0, 1, 2], [1, 2, 3], 14)[0]).all()
    assert len(ind.sma([], 3)) == 0
    with pytest.raises(ValueError, match="period"):
        ind.sma([1, 2, 3], 0)
    with pytest.raises(ValueError, match="same length"):
        ind.atr([1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        ind.rsi(np.ones((3, 3)))


def test_blocked_recursion_equals_lfilter(hlcv):
    from scipy.signal import lfilter

    from bot.analysis.indicator_kernels import recursive
    c = hlcv[2]
    for a, b in ((0.9, 0.1), (13 / 14, 1.0), (199 / 201, 2 / 201)):
        ref = np.r_[c[0], lfilter([b], [1.0, -a], c[1:], zi=[a * c[0]])[0]]
        np.testing.assert_allclose(recursive(c, c[0], a, b), ref, rtol=1e-13)
        two = recursive(np.stack([c, c[::-1].copy()]), [c[0], c[-1]], a, b)
        np.testing.assert_allclose(two[0], ref, rtol=1e-13)
        inplace = c.copy()
        recursive(inplace, c[0], a, b, out=inplace)
        np.testing.assert_allclose(inplace, ref, rtol=1e-13)
    # a NaN in the input stays causal: everything before it is untouched
    x = c.copy()
    x[5000] = np.nan
    y = recursive(x, x[0], 0.9, 0.1)
    np.testing.assert_allclose(y[:5000], recursive(c, c[0], 0.9, 0.1)[:5000], rtol=1e-13)
    assert np.isnan(y[5000:]).all()


def test_adx_after_a_trading_halt_matches_talib(hlcv):
    """A flat stretch (exchange halt: one real price repeated) has no range: DI 0, DX undefined,
    and TA-Lib holds the ADX there. The real candles follow."""
    h, lo, c, _ = (a[:3000] for a in hlcv)
    flat = np.full(40, c[0])
    H, L, C = (np.r_[flat, a] for a in (h, lo, c))
    a, p, m = ind.adx(H, L, C, 14)
    assert_matches(a, talib.ADX(H, L, C, 14))
    assert_matches(p, talib.PLUS_DI(H, L, C, 14))
    assert_matches(m, talib.MINUS_DI(H, L, C, 14))
    assert_matches(ind.rsi(C, 14), talib.RSI(C, 14))
    assert (p[14:40] == 0).all()


def test_strided_and_list_inputs(btc_hourly):
    """A column of a 2-D array (strided) or a plain list gives the same numbers."""
    block = np.ascontiguousarray(btc_hourly[["open", "high", "low", "close", "volume"]].to_numpy())
    c_strided = block[:, 3]
    assert not c_strided.flags["C_CONTIGUOUS"]
    c = np.ascontiguousarray(c_strided)
    for f in (ind.sma, ind.wma, ind.stddev, ind.ema, ind.rsi):
        np.testing.assert_array_equal(f(c_strided, 20), f(c, 20))
    np.testing.assert_array_equal(ind.wma(c[:300].tolist(), 20), ind.wma(c[:300], 20))
    np.testing.assert_array_equal(ind.stddev(c[:300].tolist(), 20), ind.stddev(c[:300], 20))
