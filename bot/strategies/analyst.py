"""The analyst: a transparent, rule-based strategy that explains every trade it proposes.

Each time an entry-timeframe candle closes (4 h by default) it reads the indicator set (EMA
9/21/50/200, RSI 14, MACD 12/26/9, Bollinger 20/2, ATR 14, ADX 14 with +DI/-DI, CMF 20, volume
ratio), support/resistance and the regime of that timeframe, and the trend of the confirmation
timeframe (daily): price against EMA 50/200, and ADX with the direction of the DI lines.

- No long against a daily downtrend, no short against a daily uptrend.
- Setups, first match wins: breakout (close through a level touched twice or more, or through
  the 20-candle extreme), pullback (4 h trend intact, the candle dipped to EMA 21 and closed back
  above it), consolidation (quiet range: low ADX and narrow bands, a bounce off a level).
- Confidence 0-100 adds up what agrees (daily trend, ADX/DI, MACD, RSI zone, CMF, volume) and
  subtracts what does not (overextended RSI, volatile regime).
- Stop: 0.25 ATR beyond the nearest support/resistance when that lies 0.5 to STOP_ATR_MULT -
  0.25 ATRs away (so never wider than the ATR stop), else STOP_ATR_MULT x ATR. Take-profit: TAKE_PROFIT_ATR_MULT x ATR, pulled in before a level
  touched twice or more that stands in the way. Skipped under ANALYST_MIN_CONFIDENCE (or the
  higher floor an active lesson set for this regime x setup x side) or under MIN_REWARD_RISK.
- A position is closed when the daily trend turns against it or the entry-timeframe trend
  breaks (close beyond EMA 50 with MACD histogram against it); stops and targets are the risk
  manager's and the exchange's.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import BotError, DataError, StrategyError
from bot.journal.base import Journal
from bot.market.timeframes import ratio
from bot.strategies.analyst_book import AnalystBook, CandleBuckets, EntryView
from bot.strategies.base import FLAT, LONG, SHORT, Decision, StrategyContext
from bot.strategies.lessons import Lesson, effective_limits, parse_lessons
from bot.types import interval_ms

__all__ = ["AnalystStrategy", "DailyTrend", "Setup", "daily_trend"]

ENTRY_CANDLES = 1200      # entry candles analysed each time (EMA 200 settles well within them)
CONFIRM_DAYS = 600        # days of base candles kept for the daily trend
MIN_ENTRY_CANDLES = 60
MIN_CONFIRM_CANDLES = 60
SETUP_BASE = {"breakout": 35.0, "pullback": 40.0, "consolidation": 30.0}


@dataclass(frozen=True)
class DailyTrend:
    """The confirmation timeframe's verdict at its last closed candle."""

    direction: int        # +1 up, -1 down, 0 neutral
    text: str
    adx: float = math.nan


@dataclass(frozen=True)
class Setup:
    side: int
    kind: str             # breakout / pullback / consolidation
    detail: str
    level: float | None = None


def _f(x: Any) -> float:
    v = float(x)
    return v if math.isfinite(v) else math.nan


def daily_trend(ind: dict[str, np.ndarray], close: float, adx_threshold: float) -> DailyTrend:
    """Up: price above EMA 200 with EMA 50 above EMA 200, or above EMA 50 with a strong ADX and
    +DI leading. Down is the mirror. Both or neither: neutral. Without EMA 200 yet, EMA 50 alone.
    `ind`: `compute_all` arrays of the confirmation candles (their last values are read)."""
    return _trend(_f(ind["ema_50"][-1]), _f(ind["ema_200"][-1]), _f(ind["adx_14"][-1]), _f(ind["plus_di"][-1]),
                  _f(ind["minus_di"][-1]), close, adx_threshold)


