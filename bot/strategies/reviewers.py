"""The reviewers' shared vocabulary (a verdict, what a proposal looks like on record) and the two
deterministic rule reviewers. The pipeline that runs them is `bot.strategies.review`; the LLM
reviewer (`bot.strategies.llm_reviewer`) speaks the same vocabulary and falls back to these rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bot.errors import BotError
from bot.strategies.base import FLAT, LONG, Decision, StrategyContext
from bot.strategies.lessons import Lesson, effective_limits

__all__ = ["Verdict", "ReviewOutcome", "Reviewer", "RuleAnalystReviewer", "RuleRiskReviewer",
           "STAGES", "proposal_record", "needs_review", "reward_risk", "side_name", "entry_adx"]

log = logging.getLogger(__name__)
STAGES = ("analyst", "risk")


@dataclass(frozen=True)
class Verdict:
    """One reviewer's answer. `reviewer` says who: "rules", "llm:<model>", or
    "rules (llm <why>)" when the LLM could not answer and the rules decided."""

    stage: str
    reviewer: str
    approved: bool
    reason: str
    confidence: float | None = None
    fallback: str = ""      # why the LLM was not used: timeout / down / garbage / http 500 ...

    @property
    def verdict(self) -> str:
        return "approve" if self.approved else "veto"


@dataclass(frozen=True)
class ReviewOutcome:
    """What the pipeline decided: the decision to act on and every verdict on the way."""

    approved: bool
    decision: Decision
    verdicts: tuple[Verdict, ...] = ()
    reviewed: bool = True

    @property
    def reason(self) -> str:
        return "; ".join(f"{v.stage} ({v.reviewer}): {v.verdict}: {v.reason}" for v in self.verdicts)


class Reviewer(Protocol):
    stage: str

    def review(self, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson]) -> Verdict: ...


# ----------------------------------------------------------------------------------------------
# helpers shared by the reviewers

def side_name(target: int) -> str:
    return "long" if target == LONG else "short" if target != FLAT else "flat"


def reward_risk(proposal: Decision, price: float) -> float | None:
    """Take-profit distance / stop distance, or None when either is missing."""
    if proposal.stop_loss is None or proposal.take_profit is None:
        return None
    risk = abs(price - proposal.stop_loss)
    return abs(proposal.take_profit - price) / risk if risk > 0 else None


def last(context: StrategyContext, name: str) -> float | None:
    """The newest finite value of indicator `name` in the context, if present."""
    arr = context.indicators.get(name)
    if arr is None or len(arr) == 0:
        return None
    v = float(np.asarray(arr, dtype=float)[-1])
    return v if np.isfinite(v) else None


def entry_adx(context: StrategyContext, settings: Any) -> float | None:
    """ADX 14 of the analyst's entry timeframe (ANALYST_ENTRY_INTERVAL), resampled from the
    context's closed candles; None when they are too few or the interval does not divide."""
    from bot.analysis import indicators
    from bot.market.timeframes import resample

    frame = context.candles.get(context.interval)
    if frame is None or len(frame) == 0:
        return None
    try:
        entry = resample(frame, context.interval, settings.ANALYST_ENTRY_INTERVAL, as_of_ms=context.time_ms)
    except BotError:
        return None
    if len(entry) < 3 * 14:
        return None
    v = float(indicators.adx(entry["high"].to_numpy(), entry["low"].to_numpy(), entry["close"].to_numpy(), 14)[0][-1])
    return v if np.isfinite(v) else None


def needs_review(proposal: Decision, context: StrategyContext) -> bool:
    """Reviews guard new exposure only: opening a position or reversing one."""
    return proposal.target != FLAT and proposal.target != context.position_target


def proposal_record(proposal: Decision, context: StrategyContext) -> dict[str, Any]:
    """The proposal as a plain dict for the journal and the lessons (JSON-safe)."""
    rec = {"time_ms": int(context.time_ms), "symbol": context.symbol, "interval": context.interval,
           "price": float(context.price), "side": side_name(proposal.target), "target": proposal.target,
           "setup": proposal.setup, "regime": context.regime, "confidence": float(proposal.confidence),
           "entry_zone": list(proposal.entry_zone) if proposal.entry_zone else None,
           "stop_loss": proposal.stop_loss, "take_profit": proposal.take_profit,
           "reward_risk": reward_risk(proposal, context.price), "reason": proposal.reason,
           "source": proposal.source}
    adx = last(context, "adx_14")
    if adx is not None:
        rec["adx"] = adx
    return rec


def _geometry_problem(proposal: Decision, price: float) -> str | None:
    """Stop on the losing side and target on the winning side of the price, or what is wrong."""
    sign = 1 if proposal.target == LONG else -1
    if proposal.stop_loss is not None and sign * (price - proposal.stop_loss) <= 0:
        return f"stop {proposal.stop_loss:.2f} is not on the losing side of the price {price:.2f}"
    if proposal.take_profit is not None and sign * (proposal.take_profit - price) <= 0:
        return f"take-profit {proposal.take_profit:.2f} is not on the winning side of the price {price:.2f}"
    return None


# ----------------------------------------------------------------------------------------------
# the deterministic reviewers

