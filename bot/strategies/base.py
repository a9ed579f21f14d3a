"""The strategy protocol: anything that turns market context into a target position.

The engine, backtester and optimiser take any strategy by name (`dqn`, `analyst`, `sma`), all
through `Strategy.decide(context) -> Decision`. The DQN agent is one implementation; the
rule-based analyst and the SMA baseline are others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from bot.types import Balance, Position

__all__ = ["Decision", "StrategyContext", "Strategy", "FLAT", "LONG", "SHORT", "SETUPS"]

FLAT, LONG, SHORT = 0, 1, -1
SETUPS = ("pullback", "breakout", "consolidation", "none")


@dataclass(frozen=True)
class StrategyContext:
    """Everything a strategy may look at when one candle closes. Nothing after `time_ms`.

    - `candles`: closed candles per interval ("60", "240", "D", ...), canonical frames
      (index = open time ms, columns open/high/low/close/volume/turnover), newest last.
    - `indicators`: arrays aligned with `candles[interval]` of the entry interval, by name.
    - `levels`: support/resistance levels [(price, touches), ...] below/above the price.
    - `state`: the agent's state vector for the last candle (None if the strategy builds its own).
    """

    symbol: str
    interval: str
    time_ms: int
    price: float
    candles: dict[str, pd.DataFrame]
    indicators: dict[str, np.ndarray] = field(default_factory=dict)
    regime: str = "choppy"
    levels: tuple[tuple[float, int], ...] = ()
    position: Position | None = None
    balance: Balance | None = None
    state: np.ndarray | None = None
    allow_short: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def position_target(self) -> int:
        """The current position as a target: +1 long, -1 short, 0 flat."""
        if self.position is None or self.position.size <= 0:
            return FLAT
        return LONG if self.position.side == "long" else SHORT


@dataclass(frozen=True)
class Decision:
    """What a strategy wants: a target position and why."""

    target: int                                  # +1 long, 0 flat, -1 short
    confidence: float = 50.0                     # 0..100
    setup: str = "none"                          # pullback / breakout / consolidation / none
    entry_zone: tuple[float, float] | None = None
    stop_loss: float | None = None               # suggested; the risk manager has the last word
    take_profit: float | None = None
    reason: str = ""
    source: str = ""                             # which strategy decided
    q_values: tuple[float, ...] | None = None    # the agent's Q-values, when it is the DQN

    def __post_init__(self) -> None:
        if self.target not in (FLAT, LONG, SHORT):
            raise ValueError(f"Decision.target must be -1, 0 or 1, got {self.target!r}")
        if not 0.0 <= self.confidence <= 100.0:
            raise ValueError(f"Decision.confidence must be within 0..100, got {self.confidence!r}")
        if self.setup not in SETUPS:
            raise ValueError(f"Decision.setup must be one of {SETUPS}, got {self.setup!r}")


@runtime_checkable
class Strategy(Protocol):
    """A decision maker. `observe`/`learn` are no-ops for strategies that do not learn."""

    name: str

    def decide(self, context: StrategyContext) -> Decision: ...
