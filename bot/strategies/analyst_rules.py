"""The analyst's rules: which setup a closed entry candle shows, how confident it is, where the
stop and the take-profit go, and when a position is closed. `AnalystStrategy`
(bot/strategies/analyst.py) reads the numbers they look at (`EntryView`, the levels near the
price, the daily trend) and hands them over at each entry close.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.strategies.analyst_book import EntryView
from bot.strategies.base import FLAT, LONG, SHORT, Decision, StrategyContext
from bot.strategies.lessons import Lesson, effective_limits

__all__ = ["AnalystRules", "DailyTrend", "Setup", "SETUP_BASE", "daily_trend", "trend_verdict"]

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
    return trend_verdict(_f(ind["ema_50"][-1]), _f(ind["ema_200"][-1]), _f(ind["adx_14"][-1]), _f(ind["plus_di"][-1]),
                  _f(ind["minus_di"][-1]), close, adx_threshold)


def trend_verdict(e50: float, e200: float, adx: float, pdi: float, mdi: float, close: float,
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


class AnalystRules:
    """The rules of one analyst: `settings`, its entry timeframe, its confidence floor and where
    its active lessons come from; `name` is the decisions' `source`."""

    def __init__(self, settings: Any, *, entry_interval: str, min_confidence: float,
                 lessons: Callable[[], list[Lesson]], name: str = "analyst") -> None:
        self.settings = settings
        self.entry_interval = entry_interval
        self.min_confidence = min_confidence
        self._current_lessons = lessons
        self.name = name

    def decide(self, e: EntryView, levels: Sequence[Any], trend: DailyTrend, reg: str,
               ctx: StrategyContext) -> Decision:
        """The decision at an entry close with a defined ATR: `levels` are those near the price,
        `reg` "volatile" or not."""
        price, atr = e.price, e.atr
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
