"""Stretches of told candles the strategy keeps its position through (bot/engine/coast.py): the
engine does not ask the strategy on them, and takes them in at once while nothing can trigger on
the paper exchange (`CandleStep.coast_told`). Everything a backtest leaves must be what asking on
every candle leaves: trades, the equity and position curves, the paper exchange's equity points
and account, the risk manager's day, peak and halts (and the critical events they raise), the
pair's history, indicators and candles held. Real BTC hourly seed candles throughout."""

from __future__ import annotations

import numpy as np
import pytest

from bot.engine.trading_engine import TradingEngine
from bot.events import EventKind
from bot.research.backtest import engine_backtest
from bot.strategies.base import FLAT, LONG, Decision
from bot.types import CANDLE_COLUMNS, Candle
from self_test.conftest import make_settings


class AlwaysLong:
    """Wants a long position on every candle (the risk manager's default stop and take-profit
    close it, often inside a stretch); counts how often it is asked."""

    name = "always-long"

    def __init__(self) -> None:
        self.asked = 0

    def decide(self, context):
        self.asked += 1
        return Decision(LONG, reason="always long")


class AlwaysLongAhead(AlwaysLong):
    """The same decisions, and it says so ahead: every told candle after a kept long is kept
    too (while flat, it wants in: nothing to keep)."""

    def known_candles(self, symbol, times, values) -> None:
        pass

    def holds_ahead(self, context, decision) -> int:
        return 10**9 if context.position_target == LONG else 0


def run(settings, strategy, frame, monkeypatch):
    """`engine_backtest` of `strategy` over `frame`, with the engine it made and every event it emitted."""
    made: list[tuple[TradingEngine, object]] = []
    prepare = TradingEngine.prepare

    def keep(self, *args, **kwargs):
        out = prepare(self, *args, **kwargs)
        made.append((self, self.subscribe()))
        return out

    monkeypatch.setattr(TradingEngine, "prepare", keep)
    result = engine_backtest(settings, strategy, frame, start=1000)
    engine, events = made[0]
    got = []
    while not events.empty():
        e = events.get_nowait()
        got.append((e.kind, e.message))
    return result, engine, got


def left(result, engine):
    """Everything the run left that a stretch could have changed."""
    ps, st, risk, sim = engine.state.pairs["BTCUSDT"], engine.state, engine.c.risk, engine.c.exchange
    trades = [(t.side, t.entry_ms, t.exit_ms, t.entry_price, t.exit_price, t.qty, t.pnl, t.fees, t.reason)
              for t in result.trades]
    return (trades, result.equity.tolist(), result.position.tolist(), list(sim._state.equity), sim.get_balance(),
            sim.get_price("BTCUSDT"), ps.t.tolist(), ps.v.tolist(), ps.regime, ps.stream.atr, ps.stream.adx,
            ps.held_candles, st.candles_processed, dict(st.last_prices), st.last_candle_ms, st.last_close_ms,
            risk.day, risk.peak_equity, risk.day_start_equity, risk.halted_reason)


@pytest.mark.parametrize("limits", [{}, {"DAILY_LOSS_LIMIT": 0.004, "MAX_DRAWDOWN": 0.02}])
def test_a_backtest_that_coasts_leaves_what_asking_every_candle_leaves(tmp_path, btc_hourly, monkeypatch, limits):
    settings = make_settings(tmp_path, **limits)
    frame = btc_hourly.iloc[:7_000]
    asked, coasted = AlwaysLong(), AlwaysLongAhead()
    expected, e1, events1 = run(settings, asked, frame, monkeypatch)
    result, e2, events2 = run(settings, coasted, frame, monkeypatch)
    assert left(result, e2) == left(expected, e1)
    assert events2 == events1
    reasons = {t.reason for t in expected.trades}
    assert len(expected.trades) > 50 and {"stop-loss", "take-profit"} <= reasons   # stops hit inside stretches
    assert asked.asked == 6_000 - 1
    if limits:    # the limits broke inside stretches too, and raised the same critical events (after
        # the drawdown halt no entry is allowed: flat, the strategy wants in on every candle)
        assert sum(1 for kind, _ in events1 if kind == EventKind.CRITICAL) >= 5
        assert e1.c.risk.halted_reason.startswith("drawdown") and coasted.asked < asked.asked / 2
    else:
        assert coasted.asked < asked.asked / 4


