"""TradingEnv on the real BTC hourly seed candles: next-open fills, fees on every change, no
look-ahead, stops, episode bookkeeping, and no cross-talk between the parallel episodes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bot.agent.environment import MarketData, TradingEnv
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from self_test.conftest import make_settings

FLAT, LONG, SHORT = 0, 1, 2


@pytest.fixture(scope="module")
def frame(btc_hourly):
    return btc_hourly.iloc[:3000]


def _run(env: TradingEnv, actions, start: int, end: int):
    env.reset(starts=np.full(env.n_envs, start), ends=np.full(env.n_envs, end))
    out = []
    for a in actions:
        _, r, term, trunc, info = env.step(np.atleast_1d(a))
        out.append((r.copy(), info))
        if (term | trunc).all():
            break
    return out


def test_fill_at_next_open_with_fee_and_slippage_hand_worked(tmp_path, frame):
    s = make_settings(tmp_path, FEE_RATE=0.001, SLIPPAGE_BPS=10.0)
    data = MarketData.from_frames(frame, settings=s)
    env = TradingEnv(data, settings=s, n_envs=1)
    t = 1000
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    steps = _run(env, [LONG, FLAT, FLAT], t, t + 10)
    # step 1: long, bought at the open of t+1 plus 10 bps, 0.1 % fee on the whole equity
    entry = o[t + 1] * 1.001
    eq1 = 0.999 * c[t + 1] / entry
    r1, i1 = steps[0]
    assert i1["equity"][0] == pytest.approx(eq1, rel=1e-12)
    assert r1[0] == pytest.approx(math.log(eq1), rel=1e-6)
    # step 2: flat, sold at the open of t+2 minus 10 bps, 0.1 % fee on the exit notional
    qty = 0.999 / entry
    eq2 = qty * o[t + 2] * 0.999 * 0.999
    r2, i2 = steps[1]
    assert i2["equity"][0] == pytest.approx(eq2, rel=1e-12)
    assert r2[0] == pytest.approx(math.log(eq2 / eq1), rel=1e-5)
    assert i2["closed_pnl"][0] == pytest.approx(eq2 - 1.0, rel=1e-9)
    # step 3: flat stays flat: no fee, no reward
    r3, i3 = steps[2]
    assert i3["fee"][0] == 0.0 and r3[0] == 0.0 and i3["equity"][0] == pytest.approx(eq2)


def test_short_pnl_is_linear_perpetual(tmp_path, frame):
    s = make_settings(tmp_path, FEE_RATE=0.0, SLIPPAGE_BPS=0.0)
    env = TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=1)
    t = 1200
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    steps = _run(env, [SHORT, SHORT], t, t + 5)
    assert steps[1][1]["equity"][0] == pytest.approx(1.0 - (c[t + 2] / o[t + 1] - 1.0), rel=1e-12)


def test_fees_on_every_change_make_a_churning_policy_lose(tmp_path, frame):
    s = make_settings(tmp_path)                     # default: 0.055 % taker fee + 2 bps slippage
    free = make_settings(tmp_path, FEE_RATE=0.0, SLIPPAGE_BPS=0.0)
    churn = [LONG, FLAT] * 400
    start, end = 400, 1200
    paid = _run(TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=1), churn, start, end)
    gratis = _run(TradingEnv(MarketData.from_frames(frame, settings=free), settings=free, n_envs=1), churn,
                  start, end)
    hold = _run(TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=1), [LONG] * 800,
                start, end)
    fees = np.array([info["fee"][0] for _, info in paid])
    assert np.all(fees > 0), "every step of the churn changes the position, so every step pays"
    assert all(info["fee"][0] > 0 for _, info in hold[:1]) and all(info["fee"][0] == 0 for _, info in hold[1:])
    e_paid, e_free, e_hold = paid[-1][1]["equity"][0], gratis[-1][1]["equity"][0], hold[-1][1]["equity"][0]
    # 800 changes at >= 0.075 % each cost at least a factor 0.99925^800 = 0.55
    assert e_paid < e_free * 0.99925 ** 800 * 1.001
    assert e_paid < 1.0 and e_paid < e_hold
    assert sum(r[0] for r, _ in paid) == pytest.approx(math.log(e_paid), rel=1e-4)


def test_no_look_ahead_future_candles_do_not_change_past_actions_or_rewards(tmp_path, btc_hourly):
    s = make_settings(tmp_path)
    cut = 2000
    real = btc_hourly.iloc[:3000]
    # the future replaced by other real candles (a later period of the same seed), same timestamps
    other = btc_hourly.iloc[12000:13000]
    future = pd.DataFrame(other.to_numpy(), index=real.index[cut:], columns=real.columns)
    edited = pd.concat([real.iloc[:cut], future])
    # an untrained net without hysteresis: its actions vary with the state
    agent = SelfLearningBot(s, config=DQNConfig(seed=3, n_envs=1, switch_margin=0.0))
    results = []
    for f in (real, edited):
        env = TradingEnv(MarketData.from_frames(f, settings=s), settings=s, n_envs=1)
        state = env.reset(starts=np.array([1500]), ends=np.array([2600]))
        acts, rews = [], []
        for _ in range(1100):
            a = agent.act(state, epsilon=0.0)
            state, r, term, trunc, _ = env.step(a)
            acts.append(int(a[0]))
            rews.append(float(r[0]))
            if (term | trunc).all():
                break
        results.append((np.array(acts), np.array(rews)))
    (a1, r1), (a2, r2) = results
    # step k decides at the close of candle 1500 + k; candle `cut` is the first edited one, so
    # decisions k <= cut - 1 - 1500 and rewards (filled and marked on candle k + 1) k < that are past
    decided = cut - 1500
    marked = cut - 1 - 1500
    assert len(set(a1[:decided].tolist())) > 1, "the check needs an agent that changes its mind"
    np.testing.assert_array_equal(a1[:decided], a2[:decided])
    np.testing.assert_array_equal(r1[:marked], r2[:marked])
    assert not np.array_equal(r1[marked:], r2[marked:]), "the edit must matter after the cut"


def test_parallel_episodes_do_not_talk_to_each_other(tmp_path, frame):
    s = make_settings(tmp_path)
    data = MarketData.from_frames(frame, settings=s)
    rng = np.random.default_rng(5)
    acts = rng.integers(0, 3, (300, 4))
    starts = np.array([300, 700, 1100, 1500])
    vec = TradingEnv(data, settings=s, n_envs=4)
    vec.reset(starts=starts, ends=starts + 300)
    eq_vec = np.array([vec.step(a)[4]["equity"] for a in acts[:299]])
    for j in range(4):
        one = TradingEnv(data, settings=s, n_envs=1)
        one.reset(starts=starts[j:j + 1], ends=starts[j:j + 1] + 300)
        eq_one = np.array([one.step(acts[k, j:j + 1])[4]["equity"][0] for k in range(299)])
        np.testing.assert_allclose(eq_vec[:, j], eq_one, rtol=0, atol=0)


def test_stop_loss_exits_at_the_stop_level(tmp_path, frame):
    s = make_settings(tmp_path, STOP_LOSS_MODE="percent", STOP_LOSS_PCT=0.004, FEE_RATE=0.0, SLIPPAGE_BPS=0.0)
    env = TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=1, use_stops=True)
    o, h, lo = (frame[k].to_numpy() for k in ("open", "high", "low"))
    t = 900
    entry = o[t + 1]
    stop, tp = entry * 0.996, entry * 1.006      # take-profit = stop distance x MIN_REWARD_RISK 1.5
    k = t + 1                                    # first candle that touches a level
    while not (lo[k] <= stop or h[k] >= tp):
        k += 1
    env.reset(starts=np.array([t]), ends=np.array([t + 200]))
    info = None
    for _ in range(k - t):
        _, _, _, _, info = env.step(np.array([LONG if info is None else LONG]))
        if np.isfinite(info["closed_pnl"][0]):
            break
    hit_stop = lo[k] <= stop
    level = min(o[k], stop) if hit_stop else max(o[k], tp)
    assert bool(info["stopped"][0]) == hit_stop
    assert info["closed_pnl"][0] == pytest.approx(level / entry - 1.0, rel=1e-9)
    assert info["position"][0] == 0


def test_random_episodes_stay_in_the_span_and_last_episode_length(tmp_path, frame):
    s = make_settings(tmp_path, EPISODE_LENGTH=50)
    data = MarketData.from_frames(frame, settings=s)
    env = TradingEnv(data, settings=s, n_envs=16, seed=11)
    env.reset()
    first, last = data.segments[0]
    assert np.all(env.t >= first) and np.all(env.end <= last) and np.all(env.end - env.t == 50)
    assert len(set(env.t.tolist())) > 8, "starts are spread over the span"
    for k in range(50):
        _, _, term, trunc, info = env.step(np.zeros(16, np.int64))
        assert trunc.all() == (k == 49) and not term.any()
    assert np.all(np.isfinite(info["episode_return"]))


def test_spot_has_no_shorts(tmp_path, frame):
    s = make_settings(tmp_path, EXCHANGE_CATEGORY="spot")
    env = TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=2)
    assert env.n_actions == 2
    env.reset()
    with pytest.raises(ValueError, match="shorts are off"):
        env.step(np.array([0, SHORT]))


def test_min_hold_keeps_a_young_position(tmp_path, frame):
    s = make_settings(tmp_path)
    env = TradingEnv(MarketData.from_frames(frame, settings=s), settings=s, n_envs=1, min_hold=3)
    steps = _run(env, [LONG, FLAT, FLAT, FLAT, FLAT], 500, 520)
    positions = [int(info["position"][0]) for _, info in steps]
    assert positions == [1, 1, 1, 0, 0]
    assert [int(info["action"][0]) for _, info in steps] == [LONG, LONG, LONG, FLAT, FLAT]


def test_training_mode_without_bookkeeping_is_the_same_market(tmp_path, frame):
    from bot.agent.reward_system import RewardSystem

    s = make_settings(tmp_path)
    data = MarketData.from_frames(frame, settings=s)
    reward = RewardSystem.from_settings(s, trade_penalty=0.002)
    envs = [TradingEnv(data, settings=s, n_envs=16, seed=3, min_hold=3, reward=reward, bookkeeping=b)
            for b in (True, False)]
    states = [e.reset() for e in envs]
    np.testing.assert_array_equal(states[0], states[1])
    rng = np.random.default_rng(9)
    for _ in range(400):
        a = rng.integers(0, 3, 16)
        full, lean = envs[0].step(a), envs[1].step(a)
        for x, y in zip(full[:4], lean[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(full[4]["equity"], lean[4]["equity"])
        np.testing.assert_array_equal(full[4]["action"], lean[4]["action"])
    assert "fee" in full[4] and "fee" not in lean[4]


def test_observation_is_the_features_state_vector(tmp_path, frame):
    # the step builds observations from precomputed tables; they must be exactly what
    # bot.analysis.features says the state is, for every position, holding time and P&L
    from bot.analysis import features as F

    s = make_settings(tmp_path)
    data = MarketData.from_frames(frame, settings=s)
    env = TradingEnv(data, settings=s, n_envs=6, min_hold=np.array([0, 0, 2, 5, 0, 1]), seed=2)
    starts = np.array([400, 650, 900, 1300, 1700, 2100])
    state = env.reset(starts=starts, ends=starts + 400)
    np.testing.assert_array_equal(state, F.state_vector(data.features[starts], np.zeros(6, np.int64)))
    rng = np.random.default_rng(4)
    prev, held, seen = np.zeros(6, np.int64), np.zeros(6, np.int64), set()
    for k in range(300):
        acts = rng.integers(0, 3, 6) if k % 10 < 5 else np.full(6, k % 3)
        kept = acts.copy()
        state, _, _, _, info = env.step(acts)
        np.testing.assert_array_equal(acts, kept)   # the caller's array is not the env's state
        pos = info["position"]
        held = np.where(pos == 0, 0, np.where(pos == prev, held + 1, 1))
        upnl = np.where(pos != 0, (info["equity"] / info["trade_equity"] - 1.0) * 100.0, 0.0)
        want = F.state_vector(data.features[starts + k + 1], pos, upnl, held)
        np.testing.assert_array_equal(state, want)
        prev = pos
        seen.update(zip(pos.tolist(), held.tolist(), strict=True))
    assert {p for p, _ in seen} == {-1, 0, 1} and max(h for _, h in seen) >= 5, "the run covers the states"


def test_atr_stops_use_the_bots_atr(tmp_path, frame):
    """ATR stops are placed with bot.analysis.indicators.atr (Wilder, seeded with the mean of the
    first ATR_PERIOD true ranges), the risk manager's ATR; checked at the first usable candle,
    where a differently seeded average has not yet forgotten its seed."""
    from bot.analysis.indicators import atr

    s = make_settings(tmp_path, STOP_LOSS_MODE="atr", SLIPPAGE_BPS=10.0)
    data = MarketData.from_frames(frame, settings=s)
    env = TradingEnv(data, settings=s, n_envs=1, use_stops=True)
    t = int(data.segments[0][0])
    env.reset(starts=np.array([t]), ends=np.array([t + 20]))
    env.step(np.array([SHORT]))
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    rel = atr(h, lo, c, s.ATR_PERIOD)[t] / c[t]
    entry = o[t + 1] * (1 - 0.001)
    assert env.stop_px[0] == pytest.approx(entry * (1 + s.STOP_ATR_MULT * rel), rel=1e-12)
    assert env.tp_px[0] == pytest.approx(entry * (1 - s.TAKE_PROFIT_ATR_MULT * rel), rel=1e-12)
