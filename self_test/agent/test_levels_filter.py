"""Position levels and the trade filter on real candles: the level environment trades -1 / 0 / +1
exactly like the plain one and a half position for half the move and half the fees; the filter
takes, halves or skips each proposal for its whole life, takes them all like the proposer
itself, and sees proposals computed from past candles only; both train through plain autograd;
a seed ensemble is one checkpoint that the live strategy loads and runs."""

from __future__ import annotations

import numpy as np
import pytest

from bot.agent.environment import MarketData, TradingEnv
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.agent.variants import (
    VARIANTS,
    EnsembleAgent,
    FilterEnv,
    LevelEnv,
    LongLevelEnv,
    level_position_features,
    with_proposals,
)
from bot.analysis import features as F
from bot.research.protocol import Proposals
from bot.research.walk_forward import Fold, evaluate_window
from self_test.conftest import make_settings

SMALL = DQNConfig(seed=5, n_envs=8, learning_starts=200, buffer_size=4_000, batch_size=32, learner="autograd")


@pytest.fixture
def data(tmp_path, btc_hourly):
    settings = make_settings(tmp_path, EXCHANGE_CATEGORY="linear")
    return settings, MarketData.from_frames(btc_hourly.iloc[:3000], settings=settings)


def test_levels_trade_minus_one_zero_one_exactly_like_the_plain_environment(data):
    settings, d = data
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 3, (400, 6))
    runs = []
    for cls in (TradingEnv, LevelEnv):
        env = cls(d, settings=settings, n_envs=6, seed=3, min_hold=5)
        obs = [env.reset()]
        steps = []
        for a in acts:
            o, r, term, trunc, info = env.step(a)
            obs.append(o)
            steps.append((info["equity"], r, info["fee"], info["closed_pnl"]))
        runs.append((obs, steps))
    for x, y in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
        np.testing.assert_allclose(x[2], y[2], rtol=1e-12)
        np.testing.assert_array_equal(x[3], y[3])
    pos = np.array([0, 1, -1, 1, 0, -1])
    np.testing.assert_array_equal(level_position_features(pos, [0, 2.5, -3, 1, 0, 7], [0, 3, 5, 70, 0, 1]),
                                  F.position_features(pos, [0, 2.5, -3, 1, 0, 7], [0, 3, 5, 70, 0, 1]))


def test_a_half_position_earns_half_the_move_and_pays_half_the_fees(data):
    settings, d = data
    env = LevelEnv(d, settings=settings, n_envs=3, seed=1)
    env.reset(starts=np.full(3, 1000), ends=np.full(3, 1100))
    for _ in range(100):
        _, _, _, _, info = env.step(np.array([0, 1, 3]))      # flat, long, half long
    move = d.close[1100] / d.open[1001] - 1.0
    eq = info["equity"]
    assert eq[0] == 1.0
    assert env.fees[2] == pytest.approx(env.fees[1] / 2, rel=1e-9)
    assert eq[2] - 1.0 == pytest.approx((eq[1] - 1.0) / 2, rel=0.02)
    assert abs(eq[1] - 1.0 - move) < 0.002                   # fees and slippage only
    long_only = LongLevelEnv(d, settings=settings, n_envs=1)
    assert long_only.n_actions == 3 and not long_only.allow_short
    with pytest.raises(ValueError, match="actions must be in 0..2"):
        long_only.step(np.array([3]))


def test_the_filter_sizes_each_proposal_once_and_taking_all_trades_like_the_proposer(data, btc_hourly):
    settings, d = data
    frame = btc_hourly.iloc[:3000]
    sides = Proposals("sma")(frame)
    dp = with_proposals(d, sides)
    fold = Fold(1, 1500, 2999, int(d.time_ms[1500]), int(d.time_ms[2999]))
    sma = evaluate_window(d, fold, settings=settings, agent=None, sma=(20, 100))["sma_cross"]
    env = FilterEnv(dp, settings=settings, n_envs=4, seed=2)
    env.reset(starts=np.full(4, fold.test_start - 1), ends=np.full(4, fold.test_end))
    rng = np.random.default_rng(1)
    eq, entries = [np.ones(4)], 0
    obs = env.observe()
    for _ in range(fold.test_end - fold.test_start + 1):
        entry = obs[:, env._entry_col]
        entries += int(entry[0])
        # take all / skip all / halve all / random choices except on entries (they are ignored)
        chaos = np.where(entry[3] > 0, 2, rng.integers(0, 3))
        obs, _, _, _, info = env.step(np.array([2, 0, 1, chaos]))
        eq.append(info["equity"])
    eq = np.array(eq)
    np.testing.assert_allclose(eq[:, 0], sma.equity, rtol=1e-12)       # take everything = the SMA itself
    assert np.all(eq[:, 1] == 1.0)                                       # skip everything = never in the market
    np.testing.assert_allclose(eq[:, 3], eq[:, 0], rtol=1e-12)          # actions between entries change nothing
    assert 0 < np.abs(eq[-1, 2] - 1) < np.abs(eq[-1, 0] - 1)            # halves: a smaller move
    assert entries == int(np.sum(np.diff(sides[1499:3000]) > 0)) + int(sides[1499] > 0)


