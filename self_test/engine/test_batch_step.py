"""Pairs whose candles close together, taken as one batch (CandleStep.process_batch, what the
engine loop calls): the same trades as one candle after the other, the agent deciding for all
pairs in one forward pass, and no candle frame built that nobody reads."""

from __future__ import annotations

import numpy as np
import pytest

from bot.agent.checkpoints import SHIPPED_MODEL
from bot.agent.self_learning import SelfLearningBot
from bot.engine.candle_frames import CandleFrames
from bot.engine.components import GivenParts, build_components
from bot.engine.engine_state import EngineState
from bot.engine.state import TradeBook
from bot.engine.step import CandleStep
from bot.events import EventBus
from bot.exchange.sim import SimExchange
from bot.journal.base import MemoryJournal
from bot.market.top_pairs import PairManager
from bot.strategies.base import StrategyContext
from bot.strategies.dqn import DQNStrategy
from bot.types import Candle, Position
from self_test.conftest import FIXTURES, make_settings

PAIRS = 4


def pair_candles(btc_hourly, n: int) -> list[list[Candle]]:
    """PAIRS real hourly stretches of the seed, 3,000 hours apart, on one clock: batch t holds
    every pair's t-th candle."""
    clock = btc_hourly.index[:n]
    batches: list[list[Candle]] = [[] for _ in range(n)]
    for p in range(PAIRS):
        part = btc_hourly.iloc[p * 3000:p * 3000 + n]
        vals = part[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
        for t in range(n):
            batches[t].append(Candle(f"P{p}USDT", "60", int(clock[t]), *map(float, vals[t])))
    return batches


def a_step(s) -> tuple[CandleStep, SimExchange]:
    sim = SimExchange(s)
    state = EngineState(mode="BACKTEST", book=TradeBook(mode="PAPER"))
    parts = build_components(s, "BACKTEST", given=GivenParts(strategy=s.STRATEGY, exchange=sim),
                             journal=MemoryJournal(), pair_manager=PairManager(s), replay=False, bus=EventBus(),
                             market_clock=lambda: state.market_time(0.0))
    return CandleStep(s, parts, state, EventBus(), clock=lambda: 0.0), sim


def test_a_batch_makes_the_trades_of_one_candle_after_the_other(tmp_path, btc_hourly):
    s = make_settings(tmp_path, CANDLE_INTERVAL="60", STRATEGY="sma", TRAINING_ENABLED=False,
                      MAX_OPEN_POSITIONS=PAIRS, MAX_TOTAL_RISK=1.0)
    batches = pair_candles(btc_hourly, 700)
    batched, sim_b = a_step(s)
    single, sim_s = a_step(s)
    for batch in batches:
        batched.process_batch(batch)
        for c in batch:
            single.process_candle(c)
    # within a batch every pair's stop fills before any pair's signal: compare in (exit, pair) order
    a, b = (sorted(sim.closed_trades(), key=lambda t: (t.exit_ms, t.symbol)) for sim in (sim_b, sim_s))
    assert len(a) >= 4 * PAIRS and len({t.symbol for t in a}) == PAIRS
    assert {t.reason for t in a} >= {"signal", "stop-loss"}
    assert [(t.symbol, t.side, t.entry_ms, t.exit_ms, t.reason) for t in a] == \
        [(t.symbol, t.side, t.entry_ms, t.exit_ms, t.reason) for t in b]
    # every pair is marked before any pair's entry is sized: the equity behind a size can differ
    # in the marks of the pairs after it in the batch, no more
    np.testing.assert_allclose([t.qty for t in a], [t.qty for t in b], rtol=0.02)
    assert batched.state.candles_processed == single.state.candles_processed == PAIRS * len(batches)


@pytest.fixture
def dqn(tmp_path):
    s = make_settings(tmp_path, CANDLE_INTERVAL="60", STRATEGY="dqn", TRAINING_ENABLED=False)
    agent = SelfLearningBot(s)
    agent.training = False
    return s, DQNStrategy(s, agent=agent)


def contexts(btc_hourly, positions: list[Position | None]) -> list[StrategyContext]:
    out = []
    for p, pos in enumerate(positions):
        part = btc_hourly.iloc[p * 2500:p * 2500 + 2000]
        t = int(part.index[-1]) + 3_600_000
        out.append(StrategyContext(symbol=f"P{p}USDT", interval="60", time_ms=t, price=float(part["close"].iat[-1]),
                                   candles={"60": part}, position=pos))
    return out


def position(symbol: str, side: str, entry: float, opened_ms: int) -> Position:
    return Position(symbol=symbol, side=side, size=0.01, entry_price=entry, mark_price=entry, opened_ms=opened_ms)


def test_the_agent_decides_a_batch_in_one_forward_pass_as_it_decides_each(dqn, btc_hourly):
    s, strat = dqn
    flat = contexts(btc_hourly, [None] * 6)
    # two pairs in a position: one young (min_hold keeps it, no network), one old enough to change
    young = position("P1USDT", "long", float(btc_hourly["close"].iat[2500 + 1990]), flat[1].time_ms - 3 * 3_600_000)
    old = position("P4USDT", "short", float(btc_hourly["close"].iat[10000 + 1900]), flat[4].time_ms - 99 * 3_600_000)
    ctxs = contexts(btc_hourly, [None, young, None, None, old, None])
    strat._fast_q = None        # the torch pass, whose calls the hook counts (the NumPy one: test below)
    calls = []
    hook = strat.agent.q.register_forward_hook(lambda _m, inputs, _out: calls.append(inputs[0].shape[0]))
    try:
        batch = strat.decide_batch(ctxs)
    finally:
        hook.remove()
    assert calls == [5]                     # one pass, for every pair but the one min_hold keeps
    one = [strat.decide(c) for c in ctxs]
    assert [d.target for d in batch] == [d.target for d in one]
    assert batch[1].target == 1 and batch[1].q_values is None
    for a, b in zip(batch, one, strict=True):
        if a.q_values is not None:
            np.testing.assert_allclose(a.q_values, b.q_values, rtol=1e-5, atol=1e-6)
    assert len({d.q_values for d in batch if d.q_values}) == 5   # five different states went through


def test_the_agent_reads_the_engines_arrays_and_no_frame_is_built(dqn, btc_hourly):
    s, strat = dqn
    part = btc_hourly.iloc[:2001]
    t = np.asarray(part.index, dtype=np.int64)
    v = part[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
    strat.prime("BTCUSDT", "60", part.iloc[:-1])          # the stream seeded as the engine does
    built = []

    def build():
        built.append(1)
        return part

    frames = CandleFrames("60", build, (t, v))
    ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(t[-1]) + 3_600_000,
                          price=float(v[-1, 3]), candles=frames)
    state = strat.state_for(ctx)
    assert built == []                                   # the stream followed the arrays
    strat.incremental = False                            # the full computation on the frame itself
    full = strat.state_for(StrategyContext(symbol="BTCUSDT", interval="60", time_ms=ctx.time_ms,
                                           price=ctx.price, candles={"60": part}))
    np.testing.assert_allclose(state, full, rtol=1e-4, atol=1e-4)
    assert frames["60"] is part and built == [1]         # read as a dict, the frame is built once
    assert "60" in frames and len(frames) == 1 and list(frames) == ["60"]


@pytest.mark.parametrize("model", ["single", "shipped"])
def test_the_numpy_forward_pass_decides_as_torch_and_defers_to_it_near_a_tie(tmp_path, btc_hourly, model):
    """A non-learning agent decides from a NumPy copy of its network (a single net, or the shipped
    default, a seed ensemble: its members' mean); each decision equals the torch network's, and a
    choice within float rounding of a tie is left to torch."""
    from bot.strategies.dqn import _sure
    s = make_settings(tmp_path, CANDLE_INTERVAL="60", STRATEGY="dqn", TRAINING_ENABLED=False)
    agent = SelfLearningBot(s)
    agent.load(FIXTURES / "dqn_golden.pt" if model == "single" else SHIPPED_MODEL)
    agent.training = False
    fast, slow = DQNStrategy(s, agent=agent), DQNStrategy(s, agent=agent)
    slow._fast_q = None
    ctxs = []
    for end in range(2000, 6000, 13):
        part = btc_hourly.iloc[end - 2000:end]
        pos = None if end % 3 else position("BTCUSDT", "long" if end % 2 else "short",
                                           float(part["close"].iat[-40]), int(part.index[-40]))
        ctxs.append(StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(part.index[-1]) + 3_600_000,
                                    price=float(part["close"].iat[-1]), candles={"60": part}, position=pos))
    a, b = fast.decide_batch(ctxs), slow.decide_batch(ctxs)
    assert fast._fast_q is not None and fast._fast_q is not False                  # the NumPy pass ran
    assert [d.target for d in a] == [d.target for d in b]
    assert len({d.target for d in a}) >= 2                                         # the comparison can fail
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.q_values, y.q_values, rtol=1e-5, atol=1e-5)
    q = np.array([1.0, 1.0 + 1e-6, -3.0], np.float32)
    assert not _sure(q, -1, 0.0)                          # a near tie: torch decides
    assert _sure(np.array([1.0, 2.0, -3.0], np.float32), -1, 0.0)
    assert not _sure(np.array([1.0, 1.5 + 1e-6, -3.0], np.float32), 0, 0.5)   # at the switch margin
