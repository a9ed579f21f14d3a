"""What the engine shows the world: a frozen snapshot the UI polls, thread-safe by construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.types import ClosedTrade, Connection, DataSource, Position

__all__ = ["EngineSnapshot", "EngineStatus", "CriterionProgress"]


class EngineStatus:
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
    status: str = EngineStatus.STOPPED
    data_source: str = DataSource.REPLAY
    connection: str = Connection.OFFLINE_REPLAY
    strategy: str = "dqn"
    equity: float = 0.0
    balance: float = 0.0
    available: float = 0.0
    positions: tuple[Position, ...] = ()
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
    errors: tuple[str, ...] = ()
    circuit: str = "closed"                     # closed | open | half-open | tripped
    restarts: int = 0
    time_ms: int = 0
