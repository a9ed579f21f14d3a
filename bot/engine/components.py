"""Wiring: which exchange, executor, journal, strategy, risk manager, pairs and feed an engine uses.

One function (`build_components`) decides it from the settings and what the caller passed in
(`GivenParts`), so the engine reads as a loop and tests or the backtester can swap any part.
`Journals` knows which journal a session writes. `Broker` is the one place that knows the
executor's and paper exchange's method names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from bot.errors import StrategyError
from bot.journal import store
from bot.journal.base import Journal, MemoryJournal
from bot.types import Candle, Fill

if TYPE_CHECKING:
    import numpy as np

    from bot.events import EventBus
    from bot.exchange.base import Exchange
    from bot.exchange.executor import TradeExecutor
    from bot.exchange.sim import SimExchange
    from bot.market.feeds import MarketFeed
    from bot.market.top_pairs import PairManager
    from bot.safety.error_handler import ErrorHandler
    from bot.safety.risk import RiskManager
    from bot.strategies.base import Strategy
    from bot.strategies.review import ReviewPipeline
    from config import Settings

__all__ = ["Components", "GivenParts", "Journals", "EngineJournal", "durable", "Broker", "build_components",
           "resolve_strategy"]

log = logging.getLogger("bot.engine")

# The journal a session writes: the SQLite record (paper, live, replay) or, in a backtest, the
# in-memory journal, which keeps orders and fills and answers the rest empty.
EngineJournal: TypeAlias = "Journal"


def durable(journal: EngineJournal) -> Journal | None:
    """`journal` when it keeps the record (positions, round trips, equity, state), None in a
    backtest: recovery and the promotion gate must not read an empty in-memory record as the truth."""
    return None if isinstance(journal, MemoryJournal) else journal


def resolve_strategy(name_or_obj: Strategy | str | None, settings: Settings) -> tuple[Strategy, str]:
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

    def __init__(self, exchange: Exchange, executor: TradeExecutor) -> None:
        from bot.exchange.sim import SimExchange

        self.exchange = exchange
        self.executor = executor
        # the paper exchange's candle step, looked up once: it runs on every candle of every pair
        self._paper: SimExchange | None = exchange if isinstance(exchange, SimExchange) else None
        self._paper_candle = self._paper.on_candle if self._paper is not None else None

    def size_for(self, equity: float) -> float:
        """The executor's sizing rule in USDT (5 % of equity, at least MIN_ORDER_USDT)."""
        return float(self.executor.notional_for(equity))

    def on_candle(self, candle: Candle) -> list[Fill]:
        """The paper exchange sees the candle (stop-loss / take-profit from its high and low) and
        returns the fills it caused. Live: Bybit's server-side stops are learned by reconcile."""
        return self._paper_candle(candle) if self._paper_candle is not None else []

    def quiet_candles(self, symbol: str, values: np.ndarray) -> int:
        """Paper: how many of these candles, from the first, trigger nothing on the exchange
        (`SimExchange.quiet_candles`). Live: 0 (Bybit's stops are its own)."""
        return self._paper.quiet_candles(symbol, values) if self._paper is not None else 0

    def mark_quiet(self, symbol: str, close_ms: list[int], closes: list[float]) -> list[float]:
        """Paper: `on_candle` for the quiet candles counted, each one's equity after it."""
        if self._paper is None:
            raise RuntimeError("mark_quiet is the paper exchange's (quiet_candles counts none live)")
        return self._paper.mark_quiet(symbol, close_ms, closes)

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
    """The parts of one session (rebuilt after a critical error: a broken client must not survive)."""

    exchange: Exchange
    executor: TradeExecutor
    broker: Broker
    journal: EngineJournal
    strategy: Strategy
    strategy_note: str                 # why a fallback strategy is used; "" when none is
    risk: RiskManager
    errors: ErrorHandler
    pair_manager: PairManager
    market: MarketFeed | None = None   # set when a session chose its feed; None when driven by hand
    review: ReviewPipeline | None = None   # proposal -> analyst review -> risk review (the analyst)


@dataclass(frozen=True)
class GivenParts:
    """The parts the caller handed the engine that `build_components` uses; whatever is missing
    is built from the settings. (A given journal goes to `Journals`, a given pair manager stays
    with the engine: they outlive one mode's parts.)"""

    strategy: Strategy | str | None = None     # a name ("dqn", "analyst", "sma") or an object; default STRATEGY
    market: MarketFeed | None = None
    exchange: Exchange | None = None


