"""The DQN agent as a Strategy: `decide(context)` -> Decision(target in {-1, 0, +1}).

Wraps `SelfLearningBot` (bot/self_learning.py). In the live / paper loop the engine calls
`decide`, computes the reward of the step with `bot.reward_system.RewardSystem`, then
`observe(state, target, reward, next_state, done)` and `learn()`; `save()` writes a checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bot.environment import SHORT_ACTION, action_to_target, target_to_action
from bot.errors import StrategyError
from bot.strategies.base import Decision, StrategyContext

__all__ = ["DQNStrategy"]

log = logging.getLogger("bot.agent")

FEATURE_HISTORY = 2_000   # candles used to compute the live state (EMA-200 has converged by then)


class DQNStrategy:
    """The self-learning agent behind the Strategy protocol."""

    name = "dqn"

    def __init__(self, settings: Any, *, model_path: str | Path | None = None, agent: Any = None) -> None:
        from bot.self_learning import SelfLearningBot

        self.settings = settings
        self.agent = agent if agent is not None else SelfLearningBot(settings)
        self.model_path: Path | None = None
        if agent is None:
            if model_path is not None:
                self.model_path = self.agent.load(model_path)   # asked for: must exist and fit
            elif self.agent.store.latest() is not None:
                self.model_path = self.agent.load()
            else:
                log.warning("no trained DQN checkpoint in %s: the agent starts untrained "
                            "(run `python -m bot train` first)", self.agent.store.root)

    # -- the knobs the UI shows -----------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        return self.agent.epsilon

    @property
    def training(self) -> bool:
        return self.agent.training

    @training.setter
    def training(self, value: bool) -> None:
        self.agent.training = bool(value)

    # -- deciding -------------------------------------------------------------------------------
    def state_for(self, context: StrategyContext) -> np.ndarray:
        """The state vector of the context's last candle: `context.state`, or built from its candles."""
        if context.state is not None:
            s = np.asarray(context.state, np.float32)
            if s.shape != (self.agent.state_dim,):
                raise StrategyError(f"context.state has shape {s.shape}; the agent expects "
                                    f"({self.agent.state_dim},)")
            return s
        from bot import features as F

        frame = context.candles.get(context.interval)
        window = self.settings.STATE_WINDOW
        need = F.warmup_length(window, self.settings) + 1
        if frame is None or len(frame) < need:
            have = 0 if frame is None else len(frame)
            raise StrategyError(f"the DQN state needs {need} closed {context.interval} candles of "
                                f"{context.symbol}, got {have}")
        market = F.market_features(frame.iloc[-FEATURE_HISTORY:], window=window, settings=self.settings)[-1]
        pos = context.position_target
        upnl_pct = 0.0
        if context.position is not None and pos != 0 and context.position.entry_price > 0:
            upnl_pct = pos * (context.price / context.position.entry_price - 1.0) * 100.0
        held = (self._held(context) or 0) if pos != 0 else 0
        return F.state_vector(np.nan_to_num(market), pos, upnl_pct, held)

    def _held(self, context: StrategyContext) -> int | None:
        """Candles the current position has been held, when the context tells."""
        if "candles_held" in context.extra:
            return int(context.extra["candles_held"])
        p, frame = context.position, context.candles.get(context.interval)
        if p is None or not p.opened_ms or frame is None or len(frame) < 2:
            return None
        step = max(int(frame.index[-1] - frame.index[-2]), 1)
        return max(int((context.time_ms - p.opened_ms) // step), 0)

    def decide(self, context: StrategyContext) -> Decision:
        state = self.state_for(context)
        held = self._held(context)
        current = context.position_target
        if current != 0 and held is not None and held < self.agent.config.min_hold:
            # the same action persistence the agent was trained with
            return Decision(target=current, confidence=50.0, source=self.name,
                            reason=f"holding: {held} of the minimum {self.agent.config.min_hold} candles")
        q = self.agent.q_values(state)
        if not context.allow_short and len(q) > SHORT_ACTION:
            q = q.copy()
            q[SHORT_ACTION] = -np.inf
        action = int(self.agent.greedy(q[None], state[None])[0])
        explored = False
        if self.agent.training and self.agent.rng.random() < self.agent.epsilon:
            allowed = len(q) if context.allow_short else min(len(q), SHORT_ACTION)
            action, explored = int(self.agent.rng.integers(0, allowed)), True
        finite = q[np.isfinite(q)]
        p = np.exp(finite - finite.max())
        confidence = float(np.clip(100.0 * p.max() / p.sum(), 0.0, 100.0)) if not explored else 0.0
        target = action_to_target(action)
        why = "exploring (random action)" if explored else (
            f"greedy: Q flat/long/short = {', '.join(f'{x:.3f}' for x in self.agent.q_values(state))}")
        return Decision(target=target, confidence=confidence, reason=why, source=self.name,
                        q_values=tuple(float(x) for x in self.agent.q_values(state)))

    # -- learning -------------------------------------------------------------------------------
    def observe(self, state: np.ndarray, target: int, reward: float, next_state: np.ndarray, done: bool = False,
                *, symbol: str = "", time_ms: int = 0) -> None:
        """Remember one step of live experience; `target` is the position taken (-1, 0, +1)."""
        action = target_to_action(target)
        if not 0 <= action < self.agent.n_actions:
            raise StrategyError(f"target {target!r} is not a position this agent can take "
                                f"({'flat, long, short' if self.agent.n_actions == 3 else 'flat, long: no shorts'})")
        self.agent.observe(state, action, reward, next_state, done, symbol=symbol, time_ms=time_ms)

    def learn(self) -> float | None:
        """One gradient step when training is on; returns the loss (None when nothing was learned)."""
        if not self.agent.training:
            return None
        return self.agent.learn()

    def save(self, path: str | Path | None = None) -> Path:
        self.model_path = self.agent.save(path)
        return self.model_path

    def load(self, path: str | Path | None = None) -> Path:
        self.model_path = self.agent.load(path)
        return self.model_path
