"""Online learning in the candle step (`CandleStep` is an `OnlineLearning`): the agent learns
from each transition of a pair with the position actually held (the reward from the pair's own
P&L over the step, fees included, through `RewardSystem`), after each batch's orders are out,
and its checkpoint is written with the Training tab's curves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.atomic import atomic_write_json
from bot.engine.past import LEARNER_CURVE_FILE
from bot.errors import BotError
from bot.types import Position

if TYPE_CHECKING:
    from bot.agent.reward_system import RewardSystem
    from bot.engine.engine_state import EngineState
    from bot.engine.state import PairState
    from bot.strategies.base import LearningStrategy, StrategyContext
    from config import Settings

__all__ = ["OnlineLearning"]

log = logging.getLogger("bot.engine")

# What the learner remembers between two candles of a pair, and what it learns from after the
# batch's orders: (pair, context, (equity, pair value) before the step).
_Pending = tuple["PairState", "StrategyContext", tuple[float, float]]


class OnlineLearning:
    """`CandleStep`'s methods for the agent's online learning."""

    # the step's own, set by CandleStep.__init__
    settings: Settings
    state: EngineState
    learner: LearningStrategy | None
    reward: RewardSystem
    _pending_learn: list[_Pending]

    def position(self, symbol: str) -> Position | None:
        raise NotImplementedError   # the step's

    def report_error(self, exc: BaseException, context: str) -> None:
        raise NotImplementedError   # the step's

    def flush_learning(self) -> None:
        """Learn from the steps of the last batch of candles. The loop calls it after every pair's
        order went out, so a gradient step never delays another pair's order."""
        pending, self._pending_learn = self._pending_learn, []
        for ps, ctx, before in pending:
            self._learn(ps, ctx, before)

    def _learn(self, ps: PairState, ctx: StrategyContext, before: tuple[float, float]) -> None:
        """Online learning: the transition from the previous candle of this pair to this one.

        The reward is the pair's own P&L over the step (fees of the action included, marked at
        the close) as a log-return of the account equity, through `RewardSystem`; the action is
        the position actually held after the risk manager, not the one the agent asked for."""
        learner = self.learner
        if ctx.state is None or learner is None:
            return
        if not self.state.training:
            ps.learn_prev = None
            return
        pos = self.position(ps.symbol)
        taken = 0 if pos is None else pos.direction
        eq_now, value_now = before
        prev = ps.learn_prev
        stats = self.state.learner_stats
        if prev is not None:
            s0, was0, took0, eq0, v0 = prev
            after = eq0 + (value_now - v0)
            if eq0 > 0 and after > 0:
                reward = float(self.reward.compute(eq0, after, position_changes=abs(took0 - was0)))
                loss: float | None
                try:
                    learner.observe(s0, took0, reward, ctx.state, False, symbol=ps.symbol, time_ms=ctx.time_ms)
                    loss = learner.learn()
                except BotError as exc:
                    self.report_error(exc, f"{ps.symbol}: learner")
                    loss = None
                stats["reward"] = reward
                if loss is not None:
                    stats["loss"] = float(loss)
                    # the agent's own count: it carries over a restart with its checkpoint
                    stats["steps"] = float(max(learner.agent.gradient_steps, int(stats.get("steps", 0)) + 1))
                    self.state.learner_curve.append((stats["steps"], stats["loss"], reward, float(learner.epsilon)))
                    if int(stats["steps"]) % self.settings.CHECKPOINT_EVERY == 0:
                        self.checkpoint()
        ps.learn_prev = (ctx.state, ctx.position_target, taken, eq_now, value_now)

    def checkpoint(self) -> None:
        """Write the agent's checkpoint (nothing to write for strategies that do not learn)."""
        if self.learner is None:
            return
        try:
            path = self.learner.save()
            log.info("agent checkpoint written: %s", path)
            # the Training tab's curves, next to the checkpoint (bot/engine/past.py reads them back)
            atomic_write_json(Path(path).parent / LEARNER_CURVE_FILE, list(self.state.learner_curve))
        except (BotError, OSError) as exc:
            self.report_error(BotError(str(exc)) if isinstance(exc, OSError) else exc, "agent checkpoint")
