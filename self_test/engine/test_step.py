"""The candle step on its own (bot/engine/step.py): built from its parts and a state, no engine
around it, it makes the very trades the engine makes on the same real candles."""

from __future__ import annotations

import pandas as pd

from bot.engine.components import GivenParts, build_components
from bot.engine.engine_state import EngineState
from bot.engine.state import TradeBook
from bot.engine.step import CandleStep
from bot.engine.trading_engine import TradingEngine
from bot.events import EventBus, EventKind
from bot.exchange.sim import SimExchange
from bot.journal.base import MemoryJournal
from bot.market.feeds import ReplayMarket
from bot.market.top_pairs import PairManager
from self_test.conftest import make_settings


def ms(day: str) -> int:
    return pd.Timestamp(day, tz="UTC").value // 1_000_000


def candles(s, start: str, end: str) -> list:
    market = ReplayMarket(s, symbols=["BTCUSDT"], pace=0, start_ms=ms(start), end_ms=ms(end))
    out = []
    while not market.exhausted:
        out += market.next_candles(["BTCUSDT"], 0)
    return out


def test_a_bare_step_trades_like_the_engine(tmp_path) -> None:
    s = make_settings(tmp_path, CANDLE_INTERVAL="D", STRATEGY="sma", TRAINING_ENABLED=False, STOP_ATR_MULT=1.5)
    feed = candles(s, "2018-01-15", "2018-07-01")
    state = EngineState(mode="BACKTEST", book=TradeBook(mode="PAPER"))
    bus = EventBus()
    q = bus.subscribe()
    sim = SimExchange(s)
    parts = build_components(s, "BACKTEST", given=GivenParts(strategy="sma", exchange=sim), journal=MemoryJournal(),
                             pair_manager=PairManager(s), replay=False, bus=bus,
                             market_clock=lambda: state.market_time(0.0))
    step = CandleStep(s, parts, state, bus, clock=lambda: 0.0)
    for c in feed:
        step.process_candle(c)
    engine = TradingEngine(s, exchange=SimExchange(s))
    for c in feed:
        engine.process_candle(c)

    def key(trades) -> list:
        return [(t.side, t.entry_price, t.exit_price, t.reason) for t in trades]

    assert len(state.recent_trades) >= 3 and key(state.recent_trades) == key(engine.recent_trades)
    assert state.candles_processed == len(feed) and state.last_close_ms == feed[-1].close_ms
    assert state.session.trades == len(state.recent_trades)
    assert sim.closed_trades()[-1].exit_ms <= feed[-1].close_ms     # fills carry candle times, not the wall clock
    kinds = [q.get_nowait().kind for _ in range(q.qsize())]
    assert kinds.count(EventKind.TRADE) + kinds.count(EventKind.STOP_LOSS) + kinds.count(
        EventKind.TAKE_PROFIT) >= len(state.recent_trades)


def test_the_pause_is_the_states(tmp_path) -> None:
    """Paused (from any thread, through the state), the step takes candles in and decides nothing."""
    s = make_settings(tmp_path, CANDLE_INTERVAL="D", STRATEGY="sma", TRAINING_ENABLED=False)
    state = EngineState(mode="BACKTEST")
    bus = EventBus()
    parts = build_components(s, "BACKTEST", given=GivenParts(strategy="sma"), journal=MemoryJournal(),
                             pair_manager=PairManager(s), replay=False, bus=bus,
                             market_clock=lambda: state.market_time(0.0))
    step = CandleStep(s, parts, state, bus, clock=lambda: 0.0)
    state.paused.set()
    for c in candles(s, "2018-01-15", "2018-07-01"):
        step.process_candle(c)
    assert state.candles_processed > 100 and not state.recent_trades and parts.exchange.get_positions() == []
