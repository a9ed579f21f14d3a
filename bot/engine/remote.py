"""What a person away from the window may ask the bot and tell it: Telegram commands and the web
dashboard both go through `RemoteControl`, over the very snapshot, trade book and journal the
window reads (no second source of truth).

Reads (any thread, never waiting on the engine thread): `status`, `trades`, `profit`,
`equity_curve`, `events`, `chart`. Orders: `pause`, `resume`, `close_all`, `stop`; each is run
the way the window runs it (close-all through the engine's command queue, position by position)
and journaled with its outcome (`record`). Live trading can never be started from here: there
is no method for it.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.engine.promotion import buy_and_hold_curve
from bot.engine.snapshot import EngineSnapshot, EngineStatus
from bot.errors import BotError
from bot.events import Event, EventKind
from bot.types import ClosedTrade, Mode

if TYPE_CHECKING:
    import pandas as pd

    from bot.engine.app import App

__all__ = ["RemoteControl", "ProfitReport", "CommandOutcome"]

log = logging.getLogger("bot.engine.remote")

DAY_MS = 86_400_000
CLOSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ProfitReport:
    """Closed round trips over a window, net of fees, next to buy-and-hold of the traded pairs."""

    days: float
    trades: int
    net: float                  # quote coin, net of every fee
    fees: float
    wins: int
    start_equity: float
    net_pct: float              # net / start equity
    buy_hold_pct: float | None  # equal-weight buy-and-hold of the active pairs over the same window


@dataclass(frozen=True)
class CommandOutcome:
    ok: bool
    text: str


class RemoteControl:
    """The App seen from a phone or a browser. `source` names who asks ("telegram", "dashboard")."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.engine = app.engine
        self._lock = threading.Lock()
        self._last_journal: Any = None
        self._seen: deque[Event] = deque(maxlen=500)   # the bus's events since this control exists
        self.engine.bus.add_callback(self._seen.append)

    # -- reads -----------------------------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        return self.engine.snapshot()

    def status(self) -> dict[str, Any]:
        """The snapshot as plain data: mode, data source, equity, positions with P&L and stops."""
        s = self.snapshot()
        return {
            "mode": str(s.mode), "status": str(s.status), "data_source": str(s.data_source),
            "connection": str(s.connection), "strategy": s.strategy, "equity": s.equity, "balance": s.balance,
            "available": s.available, "circuit": s.circuit, "training": s.training, "restarts": s.restarts,
            "active_pairs": list(s.active_pairs), "last_candle_ms": s.last_candle_ms, "time_ms": s.time_ms,
            "candles": int(s.metrics.get("candles", 0) or 0),
            "positions": [{"symbol": p.symbol, "side": str(p.side), "size": p.size, "entry_price": p.entry_price,
                           "mark_price": p.mark_price, "unrealised_pnl": p.unrealised_pnl,
                           "stop_loss": p.stop_loss, "take_profit": p.take_profit,
                           "unclosed": p.symbol in s.unclosed} for p in s.positions],
            "promotion": [{"name": c.name, "required": c.required, "actual": c.actual, "met": c.met}
                          for c in s.promotion],
        }

    def _journal(self) -> Any:
        """The journal the session writes (the replay's own when replaying), else the paper record;
        None when it keeps no record (a backtest's memory journal)."""
        from bot.engine.components import durable

        j = self.engine.session_journal() or self._last_journal   # after a stop: the journal it wrote
        if j is not None:
            self._last_journal = j
        else:
            if not self.engine.journals.record_exists():
                return None
            j = self.engine.journals.record()
        return durable(j)

    def _mode(self) -> Mode:
        m = str(self.snapshot().mode)
        return Mode.LIVE if m == "LIVE" else Mode.PAPER

    def trades(self, n: int = 10, since_ms: int | None = None) -> list[ClosedTrade]:
        """The last `n` closed round trips, newest last (journal; the session's when it keeps none)."""
        j = self._journal()
        found: list[ClosedTrade] = []
        if j is not None:
            try:
                found = list(j.closed_trades(mode=self._mode(), since_ms=since_ms))
            except BotError as exc:
                log.warning("trades not read from the journal: %s", exc)
        if not found:
            found = [t for t in self.engine.recent_trades if since_ms is None or t.exit_ms >= since_ms]
        found.sort(key=lambda t: t.exit_ms)
        return found[-n:] if n > 0 else found

    def now_ms(self) -> int:
        """The market's now: the last candle's close when replaying, else the wall clock."""
        return int(self.engine.market_clock() * 1000)

    def _frames(self) -> dict[str, pd.DataFrame]:
        frames = {}
        for sym in self.snapshot().active_pairs:
            cd = self.engine.chart_data(sym, n=2000)
            if cd is not None and len(cd.candles):
                frames[sym] = cd.candles
        return frames

    def profit(self, days: float = 7.0) -> ProfitReport:
        """Round trips closed in the last `days` (market time), net after fees, against buy-and-hold."""
        end = self.now_ms()
        start = end - int(days * DAY_MS)
        trades = self.trades(0, since_ms=start)
        net = float(sum(t.pnl for t in trades))
        curve = self.equity_curve()
        eq0 = next((e for t, e, _bh in curve if t >= start), 0.0) or self.snapshot().equity or 0.0
        bh_pct = None
        frames = self._frames()
        if frames:
            first = max(start, min(int(f.index[0]) for f in frames.values()))
            bh = buy_and_hold_curve(frames, np.array([first, end], dtype=np.int64))
            if bh is not None:
                bh_pct = float(bh[-1] - 1.0) * 100
        return ProfitReport(days=days, trades=len(trades), net=net, fees=float(sum(t.fees for t in trades)),
                            wins=sum(1 for t in trades if t.pnl > 0), start_equity=eq0,
                            net_pct=100 * net / eq0 if eq0 else 0.0, buy_hold_pct=bh_pct)

    def equity_curve(self, max_points: int = 2000) -> list[tuple[int, float, float]]:
        """(time ms, equity, buy-and-hold equity) of this session: the engine's equity points,
        with the start equity moved like an equal-weight holding of the active pairs."""
        pts = list(self.engine.state.equity_points)[-max_points:]
        if not pts:
            return []
        times = np.array([t for t, _e in pts], dtype=np.int64)
        bh = buy_and_hold_curve(self._frames(), times)
        eq0 = pts[0][1]
        return [(int(t), float(e), float(eq0 * bh[i]) if bh is not None else float(eq0))
                for i, (t, e) in enumerate(pts)]

    def events(self, n: int = 50) -> list[Event]:
        """The last `n` events, oldest first: the journal's, and those the bus published since
        this control was made (the journal may not keep every kind)."""
        found: list[Event] = list(self._seen)
        j = self._journal()
        if j is not None and hasattr(j, "recent_events") and n > 0:
            try:
                found += list(j.recent_events(n))
            except BotError as exc:
                log.warning("events not read from the journal: %s", exc)
        unique = {(e.time_ms, e.kind, e.message): e for e in found}
        ordered = sorted(unique.values(), key=lambda e: e.time_ms)
        return ordered[-n:] if n > 0 else []

    def chart(self, symbol: str, n: int = 300) -> dict[str, Any] | None:
        """Candles, trade markers, stop and take-profit of `symbol` for a browser chart."""
        cd = self.engine.chart_data(symbol, n)
        if cd is None:
            return None
        f = cd.candles
        t = (np.asarray(f.index, dtype=np.int64) // 1000).tolist()
        cols = {c: f[c].to_numpy(dtype=np.float64).tolist() for c in ("open", "high", "low", "close")}
        return {"symbol": cd.symbol, "interval": cd.interval, "source": cd.source,
                "candles": [{"time": t[i], "open": cols["open"][i], "high": cols["high"][i], "low": cols["low"][i],
                             "close": cols["close"][i]} for i in range(len(t))],
                "markers": [{"time": m.time_ms // 1000, "price": m.price, "side": m.side, "reason": m.reason}
                            for m in cd.markers],
                "stop_loss": cd.stop_loss, "take_profit": cd.take_profit}

    # -- orders ----------------------------------------------------------------------------------
    def record(self, source: str, command: str, outcome: CommandOutcome) -> None:
        """Journal a command and its outcome, and tell the bus (the window's log shows it)."""
        ev = self.engine.bus.emit(EventKind.INFO, f"{source} command {command}: {outcome.text}",
                                  level="INFO" if outcome.ok else "WARNING", source=source, command=command,
                                  ok=outcome.ok, outcome=outcome.text)
        j = self._journal()
        follows = getattr(j, "follows", None)
        if callable(follows) and follows(self.engine.bus):
            return                                  # the session's journal already wrote the bus event
        if j is not None and hasattr(j, "record_event"):
            try:
                j.record_event(ev)
            except BotError as exc:
                log.error("command %s not journaled: %s", command, exc)

    def pause(self) -> CommandOutcome:
        if not self.engine.running:
            return CommandOutcome(False, "the bot is not running")
        if self.snapshot().status == EngineStatus.PAUSED:
            return CommandOutcome(True, "already paused")
        self.engine.pause()
        return CommandOutcome(True, "paused: no new decisions; open positions keep their stops")

    def resume(self) -> CommandOutcome:
        if not self.engine.running:
            return CommandOutcome(False, "the bot is not running")
        if self.snapshot().status != EngineStatus.PAUSED:
            return CommandOutcome(True, "not paused; nothing to resume")
        self.engine.resume()
        return CommandOutcome(True, "resumed")

    def close_all(self, timeout: float = CLOSE_TIMEOUT_S) -> CommandOutcome:
        """Market-close every open position through the engine's command queue (as the window's
        close buttons do); waits up to `timeout` for the fills. Blocks: call it off any event loop."""
        with self._lock:
            symbols = [p.symbol for p in self.snapshot().positions]
            if not symbols:
                return CommandOutcome(True, "no open position")
            futures = {s: self.engine.submit_close_position(s) for s in symbols}
            done: list[str] = []
            failed: list[str] = []
            for sym, fut in futures.items():
                try:
                    res = fut.result(timeout)
                except (cf.TimeoutError, BotError) as exc:
                    failed.append(f"{sym} ({type(exc).__name__}: {exc})")
                    continue
                if res.ok:
                    done.append(sym)
                else:
                    failed.append(f"{sym} ({res.message or 'refused'})")
            parts = []
            if done:
                parts.append("closed " + ", ".join(done))
            if failed:
                parts.append("NOT closed " + ", ".join(failed))
            return CommandOutcome(not failed, "; ".join(parts))

    def stop(self, *, close_positions: bool, timeout: float = CLOSE_TIMEOUT_S) -> CommandOutcome:
        """Stop the bot as the window's Stop does: positions closed, or kept with their stops."""
        if not self.engine.running:
            return CommandOutcome(False, "the bot is not running")
        t0 = time.monotonic()
        self.app.stop(close_positions=close_positions, timeout=timeout)
        if self.engine.running:
            return CommandOutcome(False, f"the bot did not stop within {timeout:.0f} s")
        left = len(self.snapshot().positions)
        how = "all positions closed" if close_positions else f"{left} position(s) kept with their stops"
        return CommandOutcome(True, f"stopped in {time.monotonic() - t0:.1f} s; {how}")
