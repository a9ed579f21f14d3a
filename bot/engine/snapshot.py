"""What the engine shows the world: a frozen snapshot the UI polls, thread-safe by construction."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.types import ClosedTrade, Connection, DataSource, Position

if TYPE_CHECKING:
    from bot.engine.components import Components
    from bot.engine.engine_state import EngineState

__all__ = ["EngineSnapshot", "EngineStatus", "CriterionProgress", "build_snapshot"]


class EngineStatus(enum.StrEnum):
    """What the engine is doing, as the window's status bar says it."""

    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    PAUSED = "Paused"
    CIRCUIT_OPEN = "Circuit open"
    RESTARTING = "Restarting"
    ERROR = "Error"


@dataclass(frozen=True)
class CriterionProgress:
    """One promotion criterion: its name, the required value, where we are, and if it is met."""

    name: str
    required: str
    actual: str
    met: bool


@dataclass(frozen=True)
class EngineSnapshot:
    """The engine's state at one instant. Built by the engine thread, read by anyone."""

    mode: str = "PAPER"                         # PAPER | LIVE
    status: EngineStatus = EngineStatus.STOPPED
    data_source: str = DataSource.REPLAY
    connection: str = Connection.OFFLINE_REPLAY
    account_stream: str = ""                    # live: the private streams, Connected | Polling-REST; "" none
    strategy: str = "dqn"
    equity: float = 0.0
    balance: float = 0.0
    available: float = 0.0
    positions: tuple[Position, ...] = ()
    unclosed: tuple[str, ...] = ()              # symbols a close could not get out of (shown in red)
    recent_trades: tuple[ClosedTrade, ...] = ()
    active_pairs: tuple[str, ...] = ()
    pair_scores: tuple[tuple[str, float], ...] = ()
    last_prices: dict[str, float] = field(default_factory=dict)
    last_candle_ms: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    promotion: tuple[CriterionProgress, ...] = ()
    training: bool = False
    epsilon: float = 0.0
    learner: dict[str, float] = field(default_factory=dict)   # loss, reward, steps ...
    checkpoint: dict[str, Any] = field(default_factory=dict)  # the agent's checkpoint and its walk-forward record
    errors: tuple[str, ...] = ()
    circuit: str = "closed"                     # closed | open | half-open | tripped
    restarts: int = 0
    time_ms: int = 0


def build_snapshot(state: EngineState, parts: Components | None, *, strategy: str, now_ms: int) -> EngineSnapshot:
    """The snapshot of `state` and, when the engine has its parts, of the account (balance,
    positions), the market feed and the risk manager. Reads the exchange: may raise BotError."""
    base: dict[str, Any] = dict(
        mode=state.mode, status=state.status, strategy=strategy, training=state.training, restarts=state.restarts,
        errors=tuple(state.errors_seen), time_ms=now_ms, promotion=state.promotion,
        active_pairs=state.active_pairs, pair_scores=state.pair_scores, last_prices=dict(state.last_prices),
        last_candle_ms=state.last_candle_ms, unclosed=tuple(sorted(state.unclosed)), recent_trades=tuple(list(state.recent_trades)[-50:]))
    if parts is None:
        return EngineSnapshot(**base)
    from bot.strategies.base import LearningStrategy

    bal = parts.exchange.get_balance()
    market = parts.market
    st = state.session
    metrics: dict[str, Any] = dict(state.metrics)
    metrics.update(candles=state.candles_processed, vetoes=parts.risk.vetoes, halted=parts.risk.halted_reason,
                   session_trades=st.trades, session_net_pnl=st.net, session_fees=st.fees,
                   session_win_rate=st.win_rate)
    strat = parts.strategy
    return EngineSnapshot(
        **base, data_source=market.source if market is not None else DataSource.REPLAY,
        connection=market.connection if market is not None else Connection.OFFLINE_REPLAY,
        account_stream=str(getattr(parts.exchange, "stream_state", "") or ""),
        equity=bal.equity, balance=bal.wallet_balance, available=bal.available,
        positions=tuple(p for p in parts.exchange.get_positions() if p.size > 0), metrics=metrics,
        epsilon=float(strat.epsilon or 0.0) if isinstance(strat, LearningStrategy) else 0.0,
        learner=dict(state.learner_stats), circuit=parts.errors.state,
        checkpoint=strat.checkpoint_info() if hasattr(strat, "checkpoint_info") else {})
