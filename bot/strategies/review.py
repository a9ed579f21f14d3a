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
from typing import Any

from bot.errors import BotError
from bot.events import EventKind
from bot.journal.base import Journal
from bot.strategies.base import FLAT, Decision, StrategyContext
from bot.strategies.lessons import Lesson, parse_lessons, refresh_lessons
from bot.strategies.reviewers import (
    Reviewer,
    ReviewOutcome,
    RuleAnalystReviewer,
    RuleRiskReviewer,
    Verdict,
    needs_review,
    proposal_record,
)

__all__ = ["ReviewPipeline", "ReviewedStrategy"]

log = logging.getLogger(__name__)


class ReviewPipeline:
    """proposal -> analyst review -> risk review; the first veto ends it.

    - `journal`: where verdicts go (`record_review`, `record_veto`), and what lessons are learnt
      from (`closed_trades`, `reviews`) and kept in (`add_lesson`, `lessons`); None: nowhere.
    - `bus`: EventBus for the UI's log.
    - `client`: an `openai.OpenAI`-like client for the LLM reviewers (built from settings if None).
    - `lessons`: a callable returning the lessons to apply; default: the journal's active ones.
    """

    def __init__(self, settings: Any, *, journal: Journal | None = None, bus: Any = None,
                 client: Any = None, lessons: Callable[[], Sequence[Lesson]] | None = None,
                 learn: bool = True) -> None:
        self.settings = settings
        self.journal = journal
        self.bus = bus
        self._lessons = lessons
        # Learn from the journal whenever trades have closed since the last proposal.
        self.learn = learn and journal is not None
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
        if self.journal is not None:
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
        journal = self.journal
        if journal is None:
            return
        try:
            closed = len(journal.closed_trades())
            if closed == self._trades_seen:
                return
            self._trades_seen = closed
            candles = _RecordedCandles(self.settings, context.interval, context.time_ms)
            for lesson in refresh_lessons(journal, self.settings, candles=candles, now_ms=context.time_ms):
                log.info("lesson learned: %s", lesson.text)
                if self.bus is not None:
                    self.bus.emit(EventKind.INFO, f"lesson learned: {lesson.text}", lesson_id=lesson.id,
                                  rule=lesson.rule, learned_at_ms=int(context.time_ms))
        except Exception:  # learning is advice: it must never stop a review
            log.exception("learning lessons from the journal failed; reviewing with the lessons it has")

    def _record(self, verdict: Verdict, proposal: Decision, context: StrategyContext,
                record: dict[str, Any]) -> None:
        entry = dict(record, verdict_confidence=verdict.confidence, fallback=verdict.fallback)
        # The backtester's MemoryJournal keeps no reviews: the events still say who decided.
        if self.journal is not None:
            self.journal.record_review(int(context.time_ms), context.symbol, verdict.stage, verdict.reviewer,
                                       verdict.verdict, verdict.reason, entry)
            if not verdict.approved:
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

    # base.ProposesForReview: reviewed here already, so the engine must not review it again
    # (the wrapped analyst's own `proposes_for_review` would otherwise show through).
    proposes_for_review = False

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