class Counting(AlwaysLongAhead):
    """Records the open time of every candle it is asked on."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[int] = []

    def decide(self, context):
        self.times.append(context.time_ms - 3_600_000)
        return super().decide(context)


def test_a_candle_other_than_the_told_one_ends_the_stretch(tmp_path, btc_hourly):
    """Candle by candle (`process_candle`), a candle whose values are not the told ones is
    decided, whatever the strategy said ahead; so is the candle after a fill on the pair."""
    from bot.exchange.sim import SimExchange
    from bot.journal.base import MemoryJournal

    s = make_settings(tmp_path)
    frame = btc_hourly.iloc[:1400]
    t = frame.index.to_numpy(dtype=np.int64)
    v = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)

    def asked_on(told):
        now = [0.0]
        strategy = Counting()
        e = TradingEngine(s, strategy=strategy, exchange=SimExchange(s, clock=lambda: now[0]),
                          journal=MemoryJournal(), clock=lambda: now[0])
        e.prepare("BACKTEST")
        e.step.known_candles("BTCUSDT", t, told)
        for i in range(len(t)):
            c = Candle("BTCUSDT", "60", int(t[i]), *v[i].tolist())
            now[0] = c.close_ms / 1000.0
            e.process_candle(c)
        return set(strategy.times), {f.time_ms for f in e.c.exchange._state.fills}

    asked, fills = asked_on(v)
    assert len(asked) < 1400 - 200 - 500       # coasted on most candles
    after_fill = [int(t[i + 1]) for i in range(300, 1399) if int(t[i]) + 3_600_000 in fills]
    assert after_fill and all(ms in asked for ms in after_fill)
    inside = [i for i in range(1100, 1399) if int(t[i]) not in asked and int(t[i - 1]) not in asked]
    for column in ("volume", "open"):             # told otherwise than fed, inside a stretch: asked there
        told = v.copy()
        told[inside[0], CANDLE_COLUMNS.index(column)] += 1.0
        assert int(t[inside[0]]) in asked_on(told)[0]


def test_flat_stretches_and_a_position_kept_both_coast(tmp_path, btc_hourly, monkeypatch):
    """A strategy that keeps flat ahead: every candle after its first decision is taken at once,
    the account untouched; nothing differs from asking."""

    class Flat:
        name = "flat"

        def __init__(self) -> None:
            self.asked = 0

        def decide(self, context):
            self.asked += 1
            return Decision(FLAT)

    class FlatAhead(Flat):
        def known_candles(self, symbol, times, values) -> None:
            pass

        def holds_ahead(self, context, decision) -> int:
            return 10**9

    settings = make_settings(tmp_path)
    frame = btc_hourly.iloc[:3_000]
    a, b = Flat(), FlatAhead()
    expected, e1, _ = run(settings, a, frame, monkeypatch)
    result, e2, _ = run(settings, b, frame, monkeypatch)
    assert left(result, e2) == left(expected, e1)
    assert a.asked == 2_000 - 1 and b.asked == 1
    assert result.equity.tolist() == [settings.PAPER_START_BALANCE] * 2_000


@pytest.mark.parametrize("options", [{}, {"fast": 7, "slow": 55, "atr_stop": 2.0, "take_profit": 3.0}])
def test_the_sma_coasts_to_the_same_backtest(tmp_path, btc_hourly, monkeypatch, options):
    """The SMA crossover keeps its position between crosses (`SMACrossStrategy.holds_ahead`): the
    engine path with its stretches leaves what asking on every candle leaves, with and without
    its own ATR stop and take-profit."""
    from bot.strategies.sma import SMACrossStrategy

    class Asked(SMACrossStrategy):
        def holds_ahead(self, context, decision) -> int:
            return 0

    settings = make_settings(tmp_path)
    frame = btc_hourly.iloc[:8_000]
    expected, e1, events1 = run(settings, Asked(settings, **options), frame, monkeypatch)
    result, e2, events2 = run(settings, SMACrossStrategy(settings, **options), frame, monkeypatch)
    assert left(result, e2) == left(expected, e1) and events2 == events1
    assert len(expected.trades) > 100
