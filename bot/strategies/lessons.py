"""Lessons from the journal: what worked, what did not, and the rules that follow from it.

After trades close we group every outcome by regime x setup x side and compute the count, win
rate and average R (profit in units of the initial stop distance, after fees). Vetoed proposals
are replayed over the recorded candles to see what they *would* have done (counterfactual: the
first of stop or take-profit touched wins; both in one candle counts as the stop, the
conservative reading). A group with at least LESSON_MIN_SAMPLES outcomes whose average R is off
zero by more than one standard error (so a -0.01 R group is noise, not a finding) becomes a short
dated lesson:

- a losing pattern of taken trades tightens the analyst for that exact
  regime x setup x side: a higher minimum confidence and, for trend setups in a choppy market,
  an ADX floor. Both are bounded by config (LESSON_MAX_CONFIDENCE_RAISE, LESSON_MAX_MIN_ADX) so
  the journal can never switch the strategy off by itself;
- vetoes that would have paid (average R above zero by over one standard error) become notes for the LLM reviewers' prompts; they never loosen a
  rule by themselves.

Lessons are stored in the journal (`add_lesson(text, rule)`), shown to the user as text, and
reversible (`set_lesson_active(id, False)` returns the analyst to its base rules).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bot.journal.base import Journal

__all__ = ["Outcome", "GroupStats", "Lesson", "Limits", "group_outcomes", "counterfactual_r", "replay_trade",
           "trade_outcomes", "veto_outcomes", "propose_lessons", "effective_limits", "parse_lessons",
           "refresh_lessons", "lessons_text", "TREND_SETUPS"]

TREND_SETUPS = ("pullback", "breakout")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Outcome:
    """One finished (or replayed) trade idea, in R."""

    regime: str
    setup: str
    side: str          # long / short
    r: float           # profit / initial risk, after fees
    time_ms: int
    vetoed: bool = False

    @property
    def won(self) -> bool:
        return self.r > 0


@dataclass(frozen=True)
class GroupStats:
    regime: str
    setup: str
    side: str
    vetoed: bool
    count: int
    win_rate: float    # 0..1
    avg_r: float
    r_stderr: float = 0.0   # standard error of avg_r (sample std / sqrt(count))

    @property
    def losing(self) -> bool:
        """Loses by more than its own noise: average R below zero by over one standard error."""
        return self.avg_r + self.r_stderr < 0

    @property
    def winning(self) -> bool:
        return self.avg_r - self.r_stderr > 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.regime, self.setup, self.side)


@dataclass(frozen=True)
class Lesson:
    """A stored lesson: its text for people and prompts, and its machine rule."""

    id: int | None
    time_ms: int
    text: str
    rule: dict[str, Any]
    active: bool = True


@dataclass(frozen=True)
class Limits:
    """The analyst's thresholds for one regime x setup x side after the active lessons."""

    min_confidence: float
    min_adx: float | None
    sources: tuple[str, ...] = ()   # lesson texts that tightened them


# ----------------------------------------------------------------------------------------------
# outcomes

def _side_sign(side: str) -> int:
    return 1 if str(side).lower() in ("long", "buy", "1") else -1


