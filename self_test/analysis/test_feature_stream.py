"""bot.analysis.feature_stream.FeatureStream and its use in DQNStrategy.state_for, on the real BTC hourly seed
candles: the row carried forward candle by candle equals the full `market_features` computation
over the same candles, and the agent decides the same with or without it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bot.analysis import features as F
from bot.analysis.feature_stream import FeatureStream
from bot.strategies.base import StrategyContext
from self_test.conftest import make_settings

COLS = ("high", "low", "close", "volume")


def _step_through(stream: FeatureStream, frame, start: int, stop: int) -> np.ndarray:
    h, lo, c, v = (frame[k].to_numpy() for k in COLS)
    return np.array([stream.update(h[i], lo[i], c[i], v[i]).copy() for i in range(start, stop)])


def test_stream_equals_the_full_computation_on_5000_real_candles(btc_hourly):
    data = btc_hourly.iloc[:7000]
    full = F.market_features(data, dtype=np.float64)
    stream = FeatureStream(data.iloc[:2000])
    np.testing.assert_allclose(stream.row, full[1999], rtol=1e-9, atol=1e-11)
    rows = _step_through(stream, data, 2000, 7000)
    np.testing.assert_allclose(rows, full[2000:], rtol=1e-9, atol=1e-11)
    assert np.abs(rows - full[2000:]).max() < 1e-11
    # not a vacuous match: every column moves over the stretch
    assert (rows.std(axis=0) > 1e-3).all()


def test_stream_after_a_reset_with_other_periods(tmp_path, btc_hourly):
    """A fresh stream seeded mid-history (what a reset does) follows the full computation over
    the candles from its seed on; ATR/ADX/Bollinger periods and the window come from settings."""
    s = make_settings(tmp_path, ATR_PERIOD=10, ADX_PERIOD=20, BB_PERIOD=30, BB_STD=2.5)
    data = btc_hourly.iloc[9000:14000]
    full = F.market_features(data, window=8, settings=s, dtype=np.float64)
    first = FeatureStream(data.iloc[:1000], window=8, settings=s)
    _step_through(first, data, 1000, 1500)
    reset = FeatureStream(data.iloc[:1500], window=8, settings=s)    # reseed where it stood
    rows = _step_through(reset, data, 1500, 5000)
    np.testing.assert_allclose(rows, full[1500:], rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(first.row, full[1499], rtol=1e-9, atol=1e-11)
    default = F.market_features(data, window=8, dtype=np.float64)      # the periods matter
    assert np.abs(default[-1, 8:] - rows[-1, 8:]).max() > 1e-3


def test_stream_needs_its_warm_up_and_positive_closes(btc_hourly):
    need = F.warmup_length(32) + 1
    with pytest.raises(ValueError, match=f"at least {need} candles"):
        FeatureStream(btc_hourly.iloc[:need - 1])
    stream = FeatureStream(btc_hourly.iloc[:need])
    with pytest.raises(ValueError, match="positive"):
        stream.update(1.0, 1.0, 0.0, 1.0)


# -- DQNStrategy.state_for ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def strategy(tmp_path_factory):
    from bot.agent.self_learning import DQNConfig, SelfLearningBot
    from bot.strategies.dqn import DQNStrategy

    s = make_settings(tmp_path_factory.mktemp("dqn"))
    # An untrained net, greedy without hysteresis, so its choice follows the state closely
    agent = SelfLearningBot(s, config=DQNConfig(seed=7, switch_margin=0.0))
    agent.training = False
    return DQNStrategy(s, agent=agent)


def _context(frame, symbol: str = "BTCUSDT") -> StrategyContext:
    return StrategyContext(symbol=symbol, interval="60", time_ms=int(frame.index[-1]) + 3_600_000,
                           price=float(frame["close"].iloc[-1]), candles={"60": frame})


def test_dqn_decides_the_same_with_and_without_the_stream(strategy, btc_hourly):
    """As in the engine: each candle the strategy gets the last 2,000 candles. The full path
    computes every feature over them; the stream carries its row forward (0.01 ms instead of
    ~2 ms a pair). The two differ only by the 2,000-candle tail's unconverged EMA-200 seed."""
    data = btc_hourly.iloc[:3000]
    strategy._streams.clear()
    frames = [data.iloc[max(0, i - 2000):i] for i in range(2400, 3000)]
    strategy.incremental = True
    fast = [(strategy.state_for(_context(f)), strategy.decide(_context(f))) for f in frames]
    strategy.incremental = False
    slow = [(strategy.state_for(_context(f)), strategy.decide(_context(f))) for f in frames]
    strategy.incremental = True
    assert len(strategy._streams) == 1
    for i, ((s1, d1), (s0, d0)) in enumerate(zip(fast, slow, strict=True)):
        np.testing.assert_allclose(s1, s0, rtol=1e-5, atol=1e-6, err_msg=str(i))
        assert d1.target == d0.target, i
        np.testing.assert_allclose(d1.q_values, d0.q_values, rtol=1e-5, atol=1e-6)
    targets = {d.target for _, d in fast}
    assert len(targets) > 1, f"the agent took one action throughout ({targets}): the test would prove nothing"


