"""The review pipeline in front of the risk manager: proposal -> analyst review -> risk review.

A strategy proposes; two reviewers may veto before the risk manager sizes and the executor
sends. By default both reviewers are deterministic rules. Either can be an LLM behind any
OpenAI-compatible endpoint (ANALYST_REVIEWER / RISK_REVIEWER = "llm", see bot/strategies/llm_reviewer.py);
when the model is slow, down or answers garbage the rules decide instead and the verdict says
so. Every verdict is journaled with who decided and why, and published as an event for the
UI's log (a veto as EventKind.VETO).

Only proposals that add exposure are reviewed (flat -> long/short, or a reversal). Closing or
holding a position reduces or keeps risk and passes straight through.

    pipeline = ReviewPipeline(settings, journal=journal, bus=bus)
    outcome = pipeline.review(decision, context)
    if outcome.approved: ...  # hand outcome.decision to the risk manager
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bot.errors import BotError
from bot.events import EventKind
from bot.strategies.base import FLAT, LONG, Decision, StrategyContext
from bot.strategies.lessons import Lesson, effective_limits, parse_lessons, refresh_lessons

__all__ = ["Verdict", "ReviewOutcome", "ReviewPipeline", "ReviewedStrategy", "RuleAnalystReviewer", "RuleRiskReviewer",
           "Reviewer", "proposal_record", "needs_review", "reward_risk"]

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


class ReviewJournal(Protocol):
    """The part of bot.journal.store.Journal the pipeline writes to."""

    def record_review(self, time_ms: int, symbol: str, stage: str, reviewer: str, verdict: str,
                      reason: str, proposal: dict) -> Any: ...


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

class ReviewPipeline:
    """proposal -> analyst review -> risk review; the first veto ends it.

    - `journal`: where verdicts go (`record_review`) and lessons come from (`lessons()`).
    - `bus`: EventBus for the UI's log.
    - `client`: an `openai.OpenAI`-like client for the LLM reviewers (built from settings if None).
    - `lessons`: a callable returning the lessons to apply; default: the journal's active ones.
    """

    def __init__(self, settings: Any, *, journal: ReviewJournal | None = None, bus: Any = None,
                 client: Any = None, lessons: Callable[[], Sequence[Lesson]] | None = None,
                 learn: bool = True) -> None:
        self.settings = settings
        self.journal = journal
        self.bus = bus
        self._lessons = lessons
        # Learn from the journal whenever trades have closed since the last proposal.
        self.learn = learn and all(hasattr(journal, m) for m in ("closed_trades", "reviews", "add_lesson", "lessons"))
        self._trades_seen = -1
        self.reviewers: list[Reviewer] = [self._make("analyst", settings.ANALYST_REVIEWER, client),
                                          self._make("risk", settings.RISK_REVIEWER, client)]

    def _make(self, stage: str, kind: str, client: Any) -> Reviewer:
        rules: Reviewer = RuleAnalystReviewer(self.settings) if stage == "analyst" else RuleRiskReviewer(self.settings)
        if kind != "llm":
            return rules
        from bot.strategies.llm_reviewer import (
            LLMReviewer,  # local: the openai client loads only when used
        )
        return LLMReviewer(self.settings, stage=stage, fallback=rules, client=client)

    def current_lessons(self) -> list[Lesson]:
        if self._lessons is not None:
            return list(self._lessons())
        if self.journal is not None and hasattr(self.journal, "lessons"):
            try:
                return parse_lessons(self.journal.lessons(active_only=True))
            except Exception:  # lessons are advice: a journal hiccup must not block the review
                log.exception("could not read lessons from the journal; reviewing without them")
        return []

    def review(self, proposal: Decision, context: StrategyContext) -> ReviewOutcome:
        """Review `proposal`; the outcome's decision is the proposal, or flat when vetoed."""
        if not needs_review(proposal, context):
            return ReviewOutcome(approved=True, decision=proposal, reviewed=False)
        if self.learn:
            self._learn(context)
        lessons = self.current_lessons()
        record = proposal_record(proposal, context)
        verdicts: list[Verdict] = []
        for reviewer in self.reviewers:
            verdict = reviewer.review(proposal, context, lessons)
            verdicts.append(verdict)
            self._record(verdict, proposal, context, record)
            if not verdict.approved:
                vetoed = dataclasses.replace(
                    proposal, target=FLAT, reason=f"vetoed by the {verdict.stage} review "
                                                  f"({verdict.reviewer}): {verdict.reason}")
                return ReviewOutcome(approved=False, decision=vetoed, verdicts=tuple(verdicts))
        return ReviewOutcome(approved=True, decision=proposal, verdicts=tuple(verdicts))

    def _learn(self, context: StrategyContext) -> None:
        """New lessons from trades closed since the last review, dated at the context's time; the
        vetoes' counterfactuals use recorded candles only up to that time (no look-ahead in replay)."""
        try:
            closed = len(self.journal.closed_trades())
            if closed == self._trades_seen:
                return
            self._trades_seen = closed
            candles = _RecordedCandles(self.settings, context.interval, context.time_ms)
            for lesson in refresh_lessons(self.journal, self.settings, candles=candles, now_ms=context.time_ms):
                log.info("lesson learned: %s", lesson.text)
                if self.bus is not None:
                    self.bus.emit(EventKind.INFO, f"lesson learned: {lesson.text}", lesson_id=lesson.id,
                                  rule=lesson.rule, learned_at_ms=int(context.time_ms))
        except Exception:  # learning is advice: it must never stop a review
            log.exception("learning lessons from the journal failed; reviewing with the lessons it has")

    def _record(self, verdict: Verdict, proposal: Decision, context: StrategyContext,
                record: dict[str, Any]) -> None:
        entry = dict(record, verdict_confidence=verdict.confidence, fallback=verdict.fallback)
        # The backtester's MemoryJournal has no review table: the events still say who decided.
        if self.journal is not None and hasattr(self.journal, "record_review"):
            self.journal.record_review(int(context.time_ms), context.symbol, verdict.stage, verdict.reviewer,
                                       verdict.verdict, verdict.reason, entry)
            if not verdict.approved and hasattr(self.journal, "record_veto"):
                self.journal.record_veto(context.symbol, f"{verdict.stage} review ({verdict.reviewer})",
                                         verdict.reason, entry)
        if self.bus is not None:
            text = (f"{context.symbol} {record['side']} {proposal.setup}: {verdict.stage} review "
                    f"({verdict.reviewer}) {'approved' if verdict.approved else 'VETOED'}: {verdict.reason}")
            self.bus.emit(EventKind.INFO if verdict.approved else EventKind.VETO, text,
                          level="INFO" if verdict.approved else "WARNING", symbol=context.symbol,
                          stage=verdict.stage, reviewer=verdict.reviewer, verdict=verdict.verdict)