def replay_trade(candles: pd.DataFrame, *, time_ms: int, side: str, entry: float, stop: float,
                 take_profit: float, horizon_ms: int = 30 * DAY_MS) -> tuple[float, int, str] | None:
    """Where a trade entered at `time_ms` would have ended: (exit price, exit time ms, why).

    Candle by candle from the first one opening at or after `time_ms`: the stop when a candle
    touches it (first, when a candle touches both: the conservative reading), else the target;
    without either within `horizon_ms`, the last close then ("horizon"). None when the recorded
    candles do not reach the outcome yet.
    """
    sign = _side_sign(side)
    idx = candles.index.to_numpy(dtype=np.int64)
    start = int(np.searchsorted(idx, int(time_ms), side="left"))
    end = int(np.searchsorted(idx, int(time_ms) + horizon_ms, side="left"))
    highs = candles["high"].to_numpy()[start:end]
    lows = candles["low"].to_numpy()[start:end]
    if sign > 0:
        hit_stop, hit_tp = lows <= stop, highs >= take_profit
    else:
        hit_stop, hit_tp = highs >= stop, lows <= take_profit
    first_stop = int(np.argmax(hit_stop)) if hit_stop.any() else None
    first_tp = int(np.argmax(hit_tp)) if hit_tp.any() else None
    if first_stop is not None and (first_tp is None or first_stop <= first_tp):
        return float(stop), int(idx[start + first_stop]), "stop-loss"
    if first_tp is not None:
        return float(take_profit), int(idx[start + first_tp]), "take-profit"
    if end >= len(idx) or end <= start:
        return None  # the horizon has not passed in the recorded candles yet
    return float(candles["close"].to_numpy()[end - 1]), int(idx[end - 1]), "horizon"


def counterfactual_r(candles: pd.DataFrame, *, time_ms: int, side: str, entry: float, stop: float,
                     take_profit: float, fee_rate: float = 0.0, horizon_ms: int = 30 * DAY_MS) -> float | None:
    """What a proposal made at `time_ms` would have earned, in R after fees (see `replay_trade`);
    None when the outcome is not decided in the recorded candles yet."""
    risk = abs(entry - stop)
    if risk <= 0 or not math.isfinite(risk):
        return None
    end = replay_trade(candles, time_ms=time_ms, side=side, entry=entry, stop=stop, take_profit=take_profit,
                       horizon_ms=horizon_ms)
    if end is None:
        return None
    return _side_sign(side) * (end[0] - entry) / risk - 2 * fee_rate * entry / risk


def trade_outcomes(trades: Iterable[Any], proposals: Sequence[Mapping[str, Any]], *,
                   match_window_ms: int = DAY_MS) -> list[Outcome]:
    """Closed trades tagged with the regime and setup of the approved proposal that opened them.

    `trades`: ClosedTrade-like (symbol, side, qty, entry_price, exit_price, entry_ms, exit_ms, pnl).
    `proposals`: approved proposals as dicts with time_ms, symbol, side, setup, regime, stop_loss.
    A trade with no matching proposal (opened by hand, another strategy) is skipped.
    """
    by_symbol: dict[str, list[Mapping[str, Any]]] = {}
    for p in sorted(proposals, key=lambda p: int(p.get("time_ms", 0))):
        by_symbol.setdefault(str(p.get("symbol")), []).append(p)
    out = []
    for t in trades:
        match = None
        for p in by_symbol.get(str(t.symbol), []):
            pt = int(p.get("time_ms", 0))
            if pt > int(t.entry_ms):
                break
            if int(t.entry_ms) - pt <= match_window_ms and _side_sign(p.get("side", "")) == _side_sign(t.side):
                match = p
        if match is None or match.get("stop_loss") is None:
            continue
        risk = abs(float(t.entry_price) - float(match["stop_loss"])) * float(t.qty)
        if risk <= 0:
            continue
        out.append(Outcome(regime=str(match.get("regime", "?")), setup=str(match.get("setup", "none")),
                           side="long" if _side_sign(t.side) > 0 else "short", r=float(t.pnl) / risk,
                           time_ms=int(t.exit_ms)))
    return out


def veto_outcomes(vetoes: Sequence[Mapping[str, Any]], candles: Mapping[str, pd.DataFrame], *,
                  fee_rate: float = 0.0, horizon_ms: int = 30 * DAY_MS) -> list[Outcome]:
    """Counterfactual outcomes of vetoed proposals; `candles` maps symbol -> recorded candles."""
    out = []
    for v in vetoes:
        frame = candles.get(str(v.get("symbol")))
        if frame is None or v.get("stop_loss") is None or v.get("take_profit") is None:
            continue
        r = counterfactual_r(frame, time_ms=int(v["time_ms"]), side=str(v.get("side")),
                             entry=float(v["price"]), stop=float(v["stop_loss"]),
                             take_profit=float(v["take_profit"]), fee_rate=fee_rate, horizon_ms=horizon_ms)
        if r is not None:
            out.append(Outcome(regime=str(v.get("regime", "?")), setup=str(v.get("setup", "none")),
                               side="long" if _side_sign(v.get("side", "")) > 0 else "short", r=r,
                               time_ms=int(v["time_ms"]), vetoed=True))
    return out