class Journals:
    """Which journal a session writes: the given one; in a backtest an in-memory one; in a replay
    its own `replay_state.db` (replayed history must never mix with, or count as, the paper record
    the promotion gate reads); else the paper/live record `state.db`. Opened when first needed;
    `close` closes the ones opened here."""

    def __init__(self, settings: Settings, given: EngineJournal | None) -> None:
        self.settings = settings
        self.given = given
        self._record: EngineJournal | None = None
        self._replay: EngineJournal | None = None

    def record(self) -> EngineJournal:
        """The journal of the real paper/live record (consent lives here, never in a replay's)."""
        if self.given is not None:
            return self.given
        if self._record is None:
                    # for_settings, not Journal(...): it installs the CRASH_AT hook the crash-safety test uses
            self._record = store.Journal.for_settings(self.settings)
        return self._record

    def record_exists(self) -> bool:
        """Is there a paper record to read (given, or state.db on disk)? Looking creates nothing."""
        return self.given is not None or (Path(self.settings.data_dir) / "state.db").exists()

    def for_session(self, mode: str, *, replay: bool) -> EngineJournal:
        if self.given is not None:
            return self.given
        if mode == "BACKTEST":
            return MemoryJournal()
        if replay and mode == "PAPER":
            if self._replay is None:
                            self._replay = store.Journal.for_settings(self.settings, name="replay_state.db")
            return self._replay
        return self.record()

    def close(self) -> None:
        for j in (self._record, self._replay):
            rec = durable(j) if j is not None else None
            if rec is not None:
                rec.close()
        self._record = self._replay = None


def build_components(settings: Settings, mode: str, *, given: GivenParts, journal: EngineJournal,
                     pair_manager: PairManager, replay: bool, bus: EventBus,
                     market_clock: Callable[[], float]) -> Components:
    """The parts for `mode` (PAPER / LIVE / BACKTEST), reusing whatever the caller gave.
    `market_clock`: the paper exchange's clock (candle times when replaying or backtesting)."""
    from bot.exchange.executor import TradeExecutor
    from bot.exchange.sim import SimExchange
    from bot.safety.error_handler import ErrorHandler
    from bot.safety.risk import RiskManager
    from bot.strategies.base import ProposesForReview

    replay = replay and mode == "PAPER"
    exchange: Exchange
    if given.exchange is None or (mode == "LIVE" and given.exchange.mode != "LIVE"):
        if mode == "LIVE":
            from bot.exchange.bybit import BybitExchange
            exchange = BybitExchange(settings, view_seconds=settings.ACCOUNT_REFRESH_SECONDS)
        else:
            # The paper wallet persists across restarts; its clock is the market's, so a replayed
            # fill carries the time of the candle it happened in (and lands on the chart there).
            wallet = None if mode != "PAPER" else Path(settings.data_dir) / ("replay_wallet.json" if replay
                                                                              else "paper_wallet.json")
            exchange = SimExchange(settings, clock=market_clock, state_path=wallet)
    else:
        exchange = given.exchange
        if isinstance(exchange, SimExchange) and (mode == "BACKTEST" or replay):
            exchange.clock = market_clock   # a given paper exchange also fills at candle times
    executor = TradeExecutor(exchange, journal, settings=settings, bus=bus)
    broker = Broker(exchange, executor)
    strategy, note = resolve_strategy(given.strategy, settings)
    risk = RiskManager(settings, sizer=broker.size_for, journal=journal, bus=bus)
    errors = ErrorHandler(settings, bus=bus)
    review = None
    if isinstance(strategy, ProposesForReview) and strategy.proposes_for_review:
        from bot.strategies.review import ReviewPipeline
        # The backtest's memory journal keeps no reviews or lessons: the pipeline then only publishes.
        review = ReviewPipeline(settings, journal=durable(journal), bus=bus)
    return Components(exchange=exchange, executor=executor, broker=broker, journal=journal, strategy=strategy,
                      strategy_note=note, risk=risk, errors=errors, pair_manager=pair_manager,
                      market=given.market, review=review)