class RuleAnalystReviewer:
    """Setup quality: a known setup, enough confidence (raised by lessons), the ADX floor of a
    lesson (ADX of the analyst's entry timeframe, as the analyst reads it), sane stop and target,
    reward/risk. So a lesson tightens the analyst even where the engine built it without one."""

    stage = "analyst"
    name = "rules"

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def review(self, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson] = ()) -> Verdict:
        s = self.settings
        side = side_name(proposal.target)

        def veto(reason: str) -> Verdict:
            return Verdict(self.stage, self.name, False, reason, proposal.confidence)

        explains_itself = proposal.setup != "none" or proposal.stop_loss is not None
        if not explains_itself:
            # Opaque strategies (the DQN agent, the SMA baseline) propose no setup or stop; the
            # risk manager sets their stop. Only lesson rules can apply to them.
            limits = effective_limits(lessons, s, regime=context.regime, setup="none", side=side)
            if proposal.confidence < limits.min_confidence and limits.sources:
                return veto(f"confidence {proposal.confidence:.0f} < {limits.min_confidence:.0f} "
                            f"required by a lesson for {side} trades in a {context.regime} regime")
            return Verdict(self.stage, self.name, True,
                           f"{proposal.source or 'strategy'} gives no setup or stop; left to the risk rules",
                           proposal.confidence)
        if proposal.setup == "none":
            return veto("no recognised setup (pullback, breakout or consolidation)")
        limits = effective_limits(lessons, s, regime=context.regime, setup=proposal.setup, side=side)
        if proposal.confidence < limits.min_confidence:
            why = " (raised by a lesson)" if limits.min_confidence > s.ANALYST_MIN_CONFIDENCE else ""
            return veto(f"confidence {proposal.confidence:.0f} below the minimum {limits.min_confidence:.0f}{why}")
        if limits.min_adx is not None:
            adx = entry_adx(context, s)
            if adx is None or adx <= limits.min_adx:
                shown = "unknown" if adx is None else f"{adx:.0f}"
                return veto(f"lesson: {side} {proposal.setup}s in a {context.regime} regime need "
                            f"ADX > {limits.min_adx:.0f} on {s.ANALYST_ENTRY_INTERVAL}, ADX is {shown}")
        if proposal.stop_loss is None or proposal.take_profit is None:
            return veto("a setup without stop-loss and take-profit")
        problem = _geometry_problem(proposal, context.price)
        if problem:
            return veto(problem)
        rr = reward_risk(proposal, context.price)
        if rr is None or rr < s.MIN_REWARD_RISK - 1e-9:
            return veto(f"reward/risk {rr or 0:.2f} below {s.MIN_REWARD_RISK:.2f}")
        return Verdict(self.stage, self.name, True,
                       f"{side} {proposal.setup}, confidence {proposal.confidence:.0f} >= "
                       f"{limits.min_confidence:.0f}, reward/risk {rr:.2f}", proposal.confidence)


class RuleRiskReviewer:
    """Risk: shorts allowed, a margin to trade with, no entry into a volatility spike, a sane stop,
    and extra confidence demanded in a volatile regime."""

    stage = "risk"
    name = "rules"
    VOLATILE_EXTRA_CONFIDENCE = 15.0  # a volatile market must be more convincing

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def review(self, proposal: Decision, context: StrategyContext, lessons: Sequence[Lesson] = ()) -> Verdict:
        s = self.settings

        def veto(reason: str) -> Verdict:
            return Verdict(self.stage, self.name, False, reason, proposal.confidence)

        if proposal.target < 0 and not (context.allow_short and s.allows_short):
            return veto("short positions are not possible on this market (spot)")
        if context.balance is not None and context.balance.available < s.MIN_ORDER_USDT:
            return veto(f"available margin {context.balance.available:.2f} {context.balance.coin} is below "
                        f"the minimum order {s.MIN_ORDER_USDT:.2f}")
        # The engine's indicators call it "atr" (ATR_PERIOD), compute_all also "atr_14".
        atr = context.indicators.get("atr", context.indicators.get("atr_14"))
        if atr is not None and len(atr) >= 20:
            window = np.asarray(atr[-100:], dtype=float)
            window = window[np.isfinite(window)]
            if len(window) and window[-1] > s.VOLATILITY_SPIKE_RATIO * float(np.median(window)):
                return veto(f"volatility spike: ATR is {window[-1] / np.median(window):.1f}x its median")
        if context.regime == "volatile":
            need = s.ANALYST_MIN_CONFIDENCE + self.VOLATILE_EXTRA_CONFIDENCE
            if proposal.confidence < need:
                return veto(f"volatile regime needs confidence >= {need:.0f}, got {proposal.confidence:.0f}")
        if proposal.stop_loss is not None:
            problem = _geometry_problem(proposal, context.price)
            if problem:
                return veto(problem)
            dist = abs(context.price - proposal.stop_loss) / context.price
            exposure = s.POSITION_SIZE_PCT * s.LEVERAGE
            if dist * exposure > s.MAX_RISK_PER_TRADE:
                return veto(f"stop {dist:.1%} away risks {dist * exposure:.2%} of equity at the standard size, "
                            f"above MAX_RISK_PER_TRADE {s.MAX_RISK_PER_TRADE:.2%}")
            rr = reward_risk(proposal, context.price)
            if rr is not None and rr < s.MIN_REWARD_RISK - 1e-9:
                return veto(f"reward/risk {rr:.2f} below {s.MIN_REWARD_RISK:.2f}")
            return Verdict(self.stage, self.name, True,
                           f"stop {dist:.1%} away, within the risk limits", proposal.confidence)
        return Verdict(self.stage, self.name, True, "within the risk limits; the risk manager sets the stop",
                       proposal.confidence)


# ----------------------------------------------------------------------------------------------
# the pipeline
