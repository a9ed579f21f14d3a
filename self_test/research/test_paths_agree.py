"""One policy on every path: the DQN agent, *trained* here on real candles, takes the same trades on
the fast path as in the engine the bot trades with (min-hold, switch margin, risk manager, stops,
end of data), and neither path opens a trade on the last candle."""

from __future__ import annotations

import numpy as np
import pytest

from bot.agent.environment import MarketData
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.research.backtest import engine_backtest, run_backtest
from bot.research.backtest_dqn import dqn_fast_backtest
from bot.research.fast_path import costs_for, run_fast
from bot.strategies.dqn import DQNStrategy
from bot.strategies.sma import SMACrossStrategy
from self_test.conftest import make_settings

# the product's anti-overtrading rules (min_hold 24, switch margin 0.5), a small and quick net
CONFIG = DQNConfig(seed=3, learning_starts=1_000, n_envs=16, buffer_size=20_000)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, btc_hourly):
    s = make_settings(tmp_path_factory.mktemp("paths"))
    agent = SelfLearningBot(s, config=CONFIG)
    agent.train(MarketData.from_frames(btc_hourly.iloc[6000:9000], settings=s), 12_000, progress=False)
    agent.training = False
    return s, agent


def _key(trades):
    return [(t.side, t.entry_ms, t.exit_ms, t.reason, round(t.qty, 12)) for t in trades]


def test_trained_dqn_trades_the_same_on_the_fast_and_the_engine_path(trained, btc_hourly):
    s, agent = trained
    frame = btc_hourly.iloc[7000:10400]      # 2,400 candles after 1,000 of warm-up, past the training span
    fast = dqn_fast_backtest(s, DQNStrategy(s, agent=agent), frame, start=1000)
    eng = engine_backtest(s, DQNStrategy(s, agent=agent), frame, start=1000)
    assert fast.path == "fast" and eng.path == "engine"
    assert len(fast.trades) >= 10 and len({t.side for t in fast.trades}) == 2
    assert _key(fast.trades) == _key(eng.trades)
    for a, b in zip(fast.trades, eng.trades, strict=True):
        assert (a.entry_price, a.exit_price, a.pnl) == pytest.approx((b.entry_price, b.exit_price, b.pnl), rel=1e-9)
    np.testing.assert_allclose(fast.equity, eng.equity, rtol=1e-9)
    # min-hold is in force: no position is changed by a signal before 24 candles ...
    hour = 3_600_000
    held = [(t.exit_ms - t.entry_ms) // hour for t in fast.trades if t.reason == "signal"]
    assert held and min(held) >= CONFIG.min_hold
    # ... and it matters: the same agent without it trades differently (the test can fail)
    loose = DQNStrategy(s, agent=SelfLearningBot(s, config=CONFIG.replace(min_hold=0)))
    loose.agent.q.load_state_dict(agent.q.state_dict())
    loose.agent.training = False
    assert len(dqn_fast_backtest(s, loose, frame, start=1000).trades) > len(fast.trades)


@pytest.mark.parametrize("path", ["fast", "engine"])
def test_no_trade_is_opened_on_the_last_candle(settings, btc_hourly, path):
    """SMA 3/7 crosses often; cut the data right where it would enter: nothing opens there."""
    strat = SMACrossStrategy(settings, fast=3, slow=7)
    frame = btc_hourly.iloc[9000:9400]
    full = run_fast(strat, frame, costs_for(settings, "BTCUSDT", frame))
    last_entry = max(t.entry_ms for t in full.trades)
    step = 3_600_000
    cut = frame[frame.index <= last_entry - step]     # the entry's candle is now the last one
    res = run_backtest(settings, strat, cut, path=path)
    end_ms = int(cut.index[-1]) + step
    assert res.trades and all(t.entry_ms < end_ms for t in res.trades)
    assert res.trades[-1].exit_ms == end_ms           # what was open closes at the end of data


def test_the_agents_fast_path_asks_torch_only_near_a_tie(trained, btc_hourly):
    """The fast path's open-position states go through the NumPy pass with the engine path's
    near-tie rule (`DQNStrategy.sure_choice`): torch answers the flat batch and the rare state
    within float rounding of a tie, not the hundreds of open-position candles; same trades."""
    s, agent = trained
    frame = btc_hourly.iloc[7000:10400]
    calls: list[int] = []
    strat = DQNStrategy(s, agent=agent)
    torch_q = agent.q_values

    def counted(states):
        calls.append(len(np.atleast_2d(states)))
        return torch_q(states)

    agent.q_values = counted
    try:
        fast = dqn_fast_backtest(s, strat, frame, start=1000)
    finally:
        del agent.q_values
    open_candles = int(np.count_nonzero(fast.position))
    assert open_candles > 500
    assert calls[0] == len(frame) and len(calls) - 1 < open_candles / 50, (len(calls), open_candles)
    assert _key(fast.trades) == _key(engine_backtest(s, DQNStrategy(s, agent=agent), frame, start=1000).trades)
