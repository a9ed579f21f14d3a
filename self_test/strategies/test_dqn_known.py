"""`DQNStrategy.known_candles` (bot/strategies/dqn_known.py): told a backtest's candles, the agent
reads its states' market rows and Q-values ahead and takes exactly the decisions it takes
without being told, on the real BTC hourly seed candles with the shipped checkpoint, through the
engine path (`engine_backtest`): the same trades, the same target on every candle. A candle
that is not the told one, and a gap, are decided the ordinary way; after the run the strategy
trades live candles as if it had never been told."""

from __future__ import annotations

import numpy as np
import pytest

from bot.agent.checkpoints import SHIPPED_MODEL
from bot.agent.environment import action_to_target
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.research.backtest import engine_backtest
from bot.strategies import dqn_known
from bot.strategies.base import KnowsCandles, StrategyContext
from bot.strategies.dqn import DQNStrategy
from bot.types import CANDLE_COLUMNS
from self_test.conftest import make_settings

pytestmark = pytest.mark.skipif(not SHIPPED_MODEL.exists(), reason="no shipped DQN checkpoint")

START = 2_100       # warm-up candles: the agent's state needs ~2,050


class Recorded(DQNStrategy):
    """The DQN strategy, recording every decision (close time of the candle, target, Q-values),
    how many were taken while the pair was read ahead (told candles), and each reading ahead.
    Asked on every candle (it says nothing ahead: `holds_ahead` 0), so its decisions compare
    candle by candle; `Coasting` says what it knows."""

    def holds_ahead(self, context, decision) -> int:
        return 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.decisions: list[tuple[int, int]] = []
        self.q_values: list[tuple[float, ...]] = []
        self.positions: list[int] = []
        self.read_ahead = 0
        self.aheads: list[object] = []

    def decide(self, context):
        decision = super().decide(context)
        self.decisions.append((context.time_ms, decision.target))
        self.positions.append(context.position_target)
        self.q_values.append(decision.q_values)
        ahead = self._ahead.get((context.symbol, context.interval))
        if ahead is not None:
            self.read_ahead += 1
            if not self.aheads or self.aheads[-1] is not ahead:
                self.aheads.append(ahead)
        return decision


class Coasting(Recorded):
    """Recorded, and saying ahead on which told candles it keeps its position (the engine then
    does not ask it there: bot/engine/coast.py)."""

    holds_ahead = DQNStrategy.holds_ahead


class NotTold(Recorded):
    """The same strategy, told nothing: every candle the ordinary way (today's path)."""

    def known_candles(self, symbol, times, values) -> None:
        pass


class ToldOtherwise(Recorded):
    """Told the candles with one of them different from the one the run feeds (its high)."""

    changed_at = 3_000

    def known_candles(self, symbol, times, values) -> None:
        if len(times):
            values = np.array(values)
            values[self.changed_at, CANDLE_COLUMNS.index("high")] += 1.0
        super().known_candles(symbol, times, values)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return make_settings(tmp_path_factory.mktemp("dqn-known"))


def run(settings, cls, frame):
    strategy = cls(settings, model_path=SHIPPED_MODEL)
    return strategy, engine_backtest(settings, strategy, frame, start=START)


def trades(result):
    return [(t.side, t.entry_ms, t.exit_ms, t.entry_price, t.exit_price, t.qty, t.pnl, t.reason)
            for t in result.trades]


@pytest.fixture(scope="module")
def frame(btc_hourly):
    return btc_hourly.iloc[-5_500:]     # 3,400 decided candles after the warm-up


@pytest.fixture(scope="module")
def not_told(settings, frame):
    return run(settings, NotTold, frame)


