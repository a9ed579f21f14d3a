"""What the charts plot over time, collected from the snapshots the window polls.

The engine's snapshot is an instant; the Equity, P&L and Training charts need a past. The Tk
thread records each new snapshot here (cheap appends), and the chart thread takes a copy under
the lock when it draws. One point per candle (the latest value wins), capped in length.

Times are candle times, never the wall clock: a point is recorded only once the session has a
closed candle (a replay's 2017 candles would otherwise all be "older" than a wall-clock first
point and be dropped). Before Start, `load_past` fills it from the journal's record.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.engine.snapshot import EngineSnapshot
from bot.types import ClosedTrade

__all__ = ["SessionHistory", "HistoryCopy"]


@dataclass(frozen=True)
class HistoryCopy:
    """A consistent copy of the history for one redraw."""

    time_ms: tuple[int, ...]
    equity: tuple[float, ...]
    balance: tuple[float, ...]
    buy_hold: tuple[float, ...]
    trades: tuple[ClosedTrade, ...]
    steps: tuple[float, ...]
    loss: tuple[float, ...]
    reward: tuple[float, ...]
    epsilon: tuple[float, ...]
    version: int
    checkpoint: dict = field(default_factory=dict)   # which checkpoint the agent runs, its walk-forward record


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Equal, counting NaN == NaN (a missing loss is not a change)."""
    return all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


class SessionHistory:
    """Equity, balance, buy-and-hold, closed trades and learner curves of this session."""

    def __init__(self, *, max_points: int = 5000, max_trades: int = 2000) -> None:
        self._lock = threading.Lock()
        self._max_points = max_points
        self._t: deque[int] = deque(maxlen=max_points)
        self._equity: deque[float] = deque(maxlen=max_points)
        self._balance: deque[float] = deque(maxlen=max_points)
        self._bh: deque[float] = deque(maxlen=max_points)
        self._trades: dict[tuple, ClosedTrade] = {}
        self._max_trades = max_trades
        self._learn: deque[tuple[float, float, float, float]] = deque(maxlen=max_points)
        self._start_prices: dict[str, float] = {}
        self._start_equity = 0.0
        self._session_points = 0   # points recorded from a running session (past ones excluded)
        self._checkpoint: dict = {}
        self.version = 0  # bumps on every change so a chart can skip a redraw with nothing new

    def _clear(self, *, everything: bool) -> None:
        """(Under the lock.) A fresh session's start; `everything`: the curves and trades too."""
        if everything:
            for d in (self._t, self._equity, self._balance, self._bh, self._learn):
                d.clear()
            self._trades.clear()
        self._start_prices.clear()
        self._start_equity = 0.0
        self._session_points = 0
        self.version += 1

    def reset(self) -> None:
        with self._lock:
            self._clear(everything=True)

    def new_session(self) -> None:
        """A session starts: the past stays on the chart; buy-and-hold starts again from here."""
        with self._lock:
            self._clear(everything=False)

    def load_past(self, points: Sequence[tuple[int, float, float]], trades: Sequence[ClosedTrade],
                  learner: Sequence[tuple[float, float, float, float]] = ()) -> None:
        """Replace everything with the journal's record: (candle ms, equity, balance) points, closed
        trades, and the learner's (steps, loss, reward, epsilon) curve from its checkpoint."""
        with self._lock:
            self._clear(everything=True)
            last = -1
            for t, eq, bal in points:
                if t > last:
                    self._t.append(int(t))
                    self._equity.append(float(eq))
                    self._balance.append(float(bal))
                    self._bh.append(float("nan"))   # buy-and-hold is drawn from a session's start
                    last = t
                else:   # several writes for one candle: the latest wins
                    self._equity[-1], self._balance[-1] = float(eq), float(bal)
            for tr in trades:
                self._trades[self._key(tr)] = tr
            while len(self._trades) > self._max_trades:
                self._trades.pop(next(iter(self._trades)))
            for point in learner:
                if not self._learn or point[0] > self._learn[-1][0]:
                    self._learn.append(tuple(float(x) for x in point))  # type: ignore[arg-type]
            self.version += 1

    @staticmethod
    def _key(tr: ClosedTrade) -> tuple:
        return (tr.symbol, tr.entry_ms, tr.exit_ms, tr.side, tr.qty)

    def _buy_hold(self, snap: EngineSnapshot) -> float:
        """Start equity moved like an equal-weight holding of the pairs traded this session."""
        for sym, price in snap.last_prices.items():
            if price > 0:
                self._start_prices.setdefault(sym, price)
        ratios = [snap.last_prices[s] / p0 for s, p0 in self._start_prices.items()
                  if snap.last_prices.get(s, 0) > 0]
        return self._start_equity * (sum(ratios) / len(ratios)) if ratios else self._start_equity

    def record(self, snap: EngineSnapshot) -> bool:
        """Add what is new in `snap`; returns True when anything changed."""
        changed = False
        with self._lock:
            t = snap.last_candle_ms
            if snap.equity > 0 and t > 0:   # candle time only: no point before the first candle
                if self._session_points == 0:
                    self._start_equity = snap.equity
                    if self._t and t < self._t[-1]:
                        # the market clock went back (a replay started over): the past line would
                        # hide the session's; the closed trades stay
                        for d in (self._t, self._equity, self._balance, self._bh):
                            d.clear()
                bh = self._buy_hold(snap)
                if self._t and self._t[-1] == t:
                    if not _same((self._equity[-1], self._balance[-1], self._bh[-1]), (snap.equity, snap.balance, bh)):
                        self._equity[-1], self._balance[-1], self._bh[-1] = snap.equity, snap.balance, bh
                        changed = True
                    self._session_points = max(self._session_points, 1)
                elif not self._t or t > self._t[-1]:
                    self._t.append(t)
                    self._equity.append(snap.equity)
                    self._balance.append(snap.balance)
                    self._bh.append(bh)
                    self._session_points += 1
                    changed = True
            for tr in snap.recent_trades:
                key = self._key(tr)
                if key not in self._trades:
                    self._trades[key] = tr
                    changed = True
            while len(self._trades) > self._max_trades:
                self._trades.pop(next(iter(self._trades)))
            if snap.checkpoint and snap.checkpoint.get("summary") != self._checkpoint.get("summary"):
                self._checkpoint = snap.checkpoint
                changed = True
            steps = float(snap.learner.get("steps") or 0.0) if snap.learner else 0.0
            if steps > 0:  # a learner that reports its step count (strategies that do not learn: none)
                point = (steps, float(snap.learner.get("loss", float("nan"))),
                         float(snap.learner.get("reward", float("nan"))), float(snap.epsilon))
                if not self._learn or steps > self._learn[-1][0]:
                    self._learn.append(point)
                    changed = True
                elif steps == self._learn[-1][0] and not _same(point, self._learn[-1]):
                    self._learn[-1] = point
                    changed = True
            if changed:
                self.version += 1
        return changed

    def copy(self) -> HistoryCopy:
        with self._lock:
            learn = list(self._learn)
            trades = sorted(self._trades.values(), key=lambda t: t.exit_ms)
            return HistoryCopy(time_ms=tuple(self._t), equity=tuple(self._equity),
                               balance=tuple(self._balance), buy_hold=tuple(self._bh), trades=tuple(trades),
                               steps=tuple(x[0] for x in learn), loss=tuple(x[1] for x in learn),
                               reward=tuple(x[2] for x in learn), epsilon=tuple(x[3] for x in learn),
                               version=self.version, checkpoint=self._checkpoint)
