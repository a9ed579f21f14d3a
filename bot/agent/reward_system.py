"""The reward the agent learns from: what its equity did, net of fees, plus optional shaping.

One formula for training (vectorised over N episodes) and for online learning (scalars):

    reward = log(equity_after / equity_before)                 # fees and slippage already paid
             - REWARD_TRADE_PENALTY       * position_changes   # 0, 1 (open/close) or 2 (flip)
             - REWARD_DRAWDOWN_PENALTY    * max(0, drawdown_after - drawdown_before)
             - REWARD_LOSING_TIME_PENALTY * [holding a trade that is under water]
             + REWARD_NO_STOP_BONUS       * [a trade was closed by the agent, not by its stop]

Why log equity: the sum of rewards over an episode is exactly the log of the episode's growth
after costs, so maximising reward is maximising compounded net return, and a fee is punished
exactly as much as it hurts. Every shaping term defaults to 0 (config.py); they exist because
peers' agents overtrade, and a per-change penalty on top of the fee is the bluntest cure.
Drawdown is measured from the episode's peak equity, as a fraction (0.1 = 10 % under the peak).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RewardSystem", "RewardWeights"]


@dataclass(frozen=True)
class RewardWeights:
    """The shaping weights, each per unit named in config.py (REWARD_*)."""

    trade_penalty: float = 0.0
    drawdown_penalty: float = 0.0
    losing_time_penalty: float = 0.0
    no_stop_bonus: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> "RewardWeights":
        return cls(trade_penalty=settings.REWARD_TRADE_PENALTY,
                   drawdown_penalty=settings.REWARD_DRAWDOWN_PENALTY,
                   losing_time_penalty=settings.REWARD_LOSING_TIME_PENALTY,
                   no_stop_bonus=settings.REWARD_NO_STOP_BONUS)


class RewardSystem:
    """Turns one step of equity and position changes into a reward (arrays or scalars)."""

    def __init__(self, weights: RewardWeights | None = None) -> None:
        self.weights = weights or RewardWeights()

    @classmethod
    def from_settings(cls, settings: Any, **overrides: float) -> "RewardSystem":
        """The reward configured in `settings`; keyword overrides replace single weights."""
        w = RewardWeights.from_settings(settings)
        if overrides:
            unknown = set(overrides) - set(RewardWeights.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown reward weight(s) {sorted(unknown)}; allowed: "
                                 f"{sorted(RewardWeights.__dataclass_fields__)}")
            w = RewardWeights(**{**w.__dict__, **overrides})
        return cls(w)

    def compute(self, equity_before: Any, equity_after: Any, *, position_changes: Any = 0,
                drawdown_before: Any = 0.0, drawdown_after: Any = 0.0, losing: Any = False,
                closed_without_stop: Any = False, validate: bool = True) -> Any:
        """The reward of one step. Every argument may be a scalar or an array of the same shape.

        - `equity_before` / `equity_after`: marked-to-market equity, after fees and slippage.
        - `position_changes`: |new target - old target| in {0, 1, 2} (a flip long->short is 2).
        - `drawdown_before` / `drawdown_after`: fraction below the running peak.
        - `losing`: a trade is open and its unrealised P&L is negative after the step.
        - `closed_without_stop`: a trade was closed this step by the agent's own decision.
        - `validate`: check that equity is positive (the environment guarantees it and skips this).
        """
        eb = np.asarray(equity_before, dtype=np.float64)
        ea = np.asarray(equity_after, dtype=np.float64)
        if validate and (np.any(eb <= 0) or np.any(ea <= 0)):
            raise ValueError("equity must stay positive to take its log; got "
                             f"before={np.min(eb)!r}, after={np.min(ea)!r}")
        w = self.weights
        r = np.log(ea / eb)
        if w.trade_penalty:
            r = r - w.trade_penalty * np.asarray(position_changes, dtype=np.float64)
        if w.drawdown_penalty:
            grow = np.asarray(drawdown_after, dtype=np.float64) - np.asarray(drawdown_before, dtype=np.float64)
            r = r - w.drawdown_penalty * np.maximum(grow, 0.0)
        if w.losing_time_penalty:
            r = r - w.losing_time_penalty * np.asarray(losing, dtype=np.float64)
        if w.no_stop_bonus:
            r = r + w.no_stop_bonus * np.asarray(closed_without_stop, dtype=np.float64)
        return float(r) if r.ndim == 0 else r