def test_told_candles_give_the_same_trades_and_targets(settings, frame, not_told):
    told, result = run(settings, Recorded, frame)
    blind, expected = not_told
    assert isinstance(told, KnowsCandles)
    assert len(expected.trades) >= 20 and blind.read_ahead == 0
    assert trades(result) == trades(expected)
    assert told.decisions == blind.decisions
    assert told.read_ahead == len(told.decisions) and len(told.aheads) == 1   # from the seed's candle on
    # the Q-values of nearly every decision came from batched passes (one miss per position
    # taken: its first held state starts a prediction); they differ from the one-row pass's in the
    # last bits only, a small part of the tolerance within which sure_row asks torch
    asked = sum(1 for q in told.q_values if q)
    hits = sum(a.q.hits for a in told.aheads if a.q is not None)
    assert hits > 0.95 * asked
    tolerance = [1e-4 * (1.0 + max(abs(x) for x in qb)) for qb in blind.q_values if qb]
    diff = [max(abs(a - b) for a, b in zip(qa, qb, strict=True))
            for qa, qb in zip(told.q_values, blind.q_values, strict=True) if qa and qb]
    assert max(d / t for d, t in zip(diff, tolerance, strict=True)) < 0.05
    assert told._ahead == {} and told._told.runs == {}     # the run is over: nothing is known after it


def test_a_candle_other_than_the_told_one_is_decided_the_ordinary_way(settings, frame, not_told):
    told, result = run(settings, ToldOtherwise, frame)
    blind, expected = not_told
    assert trades(result) == trades(expected)
    assert told.decisions == blind.decisions
    assert told.read_ahead == ToldOtherwise.changed_at - START    # read ahead up to the changed candle


def test_a_gap_reseeds_and_reads_ahead_again(settings, frame):
    gapped = frame.drop(frame.index[3_500:3_505])    # five candles missing: the stream reseeds after them
    told, result = run(settings, Recorded, gapped)
    blind, expected = run(settings, NotTold, gapped)
    assert trades(result) == trades(expected)
    assert told.decisions == blind.decisions
    assert told.read_ahead == len(told.decisions) and len(told.aheads) == 2   # reseeded after the gap


def test_after_the_run_a_live_candle_is_decided_as_without_being_told(settings, btc_hourly):
    frame = btc_hourly.iloc[-5_500:-200]
    told, _ = run(settings, Recorded, frame)
    blind, _ = run(settings, NotTold, frame)
    for k in (1, 2):          # the next live candles, one at a time: the pair's stream follows them
        live = btc_hourly.iloc[-5_500:-200 + k]
        ctx = StrategyContext("BTCUSDT", "60", int(live.index[-1]) + 3_600_000, float(live["close"].iloc[-1]),
                              {"60": live})
        a, b = told.state_for(ctx), blind.state_for(ctx)
        assert a.tobytes() == b.tobytes()
        assert told.decide(ctx) == blind.decide(ctx)
    assert told._ahead == {}


@pytest.mark.parametrize("allow_short", [True, False])
@pytest.mark.parametrize("shorts", [False, True])
def test_the_choices_made_ahead_are_choose_rows(settings, allow_short, shorts):
    """`dqn_known.choices` (a batch's targets, None where not clear of rounding, and confidences
    in array operations) against `_choose_row` row by row, on Q-values near every edge: ties,
    the 1e-4 tolerance, the switch margin, masked shorts, a NaN, large and tiny scales; for the
    shipped agent (flat, long) and one that also goes short."""
    if shorts:
        agent = SelfLearningBot(settings, config=DQNConfig(seed=0, switch_margin=0.1), n_actions=3)
        agent.training = False
        strategy = DQNStrategy(settings, agent=agent)
    else:
        strategy = DQNStrategy(settings, model_path=SHIPPED_MODEL)
        agent = strategy.agent
    rng = np.random.default_rng(7)
    n, a = 3_000, agent.n_actions
    states = rng.normal(size=(n, agent.state_dim)).astype(np.float32)
    states[:, agent._position_cols] = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    margin = agent.config.switch_margin
    q = (rng.normal(size=(n, a)) * 10.0 ** rng.integers(-3, 3, (n, 1))).astype(np.float32)
    edges = np.array([0.0, 1e-6, 5e-5, 1e-4, 2e-4, 1e-3, margin, margin - 1e-4, margin + 1e-4, margin + 1e-6])
    q[:, 1] = q[:, 0] + rng.choice(edges, n) * rng.choice([-1.0, 1.0], n)
    q[::97, 0] = np.nan
    if a > 2:
        q[::5, 2] = -np.inf
    targets, confidences = dqn_known.choices(agent, states, q, allow_short)
    ctx = StrategyContext("BTCUSDT", "60", 0, 1.0, {}, allow_short=allow_short)
    for i in range(n):
        row = q[i].tolist()
        sure = strategy.sure_choice(row, states[i], allow_short)
        assert targets[i] == (None if sure is None else action_to_target(sure[1])), (row, states[i, -5:])
        if sure is not None:
            assert confidences[i] == strategy._choose_row(ctx, states[i], row).confidence
    assert 500 < targets.count(None) < n - 500     # both kinds, many of each