def _trend(e50: float, e200: float, adx: float, pdi: float, mdi: float, close: float,
           adx_threshold: float) -> DailyTrend:
    strong = adx > adx_threshold
    if math.isnan(e200):
        up_ema, down_ema = close > e50 and strong and pdi > mdi, close < e50 and strong and mdi > pdi
    else:
        up_ema, down_ema = close > e200 and e50 > e200, close < e200 and e50 < e200
    up = up_ema or (close > e50 and strong and pdi > mdi)
    down = down_ema or (close < e50 and strong and mdi > pdi)
    facts = f"close {close:,.0f}, EMA50 {e50:,.0f}, EMA200 {e200:,.0f}, ADX {adx:.0f}"
    if up and not down:
        return DailyTrend(LONG, f"daily uptrend ({facts})", adx)
    if down and not up:
        return DailyTrend(SHORT, f"daily downtrend ({facts})", adx)
    return DailyTrend(FLAT, f"daily trend neutral ({facts})", adx)


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
        self.min_confidence = float(settings.ANALYST_MIN_CONFIDENCE if min_confidence is None else min_confidence)
        self._lessons = lessons
        self.journal = journal
        self.history = history
        self._books: dict[tuple[str, str], AnalystBook] = {}
        self._entry_ms = interval_ms(self.entry_interval)
        self._entry_buckets = CandleBuckets(self.entry_interval, self._entry_ms)     # for their bucket arithmetic
        self._confirm_buckets = CandleBuckets(self.confirm_interval, self._entry_ms)
        self._problems: dict[str, str | None] = {}
        self._level_reach = 1.0 + max(1.5, float(settings.STOP_ATR_MULT), float(settings.TAKE_PROFIT_ATR_MULT))
        from bot.analysis.features import regime_thresholds

        _, self._volatile_pct, self._regime_look = regime_thresholds(settings)

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
        book.take(*_closed_candles(ctx, book.last_ms, ctx.time_ms - base_ms))
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
            return Decision(target=held, confidence=book.decision.confidence, setup="none",
                            reason=f"holding until the next {self.entry_interval} close", source=self.name)
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

    def _daily(self, book: AnalystBook) -> DailyTrend:
        st, n = book.confirm, int(self.settings.ADX_PERIOD)
        return _trend(_f(st.ema[50]), _f(st.ema[200]), _f(st.adx[14]), _f(st.plus_di[n]), _f(st.minus_di[n]),
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
        held = ctx.position_target
        setups = [st for st in (self._setup(e, levels, side, atr) for side in (LONG, SHORT)) if st]
        if held != FLAT:
            exit_why = self._exit_reason(held, e, price, trend)
            against = [st for st in setups if st.side == -held]
            if against and (ctx.allow_short or -held == LONG):
                proposal = self._propose(against[0], e, price, levels, atr, trend, reg, ctx)
                if proposal.target != FLAT:
                    return proposal
            if exit_why:
                return Decision(target=FLAT, confidence=60.0, reason=f"exit {'long' if held > 0 else 'short'}: "
                                f"{exit_why}", source=self.name)
            return Decision(target=held, confidence=50.0, reason=f"hold: trend intact; {trend.text}",
                            source=self.name)
        if not setups:
            return Decision(target=FLAT, reason=f"no setup on {self.entry_interval}; {trend.text}", source=self.name)
        best = max((self._propose(st, e, price, levels, atr, trend, reg, ctx) for st in setups),
                   key=lambda d: (d.target != FLAT, d.confidence))
        return best

    def _exit_reason(self, held: int, e: EntryView, price: float, trend: DailyTrend) -> str:
        if trend.direction == -held:
            return trend.text
        e50, hist = e.ema50, e.hist
        if held * (price - e50) < 0 and held * hist < 0:
            return f"{self.entry_interval} trend broke (close beyond EMA50 {e50:,.0f}, MACD histogram {hist:+.1f})"
        return ""

    def _setup(self, e: EntryView, levels: Sequence[Any], side: int, atr: float) -> Setup | None:
        price, prev = e.price, e.prev
        # breakout: through a level touched twice or more, or through the 20-candle extreme
        crossed = [lv for lv in levels if lv.touches >= 2 and side * (prev - lv.price) <= 0
                   < side * (price - lv.price) <= 1.5 * atr]   # ... and not already far beyond it
        if crossed:   # the nearest (the first of equals, as a stable sort by distance)
            lv = min(crossed, key=lambda lv: abs(lv.price - price))
            return Setup(side, "breakout", f"close through the level {lv.price:,.0f} "
                                           f"({lv.touches} touches)", lv.price)
        extreme = e.high20 if side > 0 else e.low20
        if side * (price - extreme) > 0 and side * (prev - extreme) <= 0:
            return Setup(side, "breakout", f"close through the 20-candle {'high' if side > 0 else 'low'} "
                                           f"{extreme:,.0f}", extreme)
        e21, e50 = e.ema21, e.ema50
        rsi = e.rsi
        touched = (e.low2 <= e21 + 0.25 * atr) if side > 0 else (e.high2 >= e21 - 0.25 * atr)
        if (side * (e21 - e50) > 0 and side * (price - e21) > 0 and touched and side * (price - e.open) > 0
                and 35 <= rsi <= 65):
            return Setup(side, "pullback", f"dip to EMA21 {e21:,.0f} in a {self.entry_interval} "
                                           f"{'up' if side > 0 else 'down'}trend, closed back beyond it", e21)
        adx = e.adx
        if adx < 20 and e.quiet_bands():
            near = [lv for lv in levels if side * (price - lv.price) > 0 and abs(price - lv.price) <= atr]
            if near and side * (price - e.open) > 0:
                lv = min(near, key=lambda lv: abs(price - lv.price))
                return Setup(side, "consolidation", f"quiet range (ADX {adx:.0f}), bounce off "
                                                    f"{'support' if side > 0 else 'resistance'} {lv.price:,.0f}",
                             lv.price)
        return None

    def _score(self, st: Setup, e: EntryView, trend: DailyTrend, reg: str) -> tuple[float, list[str]]:
        side = st.side
        score, why = SETUP_BASE[st.kind], []
        if trend.direction == side:
            score += 20
            why.append("daily trend agrees")
        adx, pdi, mdi = e.adx, e.plus_di, e.minus_di
        if adx > self.settings.ADX_TREND_THRESHOLD and side * (pdi - mdi) > 0:
            score += 10
            why.append(f"ADX {adx:.0f} with DI")
        hist, prev_hist = e.hist, e.prev_hist
        if side * hist > 0:
            score += 5
            why.append("MACD with it")
        if side * (hist - prev_hist) > 0:
            score += 5
            why.append("MACD rising" if side > 0 else "MACD falling")
        rsi = e.rsi
        if (side > 0 and 45 <= rsi <= 70) or (side < 0 and 30 <= rsi <= 55):
            score += 5
            why.append(f"RSI {rsi:.0f}")
        elif (side > 0 and rsi > 75) or (side < 0 and rsi < 25):
            score -= 10
            why.append(f"RSI {rsi:.0f} overextended")
        if side * e.cmf > 0:
            score += 5
            why.append("money flow with it")
        vr = e.volume_ratio
        if vr > 1.2:
            score += 10 if st.kind == "breakout" else 5
            why.append(f"volume {vr:.1f}x")
        if reg == "volatile":
            score -= 10
            why.append("volatile regime")
        return float(np.clip(score, 0, 100)), why

    def _propose(self, st: Setup, e: EntryView, price: float, levels: Sequence[Any],
                 atr: float, trend: DailyTrend, reg: str, ctx: StrategyContext) -> Decision:
        s, side = self.settings, st.side
        name = "long" if side > 0 else "short"
        head = f"{name} {st.kind} on {self.entry_interval}: {st.detail}"
        if trend.direction == -side:
            return Decision(target=FLAT, setup=st.kind, source=self.name,
                            reason=f"{head}; blocked: {trend.text}")
        if side < 0 and not ctx.allow_short:
            return Decision(target=FLAT, setup=st.kind, source=self.name, reason=f"{head}; blocked: no shorts here")
        conf, why = self._score(st, e, trend, reg)
        # stop: beyond the nearest level on the losing side if it is a sensible distance away
        # (never wider than the ATR stop: the level plus its 0.25 ATR margin stays within it)
        behind = [lv for lv in levels if 0.5 * atr <= side * (price - lv.price) <= (s.STOP_ATR_MULT - 0.25) * atr]
        if behind:
            lv = min(behind, key=lambda lv: abs(price - lv.price))
            stop, stop_why = lv.price - side * 0.25 * atr, f"beyond {lv.price:,.0f}"
        else:
            stop, stop_why = price - side * s.STOP_ATR_MULT * atr, f"{s.STOP_ATR_MULT:g} ATR"
        target, tp_why = price + side * s.TAKE_PROFIT_ATR_MULT * atr, f"{s.TAKE_PROFIT_ATR_MULT:g} ATR"
        ahead = [lv for lv in levels if lv.touches >= 2 and 0 < side * (lv.price - price) < abs(target - price)]
        if ahead:
            lv = min(ahead, key=lambda lv: abs(lv.price - price))
            target, tp_why = lv.price - side * 0.1 * atr, f"before the level {lv.price:,.0f}"
        rr = abs(target - price) / abs(price - stop)
        limits = effective_limits(self._current_lessons(), s, regime=ctx.regime, setup=st.kind, side=name)
        floor = max(self.min_confidence, limits.min_confidence)
        plan = (f"stop {stop:,.0f} ({stop_why}), take-profit {target:,.0f} ({tp_why}), R/R {rr:.1f}; "
                f"confidence {conf:.0f}: {', '.join(why) or 'nothing agrees'}")
        skip = ""
        if conf < floor:
            skip = f"confidence {conf:.0f} < {floor:.0f}" + (" (lesson)" if floor > self.min_confidence else "")
        elif limits.min_adx is not None and not e.adx > limits.min_adx:
            skip = f"lesson: needs ADX > {limits.min_adx:.0f}, ADX is {e.adx:.0f}"
        elif rr < s.MIN_REWARD_RISK - 1e-9:
            skip = f"reward/risk {rr:.1f} < {s.MIN_REWARD_RISK:g}"
        if skip:
            return Decision(target=FLAT, confidence=conf, setup=st.kind, source=self.name,
                            reason=f"{head}; skipped: {skip}; {plan}")
        zone = (price - 0.5 * atr, price) if side > 0 else (price, price + 0.5 * atr)
        # The engine trades at the context price; stop and target keep their distances from it.
        shift = ctx.price - price
        return Decision(target=side, confidence=conf, setup=st.kind, source=self.name,
                        entry_zone=(zone[0] + shift, zone[1] + shift), stop_loss=stop + shift,
                        take_profit=target + shift, reason=f"{head}; {trend.text}; {plan}")


def _closed_candles(ctx: StrategyContext, after_ms: int, until_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """The context's base candles opened after `after_ms` and by `until_ms` (closed ones only,
    whatever was passed): (open times, open/high/low/close/volume). Reads the engine's arrays
    when the context has them (`CandleFrames.tail`), else the frame."""
    tail = getattr(ctx.candles, "tail", None)
    arrays = tail(ctx.interval) if tail is not None else None
    if arrays is not None:
        times, values = np.asarray(arrays[0], dtype=np.int64), arrays[1]
        lo, hi = np.searchsorted(times, [after_ms, until_ms], side="right")
        return times[lo:hi], np.asarray(values[lo:hi, :5], dtype=np.float64)
    frame = ctx.candles.get(ctx.interval)
    if frame is None:
        raise StrategyError(f"analyst: the context has no {ctx.interval} candles for {ctx.symbol}")
    times = np.asarray(frame.index, dtype=np.int64)
    lo, hi = np.searchsorted(times, [after_ms, until_ms], side="right")
    part = frame.iloc[lo:hi]
    return times[lo:hi], np.column_stack([part[k].to_numpy(dtype=np.float64)
                                          for k in ("open", "high", "low", "close", "volume")])


def _label(interval: str) -> str:
    """A Bybit interval in a trader's words: 240 -> 4 h, D -> daily."""
    words = {"D": "daily", "W": "weekly", "M": "monthly"}
    if interval in words:
        return words[interval]
    minutes = int(interval)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
