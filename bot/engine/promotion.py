"""Paper record -> metrics -> may the bot trade real money?

`PerformanceTracker` measures the paper journal (closed trades net of fees, the equity curve)
against buy-and-hold of the traded pairs over the same time. `PromotionGate` checks the
criteria from the settings and reports progress on each (`CriterionProgress`, shown by the UI).
`promotion_action` says what to do when the gate is passed: go live only when AUTO_LIVE is on,
keys are present AND the user's consent is stored; otherwise announce "ready" and wait.

Trades made while replaying recorded candles are journaled with mode "REPLAY" and never count
here: history is a backtest, not a paper record.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from bot.analysis.metrics import log_returns, max_drawdown, periods_per_year, sharpe, trade_stats
from bot.engine.snapshot import CriterionProgress
from bot.errors import BotError
from bot.events import EventBus, EventKind
from bot.types import ClosedTrade, Mode

if TYPE_CHECKING:
    from bot.engine.components import EngineJournal, Journals
    from bot.engine.engine_state import EngineState
    from config import Settings

__all__ = ["PaperRecord", "PerformanceTracker", "PromotionGate", "GateResult", "promotion_action",
           "buy_and_hold_curve", "PromotionWatch", "SwitchToLive", "GATE_OVERRIDE_WORD", "paper_record_gate",
           "gate_checklist", "override_request"]


class RecordJournal(Protocol):
    """What the tracker reads from a journal (`bot.journal.store.Journal`)."""

    def closed_trades(self, mode: Mode | None = None, since_ms: int | None = None) -> list[ClosedTrade]: ...

    def equity_history(self, mode: Mode) -> list[tuple[int, float, float]]: ...

DAY_MS = 86_400_000


@dataclass(frozen=True)
class PaperRecord:
    """The paper record's headline numbers (money in USDT, drawdown as a fraction)."""

    trades: int
    days: float
    net_profit: float
    fees: float
    win_rate: float
    profit_factor: float
    sharpe: float
    max_drawdown: float
    buy_hold_sharpe: float | None      # None: no prices of the traded pairs for that span
    buy_hold_return: float | None
    start_ms: int = 0
    end_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _sharpe_of(times_ms: np.ndarray, values: np.ndarray) -> float:
    """Annualised Sharpe of a curve sampled at (possibly irregular) times: periods per year from
    the curve's own density, so a curve sampled per candle or per minute is treated alike."""
    if len(values) < 3 or times_ms[-1] <= times_ms[0]:
        return 0.0
    return sharpe(log_returns(values), periods_per_year(times_ms=times_ms))


def buy_and_hold_curve(frames: dict[str, pd.DataFrame], times_ms: Sequence[int] | np.ndarray) -> np.ndarray | None:
    """Equal-weight buy-and-hold of `frames`' closes, sampled at `times_ms` (last close at or before
    each time), starting at 1.0. None when no pair has a price at the first time."""
    t = np.asarray(times_ms, dtype=np.int64)
    curves = []
    for f in frames.values():
        if len(f) == 0:
            continue
        idx = np.asarray(f.index, dtype=np.int64)
        close = f["close"].to_numpy(dtype=np.float64)
        pos = np.searchsorted(idx, t, side="right") - 1
        if pos[0] < 0:
            continue
        px = close[np.clip(pos, 0, None)]
        curves.append(px / px[0])
    if not curves:
        return None
    return np.asarray(np.mean(curves, axis=0))