def test_one_strategy_runs_two_backtests_as_without_being_told(settings, frame):
    """The same object through two runs (the second over later candles that overlap the first):
    the pair's stream left by the first run is read ahead or reseeded as the ordinary path would."""
    told, blind = Recorded(settings, model_path=SHIPPED_MODEL), NotTold(settings, model_path=SHIPPED_MODEL)
    for part in (frame.iloc[:4_000], frame.iloc[1_000:]):
        results = [engine_backtest(settings, strategy, part, start=START) for strategy in (told, blind)]
        assert trades(results[0]) == trades(results[1])
    assert told.decisions == blind.decisions and len(told.aheads) == 2


def test_a_pair_seeded_again_while_read_ahead_follows_as_without_being_told(settings, frame):
    """`prime` (the engine adds the pair again) while the pair's stream is read ahead: the stream
    goes back to the ordinary path as it stands, which follows the frame as it would have (no
    reseed from the full computation)."""
    told, blind = DQNStrategy(settings, model_path=SHIPPED_MODEL), DQNStrategy(settings, model_path=SHIPPED_MODEL)
    times = np.asarray(frame.index, dtype=np.int64)
    told.known_candles("BTCUSDT", times, frame[list(CANDLE_COLUMNS)].to_numpy())
    for strategy in (told, blind):
        assert strategy.prime("BTCUSDT", "60", frame.iloc[:START])
    assert ("BTCUSDT", "60") in told._ahead
    for strategy in (told, blind):
        assert strategy.prime("BTCUSDT", "60", frame.iloc[:START + 3])
    assert told._ahead == {}       # followed: a reseed would have read ahead again from its seed
    live = frame.iloc[:START + 4]
    ctx = StrategyContext("BTCUSDT", "60", int(live.index[-1]) + 3_600_000, float(live["close"].iloc[-1]),
                          {"60": live})
    assert told.state_for(ctx).tobytes() == blind.state_for(ctx).tobytes()
    assert told._streams[("BTCUSDT", "60")].last_ms == blind._streams[("BTCUSDT", "60")].last_ms


class OddHeld(Recorded):
    """A state whose held-time feature is not the one `state_for` builds (as if a context told
    the candles held otherwise): the held states predicted ahead never match it."""

    def state_for(self, context):
        state = super().state_for(context)
        if context.state is None and context.position_target != 0:
            state = state.copy()
            state[-1] = np.float32(state[-1] * 0.5)
        return state


class OddHeldNotTold(OddHeld, NotTold):
    pass


class OddHeldCoasting(OddHeld):
    holds_ahead = DQNStrategy.holds_ahead


@pytest.mark.parametrize("told_cls, blind_cls", [(Coasting, NotTold), (OddHeldCoasting, OddHeldNotTold)])
def test_the_candles_it_says_it_keeps_are_the_ones_it_would_keep(settings, frame, told_cls, blind_cls):
    """`DQNStrategy.holds_ahead` through the engine path: on the candles it is not asked, asking
    (without being told: every candle decided) keeps the position; the same trades, equity and
    positions; the decisions it was asked for are the ones made without being told. The held
    states no prediction ahead matches (OddHeld) coast only while the position is young."""
    told, result = run(settings, told_cls, frame)
    blind, expected = run(settings, blind_cls, frame)
    assert trades(result) == trades(expected) and len(expected.trades) >= 10
    assert np.array_equal(result.equity, expected.equity) and np.array_equal(result.position, expected.position)
    every = dict(blind.decisions)
    held = dict(zip((ms for ms, _ in blind.decisions), blind.positions, strict=True))
    assert all(every[ms] == target for ms, target in told.decisions)
    skipped = [ms for ms in every if ms not in dict(told.decisions)]
    assert all(every[ms] == held[ms] for ms in skipped)
    assert len(skipped) > 0.4 * len(every)
    if told_cls is Coasting:
        assert len(skipped) > 0.8 * len(every)


