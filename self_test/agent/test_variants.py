"""The research variants' parts on real candles: the differential Sharpe reward, the 4 h / daily
context without look-ahead, the Q-averaging ensemble, the autograd learner against the numpy
fast path, and where the agent's checkpoint comes from (the shipped default as the fallback)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bot.agent.checkpoints import DEFAULT_MODEL_NAME, CheckpointStore
from bot.agent.environment import MarketData, TradingEnv
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.agent.timeframes import timeframe_feature_names, timeframe_features, with_timeframes
from bot.agent.variants import DifferentialSharpeEnv, EnsembleAgent
from self_test.conftest import make_settings

SMALL = DQNConfig(seed=5, n_envs=8, learning_starts=200, buffer_size=4_000, batch_size=32)


def test_differential_sharpe_reward_follows_its_formula_step_by_step(tmp_path, btc_hourly):
    settings = make_settings(tmp_path)
    data = MarketData.from_frames(btc_hourly.iloc[:1500], settings=settings)
    kw = {"settings": settings, "n_envs": 2, "seed": 1}
    env, ref = DifferentialSharpeEnv(data, **kw), TradingEnv(data, **kw)
    env.reset(starts=np.array([400, 400]), ends=np.array([700, 700]))
    ref.reset(starts=np.array([400, 400]), ends=np.array([700, 700]))
    a, b, scale = 0.0, env._b0, env._scale
    rng = np.random.default_rng(0)
    for _ in range(60):
        act = rng.integers(0, 3, 2)
        eq0 = ref.equity.copy()
        _, r, *_ = env.step(act)
        _, log_r, *_ = ref.step(act)
        x = float(np.log(ref.equity[0] / eq0[0]))
        assert log_r[0] == pytest.approx(x, abs=1e-6)          # the same trades as the plain env
        d = (b * (x - a) - 0.5 * a * (x * x - b)) / max(b - a * a, 1e-12) ** 1.5
        assert r[0] == pytest.approx(np.clip(d * scale, -10 * scale, 10 * scale), rel=1e-4, abs=1e-7)
        a, b = a + env.eta * (x - a), b + env.eta * (x * x - b)


def test_timeframe_context_uses_only_completed_higher_candles(btc_hourly):
    f = btc_hourly.iloc[:3000]
    full = timeframe_features(f)
    assert full.shape == (3000, len(timeframe_feature_names()))
    # changing every candle after row t changes nothing at rows <= t
    for t in (1500, 1517, 2399):
        g = f.copy()
        g.iloc[t + 1:, :4] *= 1.3
        cut = timeframe_features(g)
        np.testing.assert_array_equal(full[: t + 1], cut[: t + 1])
    # the daily context moves only on the hour that closes a UTC day
    day = full[:, timeframe_feature_names().index("tf1d_ret1")]
    change = np.flatnonzero(np.diff(day[~np.isnan(day)]) != 0)
    hours = (f.index.to_numpy(np.int64)[~np.isnan(day)][change + 1] // 3_600_000) % 24
    assert set(hours.tolist()) <= {23}


def test_multi_timeframe_data_appends_the_context_and_starts_after_its_warm_up(tmp_path, btc_hourly):
    settings = make_settings(tmp_path)
    f = btc_hourly.iloc[:3000]
    base = MarketData.from_frames(f, settings=settings)
    mtf = with_timeframes(f, settings=settings)
    assert mtf.features.shape[1] == base.features.shape[1] + 14
    assert mtf.segments[0, 0] >= max(base.segments[0, 0], 49 * 24)   # the daily EMA 50 is complete
    from bot.analysis import features as Fe
    names = list(mtf.feature_names) + list(Fe.position_feature_names())
    agent = SelfLearningBot(settings, config=SMALL, feature_names=names)
    agent.train(mtf, 600, progress=False)
    assert agent.state_dim == mtf.features.shape[1] + Fe.N_POSITION_FEATURES


def test_ensemble_of_one_network_acts_like_it_and_averages_q_values(tmp_path, btc_hourly):
    settings = make_settings(tmp_path)
    data = MarketData.from_frames(btc_hourly.iloc[:1500], settings=settings)
    a = SelfLearningBot(settings, config=SMALL)
    a.train(data, 800, progress=False)
    b = SelfLearningBot(settings, config=SMALL.replace(seed=6))
    b.train(data, 800, progress=False)
    states = TradingEnv(data, settings=settings, n_envs=16, seed=3).reset()
    assert np.array_equal(EnsembleAgent([a]).act(states), a.act(states, epsilon=0.0))
    np.testing.assert_allclose(EnsembleAgent([a, b]).q_values(states), (a.q_values(states) + b.q_values(states)) / 2,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        EnsembleAgent([])


def test_autograd_learner_takes_the_same_steps_as_the_numpy_fast_path(tmp_path, btc_hourly):
    settings = make_settings(tmp_path)
    data = MarketData.from_frames(btc_hourly.iloc[:1500], settings=settings)
    runs = {}
    for learner in ("numpy", "autograd"):
        agent = SelfLearningBot(settings, config=SMALL.replace(learner=learner))
        agent.train(data, 1_000, progress=False)
        runs[learner] = agent
    for (k, x), y in zip(runs["numpy"].q.state_dict().items(), runs["autograd"].q.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-4, msg=k)
    with pytest.raises(ValueError, match="learner"):
        DQNConfig(learner="sgd")


def test_store_falls_back_to_the_folders_default_then_the_shipped_one(tmp_path):
    shipped = tmp_path / "shipped" / DEFAULT_MODEL_NAME
    store = CheckpointStore(tmp_path / "models", fallback=shipped)
    assert store.latest() is None
    shipped.parent.mkdir()
    shipped.write_bytes(b"x")
    assert store.latest() == shipped
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / DEFAULT_MODEL_NAME).write_bytes(b"y")
    assert store.latest() == tmp_path / "models" / DEFAULT_MODEL_NAME
    (tmp_path / "models" / "dqn-000000000010.pt").write_bytes(b"z")
    assert store.latest().name == "dqn-000000000010.pt"
    assert CheckpointStore(tmp_path / "none", fallback=None).latest() is None


def test_a_long_only_checkpoint_runs_where_shorts_are_allowed_and_keeps_its_record(tmp_path, btc_hourly):
    spot = make_settings(tmp_path, EXCHANGE_CATEGORY="spot", LEVERAGE=1.0, DQN_SHIPPED_MODEL=False)
    agent = SelfLearningBot(spot, config=SMALL)
    agent.train(MarketData.from_frames(btc_hourly.iloc[:1500], settings=spot), 500, progress=False)
    agent.meta = {"variant": "long_only", "walk_forward": {"this_seed": {"return_pct": 1.5, "sharpe": 0.4}}}
    path = agent.save(tmp_path / "m.pt")
    linear = SelfLearningBot(make_settings(tmp_path, DQN_SHIPPED_MODEL=False))
    assert linear.n_actions == 3
    linear.load(path)
    assert linear.n_actions == 2 and linear.meta["variant"] == "long_only"
    # online learning from a trained network starts with little exploration, not at random
    linear.observe(np.zeros(linear.state_dim), 0, 0.0, np.zeros(linear.state_dim), False, symbol="BTCUSDT")
    assert linear.epsilon <= linear.config.online_epsilon_start + 1e-9
    fresh = SelfLearningBot(make_settings(tmp_path, DQN_SHIPPED_MODEL=False))
    fresh.observe(np.zeros(fresh.state_dim), 0, 0.0, np.zeros(fresh.state_dim), False, symbol="BTCUSDT")
    assert fresh.epsilon > 0.9
