"""The NumPy forward pass (bot/agent/numpy_q.py) against the torch network, and the one-row
choice on plain floats (`sure_row`, `SelfLearningBot.greedy_row`, `DQNStrategy._choose_row`)
against the array code it stands in for, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bot.agent.checkpoints import SHIPPED_MODEL
from bot.agent.network import EnsembleQ, QNetwork
from bot.agent.numpy_q import NumpyQ, f32, sure, sure_row, sure_rows
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.strategies.base import StrategyContext
from bot.strategies.dqn import DQNStrategy
from self_test.conftest import make_settings


def random_net(state_dim: int, n_actions: int, seed: int) -> QNetwork:
    torch.manual_seed(seed)
    net = QNetwork(state_dim, n_actions, (16, 8))
    with torch.no_grad():
        net.mean.copy_(torch.randn(state_dim))
        net.std.copy_(torch.rand(state_dim) + 0.5)
    return net


def torch_q(net, states: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return net(torch.from_numpy(states)).numpy()


@pytest.mark.parametrize("members", [1, 3])
def test_the_numpy_pass_gives_the_torch_q_values_and_follows_changed_weights(members):
    nets = [random_net(7, 3, seed) for seed in range(members)]
    net = nets[0] if members == 1 else EnsembleQ(nets)
    states = (np.random.default_rng(1).normal(size=(300, 7)) * 4).astype(np.float32)   # some clipped at 10 sd
    fast = NumpyQ(net)
    want = torch_q(net, states)
    np.testing.assert_allclose(fast(states), want, rtol=1e-5, atol=1e-5)
    one = np.concatenate([fast(states[i:i + 1]) for i in range(20)])
    np.testing.assert_allclose(one, want[:20], rtol=1e-5, atol=1e-5)
    with torch.no_grad():      # any tensor changed in place (a load, a learning step): read again
        nets[-1].advantage.bias.add_(torch.tensor([0.0, 3.0, 0.0]))
    changed = torch_q(net, states)
    assert np.abs(changed - want).max() > 0.5
    np.testing.assert_allclose(fast(states), changed, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        nets[0].std.mul_(2.0)
    np.testing.assert_allclose(fast(states), torch_q(net, states), rtol=1e-5, atol=1e-5)



def test_the_relu_as_a_clip_gives_the_maximums_q_values_bit_for_bit():
    """The pass's ReLU is `clip(z, 0, inf)` (a third of `maximum(z, 0)`'s cost); it differs from
    the maximum only in keeping a -0.0, which no later sum or product can tell from 0.0: the
    Q-values are the ones the pass with the maximum gives, to the last bit."""
    net = EnsembleQ([random_net(7, 3, seed) for seed in range(3)])
    fast = NumpyQ(net)
    rng = np.random.default_rng(2)
    states = (rng.normal(size=(2_000, 7)) * rng.choice([0.01, 1.0, 30.0], size=(2_000, 7))).astype(np.float32)
    states[::5] = fast.mean[0, 0]       # every member's input 0 for some: many ReLUs at 0 exactly
    with torch.no_grad():                # a zero weight and bias somewhere: -0.0 before a ReLU
        net.members[0].trunk[0].weight[:3] = 0.0
        net.members[0].trunk[0].bias[:3] = -0.0

    def with_maximum(x: np.ndarray) -> np.ndarray:
        z = np.clip((x - fast.mean) / fast.std, -10.0, 10.0).astype(np.float32)
        for w, b in fast.layers:
            z = np.maximum(np.matmul(z, w) + b, 0.0)
        m, n, h = z.shape
        return np.matmul(z.transpose(1, 0, 2).reshape(n, m * h), fast.head) + fast.head_bias

    for i in range(0, len(states), 64):
        assert fast(states[i:i + 64]).tobytes() == with_maximum(states[i:i + 64]).tobytes()
    assert fast(states[:1]).tobytes() == with_maximum(states[:1]).tobytes()

def test_the_shipped_ensemble_through_the_numpy_pass(tmp_path, btc_hourly):
    s = make_settings(tmp_path, CANDLE_INTERVAL="60", TRAINING_ENABLED=False)
    agent = SelfLearningBot(s)
    agent.load(SHIPPED_MODEL)
    assert isinstance(agent.q, EnsembleQ) and len(agent.q.members) >= 2
    states = (np.random.default_rng(2).normal(size=(200, agent.state_dim))).astype(np.float32)
    want = torch_q(agent.q, states)
    np.testing.assert_allclose(NumpyQ(agent.q)(states), want, rtol=1e-5, atol=1e-4 * np.abs(want).max())


def test_a_network_it_does_not_know_is_refused():
    net = random_net(5, 2, 0)
    net.trunk = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh())
    with pytest.raises(TypeError, match="trunk"):
        NumpyQ(net)


def rows(rng: np.random.Generator, n: int, n_actions: int) -> list[np.ndarray]:
    """Q-value rows of every kind the choice meets: spread, near ties, ties, a switch margin's
    edge, masked shorts, large and tiny scales."""
    out = []
    for i in range(n):
        q = (rng.normal(size=n_actions) * 10.0 ** rng.integers(-3, 3)).astype(np.float32)
        kind = i % 6
        if kind == 1:
            q[1] = q[0] + np.float32(rng.normal() * 1e-4)       # within the float tolerance, or just out
        elif kind == 2:
            q[1] = q[0]                                       # a tie: the first wins
        elif kind == 3:
            q[1] = np.float32(q[0] + 0.5 + rng.normal() * 1e-4)   # the switch margin's edge
        elif kind == 4 and n_actions > 2:
            q[2] = -np.inf
        out.append(q)
    return out


def test_sure_row_answers_as_sure():
    rng = np.random.default_rng(3)
    answers = []
    for n_actions in (2, 3):
        for q in rows(rng, 3000, n_actions):
            for current in (-1, 0, 1, n_actions - 1):
                for margin in (0.0, 0.5):
                    answers.append(sure(q, current, margin))
                    assert sure_row(q.tolist(), current, margin) == answers[-1], (q, current, margin)
    assert 0.05 < np.mean(answers) < 0.95            # both answers were met
    # a gap just over the tolerance in float64 that float32 rounds to within it: not sure
    below = float(np.float32(1e-4))                   # the float32 under 1e-4, 2.5e-12 below it
    edge = [float(np.float32(3e-12)), -below]
    assert edge[0] - edge[1] > 1e-4 * (1.0 + edge[0]) and not sure(np.array(edge, np.float32), -1, 0.0)
    assert not sure_row(edge, -1, 0.0)
    assert sure_row([1.0, math.nan, 0.0], 1, 0.5) == sure(np.array([1.0, np.nan, 0.0], np.float32), 1, 0.5)
    assert sure_row([math.inf, 0.0], -1, 0.0) == sure(np.array([np.inf, 0.0], np.float32), -1, 0.0)



@pytest.mark.parametrize("n_actions", [2, 3])
def test_sure_rows_answers_as_sure_row_for_every_row(n_actions):
    """`sure_rows` (two actions: the best and the second without a sort) against `sure_row` row
    by row, with rows holding an inf, -inf (masked) or fewer than two finite values; a row with
    a NaN is never sure (`sure_choice` does not ask `sure_row` about one)."""
    rng = np.random.default_rng(4)
    q = np.array(rows(rng, 3000, n_actions))
    q[::31, 0] = np.nan
    q[::37, 1] = np.inf
    q[::41, 0] = -np.inf
    q[::43] = -np.inf
    q[::47, n_actions - 1] = -np.inf
    current = rng.integers(-1, n_actions, len(q))
    for margin in (0.0, 0.5):
        got = sure_rows(q, current, margin).tolist()
        nan = np.isnan(q).any(axis=1).tolist()
        assert got == [False if n else sure_row(r.tolist(), int(c), margin)
                       for r, c, n in zip(q, current, nan, strict=True)]
        assert 0.05 < np.mean(got) < 0.95 and any(nan)

@pytest.mark.parametrize("levels", [None, (0.0, 1.0, -1.0, 0.5, -0.5)])
def test_greedy_row_chooses_as_greedy(tmp_path, levels):
    s = make_settings(tmp_path, EXCHANGE_CATEGORY="linear")
    n_actions = 3 if levels is None else len(levels)
    agent = SelfLearningBot(s, config=DQNConfig(seed=0, switch_margin=0.1), n_actions=n_actions)
    agent.levels = levels
    rng = np.random.default_rng(4)
    cols = agent._position_cols
    changed = 0
    for q in rows(rng, 3000, n_actions):
        state = np.zeros((1, agent.state_dim), np.float32)
        if levels is None:
            state[0, cols[int(rng.integers(3))]] = 1.0
        else:
            state[0, cols] = np.float32(rng.choice([0.0, 0.5, 1.0, 0.3])), *rng.choice([0.0, 0.5, 1.0], 2)
        q = np.where(np.isinf(q), np.float32(-1e30), q)       # greedy's rows carry no -inf but masked shorts
        want = int(agent.greedy(q[None], state)[0])
        assert agent.greedy_row(q.tolist(), state[0, cols].tolist()) == want, (q, state[0, cols])
        changed += want != int(np.argmax(q))
    assert changed > 50                               # the margin kept a position often enough to matter
    # Q over the held position's by just under the margin in float64, by the margin in float32: switch
    m32 = float(np.float32(agent.config.switch_margin))
    under = float(np.nextafter(np.float32(m32), np.float32(0)))
    q = [float(np.float32((m32 - under) * 0.75)), -under, -1.0][:n_actions] + [-1.0] * (n_actions - 3)
    state = np.zeros((1, agent.state_dim), np.float32)
    state[0, cols] = (0.0, 1.0, 0.0)                 # long held (one-hot, or the level 1.0)
    assert q[0] - q[1] < m32 and int(agent.greedy(np.array([q], np.float32), state)[0]) == 0
    assert agent.greedy_row(q, state[0, cols].tolist()) == 0


def test_one_rows_choice_on_floats_is_the_array_choice(tmp_path):
    """`_choose_row` (one state, plain floats) and `_choose` (arrays) give the same Decision:
    target, confidence (numpy's float32 softmax), reason and Q-values, bit for bit."""
    s = make_settings(tmp_path, EXCHANGE_CATEGORY="linear", TRAINING_ENABLED=False)
    agent = SelfLearningBot(s)
    agent.training = False
    strat = DQNStrategy(s, agent=agent)
    rng = np.random.default_rng(5)
    cols = agent._position_cols
    compared = deferred = 0
    for i, q in enumerate(rows(rng, 3000, agent.n_actions)):
        state = rng.normal(size=agent.state_dim).astype(np.float32)
        state[cols] = 0.0
        state[cols[i % 3]] = 1.0
        q[np.isinf(q)] = np.float32(rng.normal())
        ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=0, price=1.0, candles={},
                              allow_short=bool(i % 4))
        got = strat._choose_row(ctx, state, q.tolist())
        if got is None:
            deferred += 1
            continue
        want = strat._choose(ctx, state, q)
        assert (got.target, got.confidence, got.reason, got.q_values) == \
            (want.target, want.confidence, want.reason, want.q_values), (q, i)
        compared += 1
    assert compared > 2000 and deferred > 100          # near ties went to torch
    assert f32(0.1) == float(np.float32(0.1)) and f32(1e39) == math.inf and f32(-1e39) == -math.inf