def test_held_states_not_predicted_are_decided_the_ordinary_way(settings, frame):
    told, result = run(settings, OddHeld, frame)
    blind, expected = run(settings, OddHeldNotTold, frame)
    assert trades(result) == trades(expected) and len(expected.trades) >= 10
    assert told.decisions == blind.decisions
    # the flat states' Q-values still come from the batched passes (but the seed candle's), the
    # held ones' never
    flat = sum(1 for q, pos in zip(told.q_values, told.positions, strict=True) if q and pos == 0)
    held = sum(1 for q, pos in zip(told.q_values, told.positions, strict=True) if q and pos != 0)
    hits = sum(a.q.hits for a in told.aheads if a.q is not None)
    assert held > 100 and flat - 1 <= hits <= flat


class Whole(DQNStrategy):
    """Records every decision whole (target, confidence, reason, Q-values) and how many states
    the engine's contexts carried read only (a flat position's told row, handed out as it is);
    asked on every candle."""

    def holds_ahead(self, context, decision) -> int:
        return 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.made: list[tuple[object, ...]] = []
        self.read_only = 0
        self.a_read_only: np.ndarray | None = None

    def decide(self, context):
        if context.state is not None and not context.state.flags.writeable:
            self.read_only += 1
            self.a_read_only = context.state
        d = super().decide(context)
        self.made.append((d.target, d.confidence, d.reason, d.q_values))
        return d


class FreshContext(Whole):
    """`decide` on a copy of the engine's context (its own extras, the state copied): not the
    context `state_for` had, so nothing worked out there is reused."""

    def decide(self, context):
        state = None if context.state is None else np.array(context.state)
        return super().decide(StrategyContext(
            context.symbol, context.interval, context.time_ms, context.price, context.candles,
            context.indicators, context.regime, context.levels, context.position, context.balance, state,
            context.allow_short, dict(context.extra)))


def test_decide_on_the_engines_context_reuses_state_for_with_the_same_decisions(settings, frame):
    """`decide` on the context carrying the state `state_for` just built from a told row takes the
    state and the candles held from there (no second check of the state, no second `_held`): the
    same decisions, field for field, as from a context of its own."""
    reused, result = run(settings, Whole, frame)
    fresh, expected = run(settings, FreshContext, frame)
    assert trades(result) == trades(expected) and len(expected.trades) >= 20
    assert reused.made == fresh.made
    assert reused.read_only > 1_000 and fresh.read_only == 0
    with pytest.raises(ValueError):      # the rows read ahead cannot be changed through a state
        reused.a_read_only[0] = 1.0


def test_a_known_run_holds_the_engines_candles_value_for_value():
    """`KnownRun.holds`: the engine's candles are the told ones when every open time and value is
    equal; compared as bytes when all told values are finite, as floats otherwise (where a NaN
    is never equal, as the ordinary stream's comparison of the last candle finds)."""
    times = np.arange(5, dtype=np.int64) * 3_600_000
    values = np.arange(5 * 6, dtype=np.float64).reshape(5, 6) + 0.5
    run = dqn_known.KnownRun(times, values)
    assert run.bytes is not None
    assert run.holds(times[1:3], values[1:3].copy(), 1, 2) and run.holds(times[4:], values[4:], 4, 4)
    assert not run.holds(times[1:3], values[2:4], 1, 2) and not run.holds(times[2:4], values[1:3], 1, 2)
    changed = values[1:3].copy()
    changed[1, 2] += 1e-9
    assert not run.holds(times[1:3], changed, 1, 2)
    assert not run.holds(times[1:3], values[1:3].astype(np.float32), 1, 2)    # other numbers: not held
    with_nan = values.copy()
    with_nan[3, 4] = np.nan
    run = dqn_known.KnownRun(times, with_nan)
    assert run.bytes is None
    assert run.holds(times[1:3], with_nan[1:3], 1, 2) and not run.holds(times[2:4], with_nan[2:4], 2, 3)
    assert not run.holds(times[1:3], changed, 1, 2)