def test_dqn_stream_resets_on_gaps_reorders_and_revisions(strategy, btc_hourly, caplog):
    """A missing candle, candles out of order or a revised candle reseed from the full
    computation (logged at debug); a pause of a few candles is caught up without a reseed."""
    data = btc_hourly.iloc[5000:7500]
    strategy._streams.clear()
    window, s = strategy.settings.STATE_WINDOW, strategy.settings

    def full(frame):
        return F.market_features(frame.iloc[-2000:], window=window, settings=s)[-1]

    def market(frame):
        return strategy.state_for(_context(frame, "GAPUSDT"))[: len(F.market_feature_names(window))]

    caplog.set_level(logging.DEBUG, logger="bot.agent")
    np.testing.assert_array_equal(market(data.iloc[:2000]), full(data.iloc[:2000]))   # seeded
    for end in range(2001, 2010):
        market(data.iloc[:end])
    market(data.iloc[:2030])                                  # a pause: 20 candles caught up
    anchored = F.market_features(data.iloc[:2030], window=window, settings=s)[-1]
    np.testing.assert_allclose(market(data.iloc[:2030]), anchored, rtol=1e-5, atol=1e-6)
    assert "recomputed" not in caplog.text

    gapped = data.iloc[:2032].drop(data.index[2030])          # the one after the last seen is gone
    np.testing.assert_array_equal(market(gapped), full(gapped))
    assert "a candle is missing" in caplog.text

    older = data.iloc[:2020]
    np.testing.assert_array_equal(market(older), full(older))
    assert "out of order" in caplog.text

    revised = data.iloc[:2020].copy()
    revised.iloc[-1, revised.columns.get_loc("close")] *= 1.01
    np.testing.assert_array_equal(market(revised), full(revised))
    assert "the last candle changed" in caplog.text

    strategy.state_for(_context(data.iloc[:1500], "FARUSDT"))
    far = data.iloc[:2100]                                     # longer away than worth stepping
    got = strategy.state_for(_context(far, "FARUSDT"))[: len(F.market_feature_names(window))]
    np.testing.assert_array_equal(got, full(far))
    assert "600 new candles" in caplog.text


def test_prime_seeds_the_pair_before_its_first_candle(strategy, btc_hourly, caplog):
    """The engine primes a pair when it adds it; the first candle then only steps the stream."""
    data = btc_hourly.iloc[12000:14100]
    strategy._streams.clear()
    assert not strategy.prime("ETHUSDT", "60", data.iloc[:100])          # too short to seed
    broken = data.iloc[:2000].copy()
    broken.iloc[500, broken.columns.get_loc("close")] = 0.0
    assert not strategy.prime("ETHUSDT", "60", broken)                   # bad history: not seeded, no raise
    assert strategy._streams == {}
    assert strategy.prime("ETHUSDT", "60", data.iloc[:2000])
    stream = strategy._streams[("ETHUSDT", "60")].stream
    caplog.set_level(logging.DEBUG, logger="bot.agent")
    got = strategy.state_for(_context(data.iloc[1:2001], "ETHUSDT"))
    assert strategy._streams[("ETHUSDT", "60")].stream is stream and "recomputed" not in caplog.text
    want = F.market_features(data.iloc[:2001], settings=strategy.settings)[-1]
    np.testing.assert_allclose(got[: len(want)], want, rtol=1e-6, atol=1e-6)