def group_outcomes(outcomes: Iterable[Outcome]) -> list[GroupStats]:
    """Count, win rate and average R by regime x setup x side (taken and vetoed apart)."""
    groups: dict[tuple[str, str, str, bool], list[float]] = {}
    for o in outcomes:
        groups.setdefault((o.regime, o.setup, o.side, o.vetoed), []).append(o.r)
    stats = [GroupStats(regime=k[0], setup=k[1], side=k[2], vetoed=k[3], count=len(rs),
                        win_rate=float(np.mean(np.asarray(rs) > 0)), avg_r=float(np.mean(rs)),
                        r_stderr=float(np.std(rs, ddof=1) / math.sqrt(len(rs))) if len(rs) > 1 else math.inf)
             for k, rs in groups.items()]
    return sorted(stats, key=lambda s: (s.vetoed, -s.count, s.key))


# ----------------------------------------------------------------------------------------------
# lessons

def _plural(setup: str) -> str:
    return {"consolidation": "consolidation trades", "none": "unclassified trades"}.get(setup, setup + "s")


def _date(ms: int) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d")


def propose_lessons(stats: Sequence[GroupStats], settings: Any, *, existing: Sequence[Lesson] = (),
                    now_ms: int | None = None) -> list[Lesson]:
    """New lessons (not yet stored) from significant groups; keys with an active lesson are skipped."""
    now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
    taken_keys = {(lz.rule.get("regime"), lz.rule.get("setup"), lz.rule.get("side"), lz.rule.get("kind"))
                  for lz in existing if lz.active}
    base = float(settings.ANALYST_MIN_CONFIDENCE)
    cap = min(100.0, base + float(settings.LESSON_MAX_CONFIDENCE_RAISE))
    out = []
    for s in stats:
        if s.count < int(settings.LESSON_MIN_SAMPLES):
            continue
        what = f"{s.side} {_plural(s.setup)} in a {s.regime} regime"
        figures = f"{s.win_rate:.0%} win rate, {s.avg_r:+.2f} R on average over {s.count}"
        if not s.vetoed and s.losing:
            if (s.regime, s.setup, s.side, "tighten") in taken_keys:
                continue
            rule: dict[str, Any] = {"kind": "tighten", "regime": s.regime, "setup": s.setup, "side": s.side,
                                    "min_confidence": min(cap, base + float(settings.LESSON_CONFIDENCE_STEP))}
            needs = [f"confidence >= {rule['min_confidence']:.0f}"]
            if s.setup in TREND_SETUPS and s.regime == "choppy":
                rule["min_adx"] = min(float(settings.LESSON_MAX_MIN_ADX), float(settings.ADX_TREND_THRESHOLD))
                needs.insert(0, f"ADX > {rule['min_adx']:.0f}")
            text = f"{_date(now_ms)}: {what}: {figures} trades; require {' and '.join(needs)}"
            out.append(Lesson(id=None, time_ms=now_ms, text=text, rule=rule))
        elif s.vetoed and s.winning:
            if (s.regime, s.setup, s.side, "note") in taken_keys:
                continue
            rule = {"kind": "note", "regime": s.regime, "setup": s.setup, "side": s.side}
            text = (f"{_date(now_ms)}: vetoed {what} would have made {figures} proposals; "
                    f"do not veto them on the setup alone")
            out.append(Lesson(id=None, time_ms=now_ms, text=text, rule=rule))
    return out


