"""The strategy protocol: anything that turns market context into a target position.

The engine, backtester and optimiser take any strategy by name (`dqn`, `analyst`, `sma`), all
through `Strategy.decide(context) -> Decision`. The DQN agent is one implementation; the
rule-based analyst and the SMA baseline are others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from bot.records import fast_init
from bot.types import Balance, Position

if TYPE_CHECKING:
    from bot.agent.self_learning import SelfLearningBot

__all__ = ["Decision", "StrategyContext", "Strategy", "WarmsUp", "LearningStrategy", "ProposesForReview",
           "BatchSignals", "NeedsInterval", "KnowsCandles", "HoldsAhead", "interval_refusal", "FLAT", "LONG", "SHORT", "SETUPS"]

FLAT, LONG, SHORT = 0, 1, -1
SETUPS = ("pullback", "breakout", "consolidation", "none")


@dataclass(frozen=True, init=False)
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

    def __init__(self, symbol: str, interval: str, time_ms: int, price: float, candles: dict[str, pd.DataFrame],
                 indicators: dict[str, np.ndarray] | None = None, regime: str = "choppy",
                 levels: tuple[tuple[float, int], ...] = (), position: Position | None = None,
                 balance: Balance | None = None, state: np.ndarray | None = None, allow_short: bool = True,
                 extra: dict[str, Any] | None = None) -> None:
        # The engine makes one (the agent: two) per candle of every pair: the fields go straight
        # into the instance's dict, a third of what the frozen dataclass's __init__ costs (one
        # object.__setattr__ per field). Still frozen: assigning a field raises.
        d = self.__dict__
        d["symbol"] = symbol
        d["interval"] = interval
        d["time_ms"] = time_ms
        d["price"] = price
        d["candles"] = candles
        d["indicators"] = {} if indicators is None else indicators
        d["regime"] = regime
        d["levels"] = levels
        d["position"] = position
        d["balance"] = balance
        d["state"] = state
        d["allow_short"] = allow_short
        d["extra"] = {} if extra is None else extra

    @property
    def position_target(self) -> int:
        """The current position as a target: +1 long, -1 short, 0 flat."""
        if self.position is None or self.position.size <= 0:
            return FLAT
        return LONG if self.position.side == "long" else SHORT


@fast_init
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


# -- capabilities: what a strategy can do besides deciding. The engine, the backtester and the CLI
# ask with isinstance (each is runtime_checkable), never by the strategy's name.

@runtime_checkable
class WarmsUp(Protocol):
    """A strategy that needs `warmup` closed candles of a pair before it can be asked."""

    @property
    def warmup(self) -> int: ...


@runtime_checkable
class KnowsCandles(Protocol):
    """A strategy that can be told, before a run, the candles the run will feed it for a symbol
    (a backtest's; `values` in CANDLE_COLUMNS order, `times` their open times), to work out its
    numbers that depend on the candles alone in one vector pass. Its decisions must be exactly
    the ones it makes without being told (each strategy tests that), and a candle it was not
    told about is decided the ordinary way. Told no candles for a symbol (the run is over), it
    forgets that symbol's."""

    def known_candles(self, symbol: str, times: np.ndarray, values: np.ndarray) -> None: ...


@runtime_checkable
class HoldsAhead(KnowsCandles, Protocol):
    """A strategy told its candles (`KnowsCandles`) that can also say, having just decided to keep
    its position (`decision.target` is `context.position_target`), on how many of the told
    candles right after `context`'s it would decide the same again, candle after candle, as long
    as the position stays exactly as in `context` and the candles fed are the told ones. The
    engine then does not ask it on those candles (`bot.engine.coast`): the same decisions,
    without making them one by one. Each strategy tests that its answer never counts a candle on
    which asking would have given another target; 0 means "ask me on the next one"."""

    def holds_ahead(self, context: StrategyContext, decision: Decision) -> int: ...


@runtime_checkable
class LearningStrategy(Strategy, Protocol):
    """A strategy that learns online from what the engine did (the DQN agent).

    The engine builds its state once per candle (`state_for`; decide and learn share it), seeds
    that state from history off the candle path (`prime`), hands it each transition with the
    position actually held (`observe`, then `learn`), checkpoints it (`save`), and restores the
    `agent`'s newest checkpoint before the first trade (bot/engine/recovery.py)."""

    training: bool
    agent: SelfLearningBot

    @property
    def epsilon(self) -> float: ...

    def state_for(self, context: StrategyContext) -> np.ndarray: ...

    def prime(self, symbol: str, interval: str, frame: pd.DataFrame) -> bool: ...

    def observe(self, state: np.ndarray, target: int, reward: float, next_state: np.ndarray, done: bool = False,
                *, symbol: str = "", time_ms: int = 0) -> None: ...

    def learn(self) -> float | None: ...

    def save(self, path: str | Path | None = None) -> Path: ...


@runtime_checkable
class ProposesForReview(Protocol):
    """A strategy whose entries are proposals: the review pipeline (analyst review -> risk review,
    bot/strategies/review.py) may veto them before the risk manager (the analyst)."""

    proposes_for_review: bool


@runtime_checkable
class NeedsInterval(Protocol):
    """A strategy that cannot work on every candle interval (the analyst builds 4 h and daily
    candles from the bot's candles, so those must be shorter). Asked before a run starts, so a
    user gets one line instead of an error on every candle."""

    def interval_problem(self, interval: str) -> str | None:
        """Why this strategy cannot trade `interval` candles, in a user's words; None when it can."""
        ...


def interval_refusal(strategy: Any, interval: str) -> str | None:
    """The strategy's reason not to run on `interval` candles, if it has one."""
    return strategy.interval_problem(str(interval)) if isinstance(strategy, NeedsInterval) else None


@runtime_checkable
class BatchSignals(Protocol):
    """A strategy that can say at once what it would do on every candle of a frame: the
    backtester's fast path (bot/research/fast_path.py) and the optimiser use it (the SMA cross)."""

    def signals(self, frame: pd.DataFrame) -> np.ndarray:
        """Targets for every candle and every position state: int8 array of shape (n, 3)."""
        ...

    def stop_distances(self, frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-candle stop-loss and take-profit distances in price (None when not used)."""
        ...