def test_proposals_at_a_candle_do_not_change_when_later_candles_do(btc_hourly):
    f = btc_hourly.iloc[:2500]
    base = Proposals("sma")(f)
    for t in (800, 1703):
        g = f.copy()
        g.iloc[t + 1:, :4] *= 0.7
        np.testing.assert_array_equal(Proposals("sma")(g)[: t + 1], base[: t + 1])
    with pytest.raises(ValueError, match="no proposals"):
        Proposals("analyst")(f)


@pytest.mark.parametrize("variant", ["levels", "filter_sma"])
def test_levels_and_the_filter_train_through_plain_autograd(tmp_path, btc_hourly, variant):
    from bot.research.protocol import DataSet, Job, make_agent, market_data

    settings = make_settings(tmp_path, EXCHANGE_CATEGORY="linear")
    v = VARIANTS[variant]
    job = Job(DataSet("x", "BTCUSDT", "60", btc_hourly.iloc[:2500], ""), variant, 3, settings, (), 0, 0, n_envs=8,
              proposals=Proposals("sma") if v.proposals else None,
              config={"learning_starts": 200, "buffer_size": 4000, "batch_size": 32})
    agent, s = make_agent(job)
    assert agent.config.learner == "autograd" and agent.trade_env is v.trade_env()
    d = market_data(btc_hourly.iloc[:2500], s, False, job.proposals)
    before = {k: x.clone() for k, x in agent.q.state_dict().items()}
    agent.train(agent.make_env(d, env_class=v.env_class()), 1_200, progress=False)
    assert agent.gradient_steps > 0
    assert any(not np.array_equal(before[k].numpy(), x.numpy()) for k, x in agent.q.state_dict().items())
    states = agent.make_env(d, n_envs=16).reset()
    acts = agent.act(states, epsilon=0.0)
    assert acts.shape == (16,) and acts.max() < agent.n_actions == (5 if variant == "levels" else 3)


def test_level_hysteresis_keeps_the_level_held(tmp_path, btc_hourly):
    settings = make_settings(tmp_path, EXCHANGE_CATEGORY="linear")
    agent = SelfLearningBot(settings, config=SMALL.replace(switch_margin=0.5), n_actions=5)
    agent.levels = (0.0, 1.0, -1.0, 0.5, -0.5)
    state = np.zeros((1, agent.state_dim), np.float32)
    cols = [agent.feature_names.index(n) for n in ("pos_flat", "pos_long", "pos_short")]
    state[0, cols] = level_position_features(np.array([0.5]), 0.0, 3)[0, :3]   # half long
    q = np.array([[0.0, 0.3, -1.0, 0.0, -1.0]])
    assert agent.greedy(q, state)[0] == 3            # long is better by less than the margin: stay half long
    q = np.array([[0.0, 0.9, -1.0, 0.0, -1.0]])
    assert agent.greedy(q, state)[0] == 1


def test_a_seed_ensemble_is_one_checkpoint_the_live_strategy_loads(tmp_path, btc_hourly):
    from bot.agent.network import EnsembleQ
    from bot.strategies.dqn import DQNStrategy

    settings = make_settings(tmp_path, DQN_SHIPPED_MODEL=False)
    data = MarketData.from_frames(btc_hourly.iloc[:1500], settings=settings)
    members = []
    for seed in (5, 6, 7):
        m = SelfLearningBot(settings, config=SMALL.replace(seed=seed, learner="numpy"))
        m.train(data, 600, progress=False)
        members.append(m)
    ens = EnsembleAgent(members)
    bot = ens.to_bot({"variant": "baseline+ens"})
    path = bot.save(tmp_path / "ens.pt")
    assert path.stat().st_size < 3_000_000
    loaded = SelfLearningBot(settings)
    loaded.load(path)
    assert isinstance(loaded.q, EnsembleQ) and len(loaded.q.members) == 3
    assert loaded.config.learner == "autograd" and loaded.meta["variant"] == "baseline+ens"
    states = TradingEnv(data, settings=settings, n_envs=32, seed=3).reset()
    np.testing.assert_allclose(loaded.q_values(states), ens.q_values(states), rtol=1e-5, atol=1e-6)
    assert np.array_equal(loaded.act(states, epsilon=0.0), ens.act(states))
    # online learning goes on through autograd, over every member
    before = [x.clone() for x in loaded.q.parameters()]
    loaded._learn_autograd(states[:32], np.ones(32, np.int64), np.full(32, 0.5, np.float32), states[:32],
                           np.full(32, 0.9, np.float32), 2)
    assert all(not np.array_equal(a.detach().numpy(), b.detach().numpy())
               for a, b in zip(before, loaded.q.parameters(), strict=True) if a.dim() == 2)
    strat = DQNStrategy(settings, model_path=path)
    assert strat.checkpoint_info()["name"] == "ens.pt"
    np.testing.assert_allclose(strat.agent.q_values(states[:4]), ens.q_values(states[:4]), rtol=1e-5, atol=1e-6)
