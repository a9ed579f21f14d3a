"""Wiring: which exchange, executor, journal, strategy, risk manager, pairs and feed an engine uses.

One function (`build_components`) decides it from the settings and what the caller passed in, so
the engine reads as a loop and tests or the backtester can swap any part. `Broker` is the one
place that knows the executor's and paper exchange's method names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import StrategyError
from bot.types import Candle, Fill

__all__ = ["Components", "Broker", "build_components", "resolve_strategy"]

log = logging.getLogger("bot.engine.trading_engine")


def resolve_strategy(name_or_obj: Any, settings: Any) -> tuple[Any, str]:
    """The strategy object and a note when a fallback was used (never a random decision maker)."""
    from bot.strategies import get_strategy

    if name_or_obj is not None and not isinstance(name_or_obj, str):
        return name_or_obj, ""
    name = (name_or_obj or settings.STRATEGY).strip().lower()
    try:
        return get_strategy(name, settings), ""
    except ImportError as exc:
        if name == "sma":
            raise StrategyError(f"strategy {name!r} cannot be loaded: {exc}") from exc
        try:
            strat = get_strategy("sma", settings)
        except ImportError:
            raise StrategyError(f"strategy {name!r} cannot be loaded ({exc}) and the SMA baseline is "
                                "missing too; no decisions can be made") from exc
        return strat, (f"strategy {name!r} is not available ({exc}); using the SMA crossover baseline "
                       "'sma' instead")


class Broker:
    """Orders for the engine, through the TradeExecutor (sizing, rounding, journal-first ids)."""

    def __init__(self, exchange: Any, executor: Any) -> None:
        self.exchange = exchange
        self.executor = executor

    def size_for(self, equity: float) -> float:
        """The executor's sizing rule in USDT (5 % of equity, at least MIN_ORDER_USDT)."""
        return float(self.executor.notional_for(equity))

    def on_candle(self, candle: Candle) -> list[Fill]:
        """The paper exchange sees the candle (stop-loss / take-profit from its high and low) and
        returns the fills it caused. Live: Bybit's server-side stops are learned by reconcile."""
        fn = getattr(self.exchange, "on_candle", None)
        return list(fn(candle) or []) if fn is not None else []

    def open(self, symbol: str, side: str, notional: float, *, stop_loss: float | None,
             take_profit: float | None, reason: str) -> tuple[bool, str, list[Fill]]:
        res = self.executor.open_position(symbol, side, notional=notional, stop_loss=stop_loss,
                                          take_profit=take_profit, reason=reason)
        return bool(res.ok and res.fills), res.error or ("filled" if res.fills else "not filled"), list(res.fills)

    def close(self, symbol: str, *, reason: str) -> tuple[bool, str, list[Fill]]:
        res = self.executor.close_position(symbol, reason=reason)
        if res is None:
            return False, f"no open position on {symbol}", []
        return bool(res.ok), res.error or "closed", list(res.fills)

    def set_stop(self, symbol: str, stop_loss: float | None) -> None:
        self.exchange.set_trading_stop(symbol, stop_loss=stop_loss)


@dataclass
class Components:
    exchange: Any
    executor: Any
    broker: Broker
    journal: Any
    strategy: Any
    strategy_note: str
    risk: Any
    errors: Any
    pair_manager: Any
    market: Any = None
    review: Any = None          # bot.strategies.review.ReviewPipeline for the analyst strategy, else None


def build_components(engine: Any, mode: str) -> Components:
    """The parts for `mode` (PAPER / LIVE / BACKTEST), reusing whatever the engine was given."""
    from bot.exchange.executor import TradeExecutor
    from bot.market.top_pairs import PairManager
    from bot.safety.error_handler import ErrorHandler
    from bot.safety.risk import RiskManager

    s = engine.settings
    replay = getattr(engine, "replay", False) and mode == "PAPER"
    journal = engine._journal_arg
    if journal is None:
        if mode == "BACKTEST":
            from bot.journal.base import MemoryJournal
            journal = MemoryJournal()
        elif replay:
            # Replayed history gets its own journal and wallet: it must never mix with, or count as,
            # the paper record on live data (the promotion gate reads that one).
            if engine._replay_journal is None:
                from bot.journal.store import Journal
                # for_settings, not Journal(...): it installs the CRASH_AT hook the crash-safety test uses
                engine._replay_journal = Journal.for_settings(s, name="replay_state.db")
            journal = engine._replay_journal
        else:
            journal = engine._main_journal()
    exchange = engine._exchange_arg
    if exchange is None or (mode == "LIVE" and getattr(exchange, "mode", "PAPER") != "LIVE"):
        if mode == "LIVE":
            from bot.exchange.bybit import BybitExchange
            exchange = BybitExchange(s)
        else:
            from bot.exchange.sim import SimExchange
            # The paper wallet persists across restarts; its clock is the market's, so a replayed
            # fill carries the time of the candle it happened in (and lands on the chart there).
            wallet = None if mode != "PAPER" else Path(s.data_dir) / ("replay_wallet.json" if replay
                                                                       else "paper_wallet.json")
            exchange = SimExchange(s, clock=engine.market_clock, state_path=wallet)
    elif getattr(exchange, "name", "") == "paper" and hasattr(exchange, "clock") and (mode == "BACKTEST" or replay):
        exchange.clock = engine.market_clock   # a given paper exchange also fills at candle times
    executor = TradeExecutor(exchange, journal, settings=s, bus=engine.bus)
    broker = Broker(exchange, executor)
    strategy, note = resolve_strategy(engine._strategy_arg, s)
    risk = RiskManager(s, sizer=broker.size_for, journal=journal, bus=engine.bus)
    errors = ErrorHandler(s, bus=engine.bus)
    pair_manager = engine._pairs_arg if engine._pairs_arg is not None else PairManager(s)
    review = None
    if getattr(strategy, "name", "") == "analyst":
        from bot.strategies.review import ReviewPipeline
        review = ReviewPipeline(s, journal=journal, bus=engine.bus)
    return Components(exchange=exchange, executor=executor, broker=broker, journal=journal, strategy=strategy,
                      strategy_note=note, risk=risk, errors=errors, pair_manager=pair_manager,
                      market=engine._market_arg, review=review)
