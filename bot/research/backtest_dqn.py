"""The DQN agent on the fast backtest path: one batched pass, then a cheap sequential loop.

The agent's state is the candle's market features followed by the position features (flat /
long / short, unrealised P&L, candles held). The market features of every candle come from one
call of `bot.analysis.features.market_features` over the whole frame, and the greedy action of every
candle *while flat* from one batched forward pass of the Q-network (flat has no P&L and no age,
so those states are known in advance). While a position is open its state depends on the path
(entry price, age), so the loop evaluates the network for that one state: a single small forward
pass, no pandas, no indicators.

Decisions equal `DQNStrategy.decide` with training off (greedy, with the agent's switch
hysteresis and shorts masked where they are not allowed); an open position's state goes through
the same NumPy pass and near-tie rule as the engine path (`DQNStrategy.sure_choice`), torch only
when the choice is within float rounding. The engine computes the market
features over the last `FEATURE_HISTORY` candles; over a longer frame the slow EMAs here carry
more history, a difference far below the features' precision once 2,000 candles have passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DQNPolicy", "dqn_fast_backtest"]


class DQNPolicy:
    """`policy(i, position, upnl_pct, held) -> target` for the fast loop, for one frame."""

    def __init__(self, strategy: Any, frame: pd.DataFrame, settings: Any) -> None:
        from bot.agent.environment import SHORT_ACTION, action_to_target
        from bot.analysis import features as F

        self.agent = strategy.agent
        self._F = F
        self._to_target = action_to_target
        self._short = SHORT_ACTION
        self.allow_short = bool(getattr(settings, "allows_short", True))
        self.min_hold = int(self.agent.config.min_hold)   # DQNStrategy.decide keeps a position this long
        window = settings.STATE_WINDOW
        self.first = F.warmup_length(window, settings)           # first candle with a complete state
        self.market = np.nan_to_num(F.market_features(frame, window=window, settings=settings))
        flat = F.state_vector(self.market, np.zeros(len(frame), dtype=np.int64), 0.0, 0)
        q = self.agent.q_values(flat)
        if not self.allow_short and q.shape[1] > SHORT_ACTION:
            q[:, SHORT_ACTION] = -np.inf
        self.flat_targets = [action_to_target(int(a)) for a in self.agent.greedy(q, flat)]
        # an open position's state, one candle at a time: the NumPy pass when its choice is clear of
        # float rounding (DQNStrategy.sure_choice: the engine path's rule, so torch's choice), else torch
        self.strategy = strategy
        numpy_pass = getattr(strategy, "numpy_pass", None)
        self.fast = numpy_pass() if numpy_pass is not None else None

    def __call__(self, i: int, position: int, upnl_pct: float, held: int) -> int:
        if i < self.first:
            return 0          # the engine cannot build a state yet either
        if position == 0:
            return self.flat_targets[i]
        if held < self.min_hold:
            return position
        s = self._F.state_vector(self.market[i], position, upnl_pct, held)
        if self.fast is not None:
            sure = self.strategy.sure_choice(self.fast(s[None])[0].tolist(), s, self.allow_short)
            if sure is not None:
                return self._to_target(sure[1])
        q = self.agent.q_values(s)
        if not self.allow_short and len(q) > self._short:
            q = q.copy()
            q[self._short] = -np.inf
        return self._to_target(int(self.agent.greedy(q[None], s[None])[0]))


def dqn_fast_backtest(settings: Any, strategy: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT",
                      interval: str = "60", start: int = 0) -> Any:
    """The DQN agent over `frame` on the fast path, with the bot's risk manager judging entries."""
    import time

    from bot.research.fast_path import costs_for, fast_backtest, params_of, with_elapsed
    from bot.research.risk_gate import RiskGate
    from bot.strategies.base import LearningStrategy

    t0 = time.perf_counter()
    if isinstance(strategy, LearningStrategy):
        strategy.training = False        # a backtest judges the agent as it is: greedy, no learning
    policy = DQNPolicy(strategy, frame, settings)
    res = fast_backtest(frame, None, costs_for(settings, symbol, frame), symbol=symbol, interval=interval,
                        strategy=getattr(strategy, "name", "dqn"), params=params_of(strategy), start=start,
                        risk=RiskGate(settings, frame, symbol=symbol), policy=policy)
    return with_elapsed(res, time.perf_counter() - t0)