class ReviewedStrategy:
    """Any strategy with the review pipeline behind its `decide`: the engine can put reviews in
    front of its risk manager without a change to its loop,

        strategy = ReviewedStrategy(strategy, ReviewPipeline(settings, journal=journal, bus=bus))

    Everything else (`name`, `warmup`, `observe`, `learn`, ...) is the wrapped strategy's.
    `last_outcome` keeps the latest review for the UI.
    """

    def __init__(self, strategy: Any, pipeline: ReviewPipeline) -> None:
        self.strategy = strategy
        self.pipeline = pipeline
        self.last_outcome: ReviewOutcome | None = None

    def __getattr__(self, item: str) -> Any:
        return getattr(self.strategy, item)

    def decide(self, context: StrategyContext) -> Decision:
        outcome = self.pipeline.review(self.strategy.decide(context), context)
        if outcome.reviewed:
            self.last_outcome = outcome
        return outcome.decision


class _RecordedCandles:
    """symbol -> recorded candles of `interval` closed by `end_ms`, loaded on first use."""

    def __init__(self, settings: Any, interval: str, end_ms: int) -> None:
        self.settings, self.interval, self.end_ms = settings, interval, int(end_ms)
        self._frames: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return True

    def get(self, symbol: str, default: Any = None) -> Any:
        if symbol not in self._frames:
            from bot.market.data_manager import DataManager
            from bot.types import interval_ms

            try:
                self._frames[symbol] = DataManager(self.settings).candles(
                    symbol, self.interval, end_ms=self.end_ms - interval_ms(self.interval))
            except (BotError, OSError) as exc:
                log.warning("no recorded %s candles for the vetoes' counterfactuals (%s)", symbol, exc)
                self._frames[symbol] = None
        frame = self._frames[symbol]
        return default if frame is None or len(frame) == 0 else frame
