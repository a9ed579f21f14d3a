"""The analyst: a transparent, rule-based strategy that explains every trade it proposes.

Each time an entry-timeframe candle closes (4 h by default) it reads the indicator set (EMA
9/21/50/200, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, ADX 14 with +DI/-DI, CMF 20, volume
ratio), support/resistance and the regime of that timeframe, and the trend of the confirmation
timeframe (daily): price against EMA 50/200, and ADX with the direction of the DI lines.

The rules themselves (setups, confidence, stop and take-profit, exits) are `AnalystRules`
(bot/strategies/analyst_rules.py). This module decides *when* they are asked and with which numbers.

Higher timeframes come from the candles the engine hands over plus the candle cache, built the
way bot/market/timeframes.py resamples (only closed candles, nothing after the context's time),
one base candle at a time: `AnalystBook` (bot/strategies/analyst_book.py) carries the entry
timeframe's indicators and levels and the confirmation trend's indicators forward, so a decision
costs the same whatever the history (the rules read the same numbers a fresh `compute_all` over
the last 1,200 entry candles gave; self_test/strategies/test_analyst_golden.py holds it to that).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import BotError, DataError, StrategyError
from bot.journal.base import Journal
from bot.market.timeframes import ratio
from bot.strategies.analyst_book import AnalystBook, CandleBuckets, Row, rows_of
from bot.strategies.analyst_rules import AnalystRules, DailyTrend, Setup, daily_trend, trend_verdict
from bot.strategies.base import Decision, StrategyContext
from bot.strategies.lessons import Lesson, parse_lessons
from bot.types import interval_ms

__all__ = ["AnalystStrategy", "DailyTrend", "Setup", "daily_trend"]

ENTRY_CANDLES = 1200      # entry candles analysed each time (EMA 200 settles well within them)
CONFIRM_DAYS = 600        # days of base candles kept for the daily trend
MIN_ENTRY_CANDLES = 60
MIN_CONFIRM_CANDLES = 60


class AnalystStrategy:
    """Rule-based analyst on the entry timeframe, confirmed by the higher one.

    Options (keyword-only): `entry_interval`, `confirm_interval`, `min_confidence` (defaults from
    ANALYST_*), `lessons` (a sequence or a callable returning the active lessons), `journal`
    (reads its active lessons when `lessons` is not given), `history` ("cache": warm up from the
    candle cache / seed up to the context's time; None: only what the engine hands over).
    """

    name = "analyst"
    warmup = 52  # base candles the engine waits for; longer history comes from the cache
    proposes_for_review = True  # base.ProposesForReview: the engine puts the review pipeline in front

    def __init__(self, settings: Any, *, entry_interval: str | None = None, confirm_interval: str | None = None,
                 min_confidence: float | None = None,
                 lessons: Sequence[Lesson] | Callable[[], Sequence[Lesson]] | None = None,
                 journal: Journal | None = None, history: str | None = "cache") -> None:
        if history not in ("cache", None):
            raise ValueError(f"history={history!r} is not allowed; allowed: 'cache' or None")
        self.settings = settings
        self.entry_interval = str(entry_interval or settings.ANALYST_ENTRY_INTERVAL)
        self.confirm_interval = str(confirm_interval or settings.ANALYST_CONFIRM_INTERVAL)
        ratio(self.entry_interval, self.confirm_interval)  # the confirmation must be the higher one
        self.rules = AnalystRules(settings, entry_interval=self.entry_interval, min_confidence=float(
            settings.ANALYST_MIN_CONFIDENCE if min_confidence is None else min_confidence),
            lessons=self._current_lessons, name=self.name)
        self._lessons = lessons
        self.journal = journal
        self.history = history
        self._books: dict[tuple[str, str], AnalystBook] = {}
        self._entry_ms = interval_ms(self.entry_interval)
        self._entry_buckets = CandleBuckets(self.entry_interval, self._entry_ms)     # for their bucket arithmetic
        self._confirm_buckets = CandleBuckets(self.confirm_interval, self._entry_ms)
        self._problems: dict[str, str | None] = {}
        self._holds: dict[tuple[int, float], Decision] = {}
        self._level_reach = 1.0 + max(1.5, float(settings.STOP_ATR_MULT), float(settings.TAKE_PROFIT_ATR_MULT))
        from bot.analysis.features import regime_thresholds

        _, self._volatile_pct, self._regime_look = regime_thresholds(settings)

    @property
    def min_confidence(self) -> float:
        """The confidence a setup needs (ANALYST_MIN_CONFIDENCE unless given), without lessons."""
        return self.rules.min_confidence

    def __repr__(self) -> str:
        return (f"AnalystStrategy(entry={self.entry_interval}, confirm={self.confirm_interval}, "
                f"min_confidence={self.min_confidence:g})")

    # -- candles ---------------------------------------------------------------------------------
    def _book(self, ctx: StrategyContext) -> AnalystBook:
        """The symbol's book, with the closed base candles of the context taken in."""
        base_ms = interval_ms(ctx.interval)
        key = (ctx.symbol, ctx.interval)
        book = self._books.get(key)
        if book is not None and ctx.time_ms - base_ms < book.last_ms:
            book = None   # asked about an earlier moment than the book has reached: start over
        if book is None:
            # Recorded confirmation candles reach further back than the base candles kept here,
            # so the daily EMA 200 is a settled one rather than a fresh start.
            book = self._books[key] = AnalystBook(
                self.settings, ctx.interval, self.entry_interval, self.confirm_interval,
                keep=CONFIRM_DAYS * 86_400_000 // base_ms, history=self._history(ctx, ctx.interval, CONFIRM_DAYS),
                recorded=self._history(ctx, self.confirm_interval, 4 * CONFIRM_DAYS),
                entry_history=ENTRY_CANDLES * (self._entry_ms // base_ms) + 1)
        rows = _closed_candles(ctx, book.last_ms, ctx.time_ms - base_ms)
        if rows:
            book.take_newer(rows)
        return book

    def _history(self, ctx: StrategyContext, interval: str, days: int) -> pd.DataFrame | None:
        """Cached (or seed) candles of `interval` that had closed by the context's time."""
        if self.history != "cache":
            return None
        try:
            from bot.market.data_manager import DataManager

            start = ctx.time_ms - days * 86_400_000
            df = DataManager(self.settings).candles(ctx.symbol, interval, start_ms=start,
                                                    end_ms=ctx.time_ms - interval_ms(interval))
            return df if len(df) else None
        except (BotError, OSError, ValueError):
            return None  # no cache, no seed: the analyst warms up on what the engine hands over

    def _current_lessons(self) -> list[Lesson]:
        if self._lessons is not None:
            return list(self._lessons() if callable(self._lessons) else self._lessons)
        if self.journal is not None:
            return parse_lessons(self.journal.lessons(active_only=True))
        return []

    # -- deciding --------------------------------------------------------------------------------
    def interval_problem(self, interval: str) -> str | None:
        """base.NeedsInterval: the analyst builds its entry and confirmation candles from the bot's."""
        try:
            ratio(interval, self.entry_interval)
        except DataError:
            return (f"the analyst reads {_label(self.entry_interval)} setups confirmed by {_label(self.confirm_interval)} "
                    f"candles, built from the bot's candles, so it needs candles of {_label(self.entry_interval)} or "
                    f"shorter; these are {_label(interval)} (use --strategy sma or dqn, or shorter candles)")
        return None

    def decide(self, context: StrategyContext) -> Decision:
        if context.interval not in self._problems:
            self._problems[context.interval] = self.interval_problem(context.interval)
        why = self._problems[context.interval]
        if why is not None:
            raise StrategyError(f"analyst: {why}")
        held = context.position_target
        entry_ms = self._entry_ms
        last_closed = self._entry_buckets.open_of(context.time_ms) - entry_ms
        book = self._books.get((context.symbol, context.interval))
        if book is not None and last_closed == book.evaluated_ms and book.decision is not None:
            # Between entry closes the analyst holds what it has (a stop may have closed it). The
            # candles of these hours are taken in at the next close: the engine's tail covers them.
            return self._holding(held, book.decision.confidence)
        book = self._book(context)
        book.evaluated_ms = last_closed
        confirm_key = self._confirm_buckets.open_of(context.time_ms)
        if confirm_key != book.daily_key:
            book.daily_key = confirm_key
            book.daily_candles = book.confirm_count
            book.daily = self._daily(book) if book.daily_candles >= MIN_CONFIRM_CANDLES else None
        if book.entry.candles < MIN_ENTRY_CANDLES or book.daily is None:
            rows = ENTRY_CANDLES * (entry_ms // interval_ms(context.interval)) + 1
            entries = book.window_entry_count(rows)   # what the last ENTRY_CANDLES windows held
            if entries < MIN_ENTRY_CANDLES or book.daily is None:
                book.decision = Decision(target=held, source=self.name, reason=(
                    f"warming up: {entries}/{MIN_ENTRY_CANDLES} {self.entry_interval} and "
                    f"{book.daily_candles}/{MIN_CONFIRM_CANDLES} {self.confirm_interval} candles"))
                return book.decision
        book.decision = self._evaluate(book, book.daily, context)
        return book.decision

    def _holding(self, held: int, confidence: float) -> Decision:
        """The decision between entry closes: hold `held`. Decisions are frozen, so the few there
        are (3 targets x the confidences the rules give) are made once."""
        hold = self._holds.get((held, confidence))
        if hold is None:
            if len(self._holds) > 1000:   # only if the rules ever gave confidences without end
                self._holds.clear()
            hold = self._holds[(held, confidence)] = Decision(
                target=held, confidence=confidence, setup="none", source=self.name,
                reason=f"holding until the next {self.entry_interval} close")
        return hold

    def _daily(self, book: AnalystBook) -> DailyTrend:
        st, n = book.confirm, int(self.settings.ADX_PERIOD)
        return trend_verdict(_f(st.ema[50]), _f(st.ema[200]), _f(st.adx[14]), _f(st.plus_di[n]), _f(st.minus_di[n]),
                             book.confirm_close, float(self.settings.ADX_TREND_THRESHOLD))

    def _evaluate(self, book: AnalystBook, trend: DailyTrend, ctx: StrategyContext) -> Decision:
        s = self.settings
        e = book.entry_view(int(s.ADX_PERIOD))
        price, atr = e.price, e.atr
        if not atr > 0:
            return Decision(target=ctx.position_target, source=self.name, reason="ATR not defined yet")
        # every rule below looks at levels within a few ATRs (stop, take-profit, breakout distance)
        levels = book.levels.clusters(atr, near=price, within=self._level_reach * atr)
        reg = "volatile" if e.volatile(self._regime_look, self._volatile_pct) else "not volatile"
        return self.rules.decide(e, levels, trend, reg, ctx)


def _closed_candles(ctx: StrategyContext, after_ms: int, until_ms: int) -> list[Row]:
    """The context's base candles opened after `after_ms` and by `until_ms` (closed ones only,
    whatever was passed), as rows (open time, open, high, low, close, volume). Reads the engine's
    arrays when the context has them (`CandleFrames.tail`), else the frame."""
    tail = getattr(ctx.candles, "tail", None)
    arrays = tail(ctx.interval) if tail is not None else None
    if arrays is not None:
        times, values = np.asarray(arrays[0], dtype=np.int64), arrays[1]
    else:
        frame = ctx.candles.get(ctx.interval)
        if frame is None:
            raise StrategyError(f"analyst: the context has no {ctx.interval} candles for {ctx.symbol}")
        times, values = np.asarray(frame.index, dtype=np.int64), frame[["open", "high", "low", "close", "volume"]]
    lo, hi = np.searchsorted(times, (after_ms, until_ms), side="right").tolist()
    if lo >= hi:
        return []
    return rows_of(times[lo:hi], np.asarray(values[lo:hi] if arrays is not None else values.iloc[lo:hi]))


def _f(x: float) -> float:
    return x if math.isfinite(x) else math.nan


def _label(interval: str) -> str:
    """A Bybit interval in a trader's words: 240 -> 4 h, D -> daily."""
    words = {"D": "daily", "W": "weekly", "M": "monthly"}
    if interval in words:
        return words[interval]
    minutes = int(interval)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
