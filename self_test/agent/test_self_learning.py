"""SelfLearningBot: n-step replay on a hand-worked buffer, learning on real candles, determinism,
checkpoints (round trip, incompatible features, corruption, rotation), online experience log,
and the DQN strategy wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bot.agent.checkpoints import load_experience
from bot.agent.environment import MarketData, TradingEnv
from bot.agent.self_learning import DQNConfig, ReplayBuffer, SelfLearningBot
from bot.errors import CheckpointError, StrategyError
from bot.strategies import get_strategy
from bot.strategies.base import Decision, StrategyContext
from self_test.conftest import make_settings

# Small and quick; short holds and no hysteresis so that learning (not the anti-overtrading
# brakes) is what separates the trained agent from random policies.
SMALL = DQNConfig(seed=1, learning_starts=1_000, n_envs=16, buffer_size=20_000, min_hold=4, switch_margin=0.0,
                  train_trade_penalty=0.0)


@pytest.fixture(scope="module")
def frame(btc_hourly):
    return btc_hourly.iloc[6000:9000]     # Mar-Jul 2018: a falling market (buy-and-hold -26 %)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, frame):
    """One small agent trained for a few seconds, shared by the tests that only read it."""
    s = make_settings(tmp_path_factory.mktemp("agent"))
    agent = SelfLearningBot(s, config=SMALL)
    data = MarketData.from_frames(frame, settings=s)
    result = agent.train(data, 16_000, progress=False)
    return s, agent, data, result


def _greedy_return(policy, data, settings, seed=0):
    env = TradingEnv(data, settings=settings, n_envs=1, min_hold=SMALL.min_hold)
    first, last = data.segments[0]
    state = env.reset(starts=np.array([first]), ends=np.array([last]))
    rng = np.random.default_rng(seed)
    while True:
        state, _, term, trunc, info = env.step(np.atleast_1d(policy(state, rng)))
        if (term | trunc).all():
            return float(info["equity"][0])


def test_n_step_returns_stop_at_the_episode_end_hand_worked():
    buf = ReplayBuffer(8, 1, 2, n_step=3, gamma=0.5)
    s = np.zeros((1, 2), np.float32)
    # rewards 1, 2, 4 (episode truncated after the third), then 8, 16 (terminal)
    for r, term, trunc in [(1, False, False), (2, False, False), (4, False, True), (8, False, False),
                           (16, True, False), (32, False, False), (64, False, False)]:
        buf.add(s + r, np.array([0]), np.array([r], np.float32), s + 100 + r, np.array([term]), np.array([trunc]))
    rng = np.random.default_rng(0)
    st, a, ret, nxt, disc = buf.sample(400, rng)
    got = {float(x[0]): (float(R), float(n[0]), float(d)) for x, R, n, d in zip(st, ret, nxt, disc, strict=True)}
    assert got[1.0] == (1 + 0.5 * 2 + 0.25 * 4, 104.0, 0.125)   # 3 steps, bootstraps from the cut
    assert got[2.0] == (2 + 0.5 * 4, 104.0, 0.25)                # stops at the truncation, still bootstraps
    assert got[4.0] == (4.0, 104.0, 0.5)
    assert got[8.0] == (8 + 0.5 * 16, 116.0, 0.0)                # terminal: no bootstrap
    assert 32.0 not in got and 64.0 not in got                   # their 3-step future is not written yet


def test_training_on_real_candles_beats_random_policies(trained, frame):
    s, agent, data, result = trained
    assert result.env_steps >= 16_000 and result.gradient_steps > 2_000
    assert np.isfinite(result.last_loss)
    agent_eq = _greedy_return(lambda st, rng: agent.act(st, epsilon=0.0), data, s)
    random_eq = [_greedy_return(lambda st, rng: rng.integers(0, 3), data, s, seed=k) for k in range(5)]
    untrained = SelfLearningBot(s, config=SMALL)
    untrained_eq = _greedy_return(lambda st, rng: untrained.act(st, epsilon=0.0), data, s)
    assert agent_eq > np.mean(random_eq), (agent_eq, random_eq)
    assert agent_eq > max(random_eq) and agent_eq > untrained_eq
    assert agent_eq > 1.0, "in sample, after fees, it has learned to make money where buy-and-hold lost"


def test_same_seed_same_agent(tmp_path, frame):
    s = make_settings(tmp_path)
    data = MarketData.from_frames(frame.iloc[:1200], settings=s)
    cfg = SMALL.replace(learning_starts=500)
    a, b = SelfLearningBot(s, config=cfg), SelfLearningBot(s, config=cfg)
    a.train(data, 2_000, progress=False)
    b.train(data, 2_000, progress=False)
    states = data.features[400:420]
    states = np.concatenate([states, np.zeros((20, a.state_dim - states.shape[1]), np.float32)], axis=1)
    np.testing.assert_array_equal(a.q_values(states), b.q_values(states))


def test_epsilon_decays_and_is_zero_out_of_training(trained):
    s, agent, _, result = trained
    assert agent.training is True                      # TRAINING_ENABLED default
    assert agent.epsilon == pytest.approx(SMALL.epsilon_end)   # decayed by the end of train()
    agent.training = False
    try:
        assert agent.epsilon == 0.0
    finally:
        agent.training = True


def test_checkpoint_round_trip_gives_identical_actions(trained, tmp_path):
    s, agent, data, _ = trained
    path = agent.save(tmp_path / "models" / "dqn-000000000001.pt")
    clone = SelfLearningBot(s, config=DQNConfig(seed=99))      # different seed and config: load wins
    clone.load(path)
    env = TradingEnv(data, settings=s, n_envs=64, seed=4)
    states = np.concatenate([env.reset() for _ in range(4)])
    np.testing.assert_array_equal(agent.act(states, epsilon=0.0), clone.act(states, epsilon=0.0))
    np.testing.assert_array_equal(agent.q_values(states), clone.q_values(states))
    assert clone.config == agent.config and clone.env_steps == agent.env_steps
    assert clone.epsilon == pytest.approx(agent.epsilon)
    for k, v in agent.optimizer.state_dict()["state"].items():
        assert torch.equal(v["exp_avg"], clone.optimizer.state_dict()["state"][k]["exp_avg"])


def test_checkpoints_rotate_and_the_newest_loads(tmp_path):
    s = make_settings(tmp_path, CHECKPOINTS_KEPT=2)
    agent = SelfLearningBot(s, config=SMALL)
    for steps in (10, 20, 30):
        agent.env_steps = steps
        agent.save()
    names = [p.name for p in agent.store.checkpoints()]
    assert names == ["dqn-000000000020.pt", "dqn-000000000030.pt"]
    other = SelfLearningBot(s, config=SMALL)
    assert other.load().name == "dqn-000000000030.pt" and other.env_steps == 30
    assert not list((s.data_dir / "models").glob(".tmp-*")), "no temporary files left behind"


def test_incompatible_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    s = make_settings(tmp_path)
    agent = SelfLearningBot(s, config=SMALL)
    names = list(agent.feature_names)
    names[0] = "ret_something_else"
    other = SelfLearningBot(s, config=SMALL, feature_names=names)
    path = other.save()
    with pytest.raises(CheckpointError, match="incompatible with the current features.*ret_something_else"):
        agent.load(path)
    spot = SelfLearningBot(make_settings(tmp_path, EXCHANGE_CATEGORY="spot"), config=SMALL)
    with pytest.raises(CheckpointError, match="2 actions"):
        spot.load(agent.save(tmp_path / "three_actions.pt"))
    bad = s.data_dir / "models" / "dqn-000000000099.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        agent.load(bad)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        SelfLearningBot(make_settings(tmp_path / "empty", DQN_SHIPPED_MODEL=False), config=SMALL).load()


def test_online_observe_learn_and_experience_log(trained, tmp_path):
    s = make_settings(tmp_path)
    agent = SelfLearningBot(s, config=SMALL.replace(batch_size=8))
    data = trained[2]
    env = TradingEnv(data, settings=s, n_envs=1, seed=2)
    state = env.reset()
    losses = []
    for _ in range(60):
        a = agent.act(state[0])
        nxt, r, term, trunc, _ = env.step(np.array([a]))
        agent.observe(state[0], a, float(r[0]), nxt[0], bool(term[0] or trunc[0]), symbol="BTCUSDT",
                      time_ms=int(data.time_ms[env.t[0]]))
        losses.append(agent.learn())
        state = nxt
    assert losses[0] is None and losses[-1] is not None and np.isfinite(losses[-1])
    agent.save()                                  # flushes the experience log
    df = load_experience(s.data_dir / "training", "BTCUSDT")
    assert len(df) == 60 and list(df.columns[:5]) == ["state", "action", "reward", "next_state", "done"]
    assert len(df["state"].iloc[0]) == agent.state_dim
    assert df["time_ms"].is_monotonic_increasing
    # a fresh agent retrains from the recorded experience alone
    fresh = SelfLearningBot(s, config=SMALL.replace(batch_size=8, seed=5))
    before = [p.clone() for p in fresh.q.parameters()]
    loss = fresh.learn_from_experience(df, 20)
    assert loss is not None and np.isfinite(loss) and fresh.gradient_steps == 20
    np.testing.assert_array_equal(fresh.buffer.state[:60, 0], np.stack(df["state"].to_numpy()))
    assert fresh.buffer.done[59, 0]
    assert any(not torch.equal(a, b) for a, b in zip(before, fresh.q.parameters(), strict=True))
    with pytest.raises(ValueError, match="no recorded experience"):
        fresh.learn_from_experience(df.iloc[:0], 1)


def test_dqn_strategy_decides_from_candles_or_state(trained, frame):
    s, agent, data, _ = trained
    strat = get_strategy("dqn", s, agent=agent)
    assert strat.name == "dqn"
    ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(frame.index[-1]),
                          price=float(frame["close"].iloc[-1]), candles={"60": frame.iloc[:-1]})
    strat.training = False
    d = strat.decide(ctx)
    assert isinstance(d, Decision) and d.source == "dqn" and d.target in (-1, 0, 1)
    state = strat.state_for(ctx)
    expected = {0: 0, 1: 1, 2: -1}[int(agent.act(state, epsilon=0.0))]
    assert d.target == expected and len(d.q_values) == 3
    spot_ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=0, price=1.0, candles={},
                               state=state, allow_short=False)
    assert strat.decide(spot_ctx).target in (0, 1)
    with pytest.raises(StrategyError, match="needs .* closed 60 candles"):
        strat.decide(StrategyContext(symbol="BTCUSDT", interval="60", time_ms=0, price=1.0,
                                     candles={"60": frame.iloc[:50]}))
    strat.training = True


def test_hand_written_gradients_equal_autograd(trained):
    s, agent, data, _ = trained
    env = TradingEnv(data, settings=s, n_envs=64, seed=8)
    states = torch.from_numpy(env.reset())
    rng = np.random.default_rng(0)
    actions = torch.from_numpy(rng.integers(0, 3, 64))
    with torch.no_grad():   # targets around the current Q, some beyond the Huber kink (|err| > 1)
        targets = agent.q(states).gather(1, actions[:, None]).squeeze(1) + torch.from_numpy(
            rng.normal(0.0, 1.5, 64).astype(np.float32))
    loss, grads = agent.q.huber_grads(states, actions, targets)
    q_sa = agent.q(states).gather(1, actions[:, None]).squeeze(1)
    ref_loss = torch.nn.functional.smooth_l1_loss(q_sa, targets)
    ref = torch.autograd.grad(ref_loss, list(agent.q.parameters()))
    assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-6)
    assert len(grads) == len(ref)
    for g, r in zip(grads, ref, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-7)


def test_dqn_strategy_keeps_a_young_position_like_in_training(trained, frame):
    from bot.types import Position

    s, agent, _, _ = trained
    strat = get_strategy("dqn", s, agent=agent)
    hold = agent.config.min_hold
    t = int(frame.index[-1])
    hour = 3_600_000
    for held, must_hold in ((hold - 1, True), (hold, False)):
        pos = Position(symbol="BTCUSDT", side="long", size=0.01, entry_price=float(frame["close"].iloc[-2]),
                       opened_ms=t - held * hour)
        ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=t, price=float(frame["close"].iloc[-1]),
                              candles={"60": frame}, position=pos)
        d = strat.decide(ctx)
        if must_hold:
            assert d.target == 1 and "holding" in d.reason
        else:
            assert "holding" not in d.reason and d.q_values is not None


def test_keep_best_restores_the_network_that_evaluated_best(tmp_path, frame):
    s = make_settings(tmp_path)
    agent = SelfLearningBot(s, config=SMALL.replace(learning_starts=300))
    data = MarketData.from_frames(frame.iloc[:1500], settings=s)
    snapshots = []

    def evaluate(a):   # scores fall after the first look, so the first network must come back
        snapshots.append({k: v.clone() for k, v in a.q.state_dict().items()})
        return 10.0 - len(snapshots)

    agent.train(data, 3_200, progress=False, evaluate=evaluate, eval_every=800, keep_best=True)
    assert len(snapshots) >= 4
    for k, v in agent.q.state_dict().items():
        assert torch.equal(v, snapshots[0][k]), k
        assert torch.equal(agent.q_target.state_dict()[k], v)
    assert not all(torch.equal(v, snapshots[-1][k]) for k, v in snapshots[0].items()), "it did learn meanwhile"


@pytest.mark.parametrize("max_grad_norm", [10.0, 0.05])   # 0.05: the clip is active
def test_numpy_learner_steps_equal_autograd_clip_and_torch_adam(trained, tmp_path, max_grad_norm):
    # the learner's gradient step (numpy on the parameters' memory + torch's fused Adam) must be
    # the textbook one: autograd Huber gradient, clip_grad_norm_, Adam(fused=True).step()
    s, trained_agent, data, _ = trained
    cfg = SMALL.replace(max_grad_norm=max_grad_norm)
    agent = SelfLearningBot(make_settings(tmp_path), config=cfg)
    agent.q.load_state_dict(trained_agent.q.state_dict())
    ref = SelfLearningBot(make_settings(tmp_path), config=cfg).q
    ref.load_state_dict(trained_agent.q.state_dict())
    ref_opt = torch.optim.Adam(ref.parameters(), lr=cfg.learning_rate, fused=True)
    env = TradingEnv(data, settings=s, n_envs=64, seed=8)
    states = env.reset()
    rng = np.random.default_rng(0)
    learner = agent._learner()
    x = learner.normalise(learner.online, states)
    for step in range(3):   # the first Adam step goes through the optimiser, the next ones not
        actions = rng.integers(0, 3, 64)
        with torch.no_grad():
            targets = (ref(torch.from_numpy(states)).gather(1, torch.from_numpy(actions)[:, None]).squeeze(1)
                       + torch.from_numpy(rng.normal(0.0, 1.5, 64).astype(np.float32)))
        loss = learner.huber_grads(x, actions, targets.numpy(), with_loss=True)
        learner.clip_and_step(cfg.max_grad_norm)
        ref_opt.zero_grad()
        q_sa = ref(torch.from_numpy(states)).gather(1, torch.from_numpy(actions)[:, None]).squeeze(1)
        ref_loss = torch.nn.functional.smooth_l1_loss(q_sa, targets)
        ref_loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.max_grad_norm)
        ref_opt.step()
        assert loss == pytest.approx(float(ref_loss.detach()), rel=1e-5), step
        assert (float(norm) > max_grad_norm) == (max_grad_norm < 1.0), "the clip is exercised as meant"
        for p, r in zip(agent.q.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p, r, rtol=1e-5, atol=1e-6)
    state = agent.optimizer.state_dict()["state"]
    assert all(float(v["step"]) == 3.0 for v in state.values())
    for v, r in zip(state.values(), ref_opt.state_dict()["state"].values(), strict=True):
        torch.testing.assert_close(v["exp_avg_sq"], r["exp_avg_sq"], rtol=1e-4, atol=1e-9)
