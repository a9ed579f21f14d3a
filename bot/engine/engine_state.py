"""What the engine knows between candles: its pairs, its round trips, its counters.

One `EngineState` per `TradingEngine`, written by the engine thread (the candle step and the
session) or, without a thread, by whoever drives `process_candle`; other threads read it only
through the frozen snapshot (bot/engine/snapshot.py). It outlives sessions: a restart or a
change of data source starts the pairs afresh (`new_session`) but keeps the trades, counters
and errors the window shows.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.engine.snapshot import CriterionProgress, EngineStatus
from bot.engine.state import PairState, TradeBook
from bot.types import ClosedTrade, Mode

__all__ = ["EngineState", "SessionStats"]


UNCLOSED = "unclosed_"   # journal state key prefix: a position a close could not get out of


def unclosed_in(journal: Any) -> dict[str, str]:
    """symbol -> why, for the positions `journal` marks unclosed (None: no durable journal)."""
    if journal is None:
        return {}
    return {key[len(UNCLOSED):]: str((value or {}).get("error", ""))
            for key, value in journal.states(UNCLOSED).items() if value is not None}


@dataclass
class SessionStats:
    """Round trips closed since the engine was built (money in USDT, net of fees)."""

    trades: int = 0
    wins: int = 0
    net: float = 0.0
    fees: float = 0.0

    def add(self, trade: ClosedTrade) -> None:
        self.trades += 1
        self.wins += trade.pnl > 0
        self.net += trade.pnl
        self.fees += trade.fees

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0


@dataclass
class EngineState:
    """The engine's memory. `mode`: PAPER | LIVE | BACKTEST; `replay`: the session replays recorded
    candles (its own journal and wallet); `paused`: no new decisions (set from any thread)."""

    mode: Mode = Mode.PAPER
    training: bool = False
    replay: bool = False
    status: EngineStatus = EngineStatus.STOPPED
    paused: threading.Event = field(default_factory=threading.Event)
    pairs: dict[str, PairState] = field(default_factory=dict)
    active_pairs: tuple[str, ...] = ()
    pair_scores: tuple[tuple[str, float], ...] = ()
    book: TradeBook = field(default_factory=TradeBook)
    recent_trades: deque[ClosedTrade] = field(default_factory=lambda: deque(maxlen=200))
    equity_points: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=5000))
    errors_seen: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    last_prices: dict[str, float] = field(default_factory=dict)
    last_candle_ms: int = 0          # open time of the newest candle processed
    last_close_ms: int = 0           # close time of the newest candle processed
    candles_processed: int = 0
    restarts: int = 0
    promotion: tuple[CriterionProgress, ...] = ()
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)   # the paper record's
    learner_stats: dict[str, float] = field(default_factory=dict)   # loss, reward, steps
    # (steps, loss, reward, epsilon) per learner step, saved with each checkpoint (Training tab)
    learner_curve: deque[tuple[float, float, float, float]] = field(default_factory=lambda: deque(maxlen=5000))
    session: SessionStats = field(default_factory=SessionStats)
    ready_alerted: bool = False      # "READY FOR LIVE" said once per engine, not once a minute
    # symbol -> why: positions a close could not get out of by CLOSE_DEADLINE_SECONDS (journal
    # state `unclosed_<symbol>`); the window shows them in red until a close gets through
    unclosed: dict[str, str] = field(default_factory=dict)

    def new_session(self) -> None:
        """A new session (first start, restart, or a change of data source) starts its pairs afresh."""
        self.pairs.clear()
        self.last_prices.clear()
        self.last_candle_ms = self.last_close_ms = 0

    def market_time(self, wall: float) -> float:
        """Seconds since the epoch as the market sees it: the close of the last candle when
        replaying or backtesting (so paper fills carry candle times), else `wall`."""
        if self.last_close_ms and (self.mode == "BACKTEST" or self.replay):
            return self.last_close_ms / 1000.0
        return wall