def effective_limits(lessons: Iterable[Lesson], settings: Any, *, regime: str, setup: str,
                     side: str) -> Limits:
    """Thresholds for one regime x setup x side: the base rule tightened by matching active
    lessons, and never beyond the config bounds whatever a stored rule says."""
    base = float(settings.ANALYST_MIN_CONFIDENCE)
    cap = min(100.0, base + float(settings.LESSON_MAX_CONFIDENCE_RAISE))
    min_conf, min_adx, sources = base, None, []
    for lz in lessons:
        r = lz.rule
        if not lz.active or r.get("kind") != "tighten":
            continue
        if (r.get("regime"), r.get("setup"), r.get("side")) != (regime, setup, side):
            continue
        if r.get("min_confidence") is not None:
            min_conf = max(min_conf, min(cap, float(r["min_confidence"])))
        if r.get("min_adx") is not None:
            adx = min(float(settings.LESSON_MAX_MIN_ADX), float(r["min_adx"]))
            min_adx = adx if min_adx is None else max(min_adx, adx)
        sources.append(lz.text)
    return Limits(min_confidence=min_conf, min_adx=min_adx, sources=tuple(sources))


def parse_lessons(rows: Iterable[Any]) -> list[Lesson]:
    """Lessons from journal rows (Lesson objects, dicts or objects with id/time_ms/text/rule/active)."""
    out = []
    for row in rows:
        if isinstance(row, Lesson):
            out.append(row)
            continue
        get = row.get if isinstance(row, Mapping) else (lambda k, d=None, _r=row: getattr(_r, k, d))
        rule = get("rule", {}) or {}
        if isinstance(rule, str):
            import json
            rule = json.loads(rule)
        out.append(Lesson(id=get("id"), time_ms=int(get("time_ms") or get("created_ms") or 0), text=str(get("text", "")),
                          rule=dict(rule), active=bool(get("active", True))))
    return out


def lessons_text(lessons: Iterable[Lesson], *, include_inactive: bool = False) -> list[str]:
    """One line per lesson for the UI: '#id [active] text'."""
    return [f"#{lz.id} [{'active' if lz.active else 'off'}] {lz.text}" for lz in lessons
            if lz.active or include_inactive]


def refresh_lessons(journal: Journal, settings: Any, *, candles: Mapping[str, pd.DataFrame] | None = None,
                    now_ms: int | None = None) -> list[Lesson]:
    """Read outcomes from `journal`, store the new lessons it teaches, and return them.

    Uses bot.journal.store.Journal's `closed_trades()`, `reviews(n=...)` (review records with their
    proposal), `lessons(active_only=False)` and `add_lesson(text, rule) -> id`.
    """
    reviews = list(journal.reviews(n=10_000_000))
    approved, vetoed = [], []
    for rec in reviews:
        get = rec.get if isinstance(rec, Mapping) else (lambda k, d=None, _r=rec: getattr(_r, k, d))
        proposal = dict(get("proposal", {}) or {})
        proposal.setdefault("time_ms", get("time_ms"))
        proposal.setdefault("symbol", get("symbol"))
        if get("stage") == "risk" and get("verdict") == "approve":
            approved.append(proposal)
        elif get("verdict") == "veto":
            vetoed.append(proposal)
    outcomes = trade_outcomes(journal.closed_trades(), approved)
    if candles:
        outcomes += veto_outcomes(vetoed, candles, fee_rate=float(settings.FEE_RATE),
                                  horizon_ms=int(float(settings.LESSON_COUNTERFACTUAL_DAYS) * DAY_MS))
    existing = parse_lessons(journal.lessons(active_only=False))
    new = propose_lessons(group_outcomes(outcomes), settings, existing=existing, now_ms=now_ms)
    stored = []
    for lz in new:
        lesson_id = journal.add_lesson(lz.text, lz.rule)
        stored.append(Lesson(id=lesson_id, time_ms=lz.time_ms, text=lz.text, rule=lz.rule))
    return stored