class PerformanceTracker:
    """Measures a paper record: closed trades + equity curve, against buy-and-hold."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def measure(self, trades: Iterable[ClosedTrade], equity: Sequence[tuple[int, float]], *,
                prices: dict[str, pd.DataFrame] | None = None) -> PaperRecord:
        """`equity`: (time ms, equity) points, oldest first; `prices`: candle frames of the traded pairs."""
        trades = list(trades)
        pnls = [t.pnl for t in trades]
        ts = trade_stats(pnls)
        eq = sorted(equity)
        times = np.array([p[0] for p in eq], dtype=np.int64)
        values = np.array([p[1] for p in eq], dtype=np.float64)
        starts = [t.entry_ms for t in trades] + ([int(times[0])] if len(times) else [])
        ends = [t.exit_ms for t in trades] + ([int(times[-1])] if len(times) else [])
        start = min(starts) if starts else 0
        end = max(ends) if ends else 0
        bh_sharpe = bh_ret = None
        if prices and len(times) >= 3:
            traded = {s: f for s, f in prices.items() if s in {t.symbol for t in trades}} or prices
            bh = buy_and_hold_curve(traded, times)
            if bh is not None:
                bh_sharpe = _sharpe_of(times, bh)
                bh_ret = float(bh[-1] - 1.0)
        return PaperRecord(
            trades=ts.trades, days=(end - start) / DAY_MS if end > start else 0.0, net_profit=float(sum(pnls)),
            fees=float(sum(t.fees for t in trades)), win_rate=ts.win_rate, profit_factor=ts.profit_factor,
            sharpe=_sharpe_of(times, values), max_drawdown=max_drawdown(values).max_drawdown if len(values) else 0.0,
            buy_hold_sharpe=bh_sharpe, buy_hold_return=bh_ret, start_ms=int(start), end_ms=int(end))

    def from_journal(self, journal: RecordJournal, *, mode: Mode = Mode.PAPER,
                     prices: dict[str, pd.DataFrame] | None = None) -> PaperRecord:
        """The record of `mode` in the SQLite journal (`bot.journal.store.Journal`)."""
        trades = journal.closed_trades(mode=mode)
        equity = [(t, e) for t, e, _b in journal.equity_history(mode)]
        return self.measure(trades, equity, prices=prices)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    criteria: tuple[CriterionProgress, ...]

    @property
    def missing(self) -> list[str]:
        return [c.name for c in self.criteria if not c.met]


def _fmt_pf(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.2f}"


class PromotionGate:
    """The criteria a paper record must meet before real money (PROMOTION_* settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def evaluate(self, r: PaperRecord) -> GateResult:
        s = self.settings
        bh = r.buy_hold_sharpe
        crit = (
            CriterionProgress("closed trades", f">= {s.PROMOTION_MIN_TRADES}", str(r.trades),
                              r.trades >= s.PROMOTION_MIN_TRADES),
            CriterionProgress("days of record", f">= {s.PROMOTION_MIN_DAYS:g}", f"{r.days:.1f}",
                              r.days >= s.PROMOTION_MIN_DAYS),
            CriterionProgress("net profit after fees", "> 0 USDT", f"{r.net_profit:+.2f}", r.net_profit > 0),
            CriterionProgress("profit factor", f">= {s.PROMOTION_MIN_PROFIT_FACTOR:g}", _fmt_pf(r.profit_factor),
                              r.profit_factor >= s.PROMOTION_MIN_PROFIT_FACTOR),
            CriterionProgress("max drawdown", f"<= {s.PROMOTION_MAX_DRAWDOWN:.0%}", f"{r.max_drawdown:.1%}",
                              r.max_drawdown <= s.PROMOTION_MAX_DRAWDOWN),
            CriterionProgress("Sharpe vs buy-and-hold", "above buy-and-hold" + ("" if bh is None else f" ({bh:.2f})"),
                              f"{r.sharpe:.2f}", bh is not None and r.sharpe > bh),
        )
        return GateResult(all(c.met for c in crit), crit)


def promotion_action(result: GateResult, *, auto_live: bool, has_keys: bool, has_consent: bool) -> tuple[str, str]:
    """("live" | "ready" | "wait", why). "live" only with the gate passed, AUTO_LIVE, keys AND consent."""
    if not result.passed:
        return "wait", "not yet: " + ", ".join(result.missing)
    lacking = [name for name, ok in (("AUTO_LIVE is off", auto_live), ("no Bybit keys", has_keys),
                                     ("no stored consent", has_consent)) if not ok]
    if lacking:
        return "ready", ("the paper record passed every promotion criterion; staying in paper because "
                         + ", ".join(lacking))
    return "live", "the paper record passed every promotion criterion; AUTO_LIVE with keys and consent: going live"


class SwitchToLive(BotError):
    """Ends the paper session so the thread starts the live one (not an error, not a restart)."""


class PromotionWatch:
    """Once a minute in paper: the paper record's progress into the engine's state (the window
    shows it), and the action when every criterion is met (never without keys and consent).

    A REPLAY session shows the progress of the real paper record (the main journal) but adds
    nothing to it and never acts on it: replayed history is a backtest, not a paper record."""

    def __init__(self, settings: Settings, state: EngineState, bus: EventBus, *, journals: Journals,
                 consent: Callable[[], bool]) -> None:
        self.settings = settings
        self.state = state
        self.bus = bus
        self.journals = journals
        self.consent = consent

    def check(self, session_journal: EngineJournal) -> None:
        """Measure and judge the record; raises `SwitchToLive` (mode set to LIVE) to go live."""
        from bot.engine.components import durable

        st = self.state
        if st.mode != "PAPER":
            return
        tracker = PerformanceTracker(self.settings)
        prices = {s: ps.frame() for s, ps in st.pairs.items()}
        if st.replay:
            main = durable(self.journals.record()) if self.journals.record_exists() else None
            record = (tracker.from_journal(main, mode=Mode.PAPER, prices=prices) if main is not None
                      else tracker.measure([], []))
        else:
            journal = durable(session_journal)
            if journal is None:
                return
            record = tracker.from_journal(journal, mode=Mode.PAPER, prices=prices)
        result = PromotionGate(self.settings).evaluate(record)
        st.promotion = result.criteria
        st.metrics = {k: v for k, v in record.as_dict().items() if k not in ("start_ms", "end_ms")}
        if not result.passed or st.replay:
            return
        action, why = promotion_action(result, auto_live=self.settings.AUTO_LIVE,
                                       has_keys=self.settings.has_bybit_keys, has_consent=self.consent())
        if action == "ready" and not st.ready_alerted:
            st.ready_alerted = True
            self.bus.emit(EventKind.PROMOTION, f"READY FOR LIVE: {why}", level="WARNING")
        elif action == "live":
            self.bus.emit(EventKind.PROMOTION, f"GOING LIVE: {why}", level="CRITICAL")
            st.mode = Mode.LIVE
            raise SwitchToLive()


# -- the gate as a person about to go live sees it (the window's consent dialog, `bot live`) ---------
GATE_OVERRIDE_WORD = "OVERRIDE"   # typed to go live although the gate has not passed
REPLAY_NOTE = "replay sessions (recorded candles) never count toward this record"


def _cached_prices(settings: Settings, symbols: Iterable[str]) -> dict[str, pd.DataFrame]:
    """Candles of `symbols` at the bot's interval from the local candle cache (no network)."""
    from pathlib import Path

    from bot.market.cache import CandleCache

    cache = CandleCache(Path(settings.data_dir) / "candles")
    out: dict[str, pd.DataFrame] = {}
    for sym in symbols:
        try:
            if cache.exists(sym, settings.CANDLE_INTERVAL):
                out[sym] = cache.read(sym, settings.CANDLE_INTERVAL)
        except Exception:   # a damaged cache file only costs the buy-and-hold comparison
            continue
    return out


def paper_record_gate(settings: Settings) -> GateResult:
    """The gate on the paper record as it stands now (state.db; nothing is created by looking),
    buy-and-hold from the cached candles of the traded pairs."""
    from pathlib import Path

    tracker = PerformanceTracker(settings)
    path = Path(settings.data_dir) / "state.db"
    if not path.exists():
        return PromotionGate(settings).evaluate(tracker.measure([], []))
    from bot.journal.store import Journal

    journal = Journal(path)
    try:
        symbols = {t.symbol for t in journal.closed_trades(mode=Mode.PAPER)}
        record = tracker.from_journal(journal, mode=Mode.PAPER, prices=_cached_prices(settings, symbols))
    finally:
        journal.close()
    return PromotionGate(settings).evaluate(record)


def gate_checklist(result: GateResult) -> str:
    """The gate's criteria, one line each, for a dialog or a terminal."""
    lines = [f"{'[x]' if c.met else '[ ]'} {c.name}: {c.actual} (needs {c.required})" for c in result.criteria]
    met = sum(1 for c in result.criteria if c.met)
    lines.append(f"{met} of {len(result.criteria)} met; {REPLAY_NOTE}")
    return "\n".join(lines)


def override_request(result: GateResult) -> str:
    """What a person must read before overriding the gate: the unmet criteria by name."""
    return (f"The paper record has NOT passed the promotion gate. Unmet: {', '.join(result.missing)}.\n"
            f"Type {GATE_OVERRIDE_WORD} to trade real money anyway (journaled as a gate override).")
