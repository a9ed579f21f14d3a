"""Bybit's account as the private streams push it: the adapter's view of positions, wallet, orders
and executions while the stream is up, so fills and outside changes are known within a second and
REST account reads back off.

`AccountMirror.apply` takes each `AccountUpdate` (pybit's receive thread); the adapter
(`BybitExchange`) reads from it. A view is served only while the stream is connected *and* was
seeded over REST on this connection (`seed`: pushes only say what changed, and nothing is pushed
for what changed while the link was down); each reconnection needs a new seed, and a seed older
than `rest_seconds` is read anew (marks and unrealised P&L move between pushes). Newer pushes win
over an older seed: rows pushed after the REST read began are kept, rows dropped by the seed only
when no push touched them since.

An execution of an order this adapter did not place (a stop-loss Bybit executed, a close by hand on
the website, a liquidation) is an *outside change*:
`take_outside()` hands their symbols to the engine, which reconciles at once instead of at its
next periodic check.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bot.exchange.bybit_stream import AccountUpdate

__all__ = ["AccountMirror"]

KEEP_ORDERS = 10_000        # orders of ours remembered with their pushes
_FINAL = frozenset({"Filled", "Cancelled", "PartiallyFilledCanceled", "Deactivated", "Rejected"})


def _seq(row: dict[str, Any]) -> int:
    try:
        return int(row.get("seq") or 0)
    except (TypeError, ValueError):
        return 0


class AccountMirror:
    """The last pushed state of one Bybit account (see the module docstring)."""

    def __init__(self, *, rest_seconds: float = 60.0, quote: str = "USDT") -> None:
        self.rest_seconds = float(rest_seconds)
        self.quote = quote
        self._cond = threading.Condition()
        self._positions: dict[tuple[str, int], dict[str, Any]] = {}
        self._position_push: dict[str, float] = {}   # symbol -> monotonic time of its last push
        self._wallet: dict[str, Any] | None = None
        self._wallet_push = 0.0
        self._orders: dict[str, dict[str, Any]] = {}    # orderLinkId -> latest order row
        self._execs: dict[str, dict[str, dict[str, Any]]] = {}   # orderLinkId -> execId -> row
        self._seeded: dict[str, tuple[int, float]] = {}  # view -> (link epoch, monotonic time of the seed)
        self._mine: dict[str, None] = {}             # orderLinkIds this adapter placed, oldest first
        self._outside: set[str] = set()              # symbols changed from outside, not yet taken
        # an execution was pushed and the position / wallet push it causes has not come yet (Bybit
        # sends order, execution, position, wallet in that order, milliseconds apart)
        self._due: dict[str, set[str]] = {"positions": set(), "wallet": set()}
        self.epoch = 0                               # the link's connection the pushes come on
        self.connected = False
        self.pushes = 0

    # -- the stream's side ---------------------------------------------------------------------
    def link_state(self, connected: bool, epoch: int) -> None:
        """The private link's state; a new connection needs new seeds (what changed while it was
        down was never pushed), and is itself a possible outside change."""
        with self._cond:
            if connected and epoch != self.epoch:
                self._seeded.clear()
                if self.epoch:
                    self._outside.add("*")           # reconnected: let the engine check everything once
                self.epoch = epoch
            self.connected = connected
            self._cond.notify_all()

    def apply(self, update: AccountUpdate) -> None:
        """One push (pybit's receive thread: quick, never raises on a row of the wrong shape)."""
        now = update.received
        with self._cond:
            self.pushes += 1
            for row in update.rows:
                if update.topic == "position":
                    self._position(row, now)
                elif update.topic == "wallet":
                    if str(row.get("accountType", "UNIFIED")) == "UNIFIED":
                        self._wallet, self._wallet_push = dict(row), now
                        self._due["wallet"].clear()
                elif update.topic == "order":
                    link = str(row.get("orderLinkId") or "")
                    if link in self._mine:           # only ours are waited on (others: the reconcile)
                        old = self._orders.get(link)
                        if old is None or int(row.get("updatedTime") or 0) >= int(old.get("updatedTime") or 0):
                            self._orders[link] = dict(row)
                elif update.topic == "execution":
                    link = str(row.get("orderLinkId") or "")
                    ours = link in self._mine and row.get("execType", "Trade") == "Trade"
                    if not ours:
                        # a stop Bybit executed, a close by hand, a liquidation or ADL: the engine looks
                        self._outside.add(str(row.get("symbol") or "*"))
                    else:
                        self._execs.setdefault(link, {})[str(row.get("execId") or "")] = dict(row)
                    symbol = str(row.get("symbol") or "")
                    self._due["wallet"].add(symbol)
                    if str(row.get("category", "linear")) == "linear":
                        self._due["positions"].add(symbol)
            self._cond.notify_all()

    def _position(self, row: dict[str, Any], now: float) -> None:
        symbol = str(row.get("symbol") or "")
        if not symbol or str(row.get("category", "linear")) != "linear":
            return
        key = (symbol, int(row.get("positionIdx") or 0))
        old = self._positions.get(key)
        if old is not None and _seq(row) and _seq(old) and _seq(row) < _seq(old):
            return                                   # an older push overtaken by a newer one
        row = dict(row)
        row.setdefault("avgPrice", row.get("entryPrice", ""))   # the stream says entryPrice, REST avgPrice
        if not row.get("avgPrice"):
            row["avgPrice"] = row.get("entryPrice", "")
        self._positions[key] = row
        self._position_push[symbol] = now
        self._due["positions"].discard(symbol)

    # -- the adapter's side --------------------------------------------------------------------
    def placing(self, link: str) -> None:
        """An order of ours is about to be sent: its executions and position pushes are no outside change."""
        with self._cond:
            self._mine[link] = None
            if len(self._mine) > KEEP_ORDERS:        # a bot running for weeks: old orders' pushes came long ago
                for old in list(self._mine)[:KEEP_ORDERS // 2]:
                    del self._mine[old]
                    self._orders.pop(old, None)
                    self._execs.pop(old, None)

    def fresh(self, view: str, *, wait: float = 0.5) -> bool:
        """Is `view` ("positions" or "wallet") served from the pushes now? A view an execution
        has changed waits up to `wait` s for its push; if it does not come, REST reads it."""
        end = time.monotonic() + wait
        with self._cond:
            while self._due[view] and self.connected and (left := end - time.monotonic()) > 0:
                self._cond.wait(left)
            got = self._seeded.get(view)
            return (self.connected and not self._due[view] and got is not None and got[0] == self.epoch
                    and time.monotonic() - got[1] < self.rest_seconds)

    def seed(self, view: str, rows: list[dict[str, Any]], *, started: float, epoch: int) -> None:
        """`rows` as REST answered a read begun at monotonic `started` on connection `epoch`."""
        with self._cond:
            if epoch != self.epoch or not self.connected:
                return                               # the link changed meanwhile: seed again later
            if view == "wallet":
                self._due["wallet"].clear()
                if self._wallet_push < started:
                    self._wallet = next((dict(r) for r in rows if r.get("accountType", "UNIFIED") == "UNIFIED"),
                                        dict(rows[0]) if rows else None)
            else:
                fresh = {(str(r["symbol"]), int(r.get("positionIdx") or 0)): {**r, "category": "linear"}
                         for r in rows if r.get("symbol")}
                self._due["positions"].clear()
                for key in set(self._positions) | set(fresh):
                    if self._position_push.get(key[0], 0.0) >= started:
                        continue                     # pushed after the read began: the push is newer
                    if key in fresh:
                        self._positions[key] = fresh[key]
                    else:
                        self._positions.pop(key, None)
            self._seeded[view] = (epoch, time.monotonic())

    def wallet_rows(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(self._wallet)] if self._wallet is not None else []

    def position_rows(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(r) for r in self._positions.values()]

    def wait_order(self, link: str, timeout: float) -> dict[str, Any] | None:
        """The pushed row of our order once it says what became of it (a market order final, any
        other order seen), waiting up to `timeout` s; None when it did not come (read it over REST)."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                row = self._orders.get(link)
                if row is not None and (row.get("orderType") != "Market" or str(row.get("orderStatus")) in _FINAL):
                    return dict(row)
                left = end - time.monotonic()
                if left <= 0 or not self.connected:
                    return None
                self._cond.wait(left)

    def executions(self, link: str, timeout: float) -> list[dict[str, Any]] | None:
        """Every execution of our order `link`, once the pushed executions add up to the quantity
        its final pushed order row says was filled (waiting up to `timeout` s); None when they do
        not (read them over REST)."""
        end = time.monotonic() + timeout
        with self._cond:
            if link not in self._mine:
                return None                          # placed before this stream: only REST knows it all
            while True:
                order = self._orders.get(link)
                rows = list(self._execs.get(link, {}).values())
                if order is not None and str(order.get("orderStatus")) in _FINAL:
                    want = float(order.get("cumExecQty") or 0)
                    got = sum(float(r.get("execQty") or 0) for r in rows)
                    if abs(got - want) <= 1e-9 * max(1.0, want):
                        return sorted(rows, key=lambda r: (int(r.get("execTime") or 0), _seq(r)))
                left = end - time.monotonic()
                if left <= 0 or not self.connected:
                    return None
                self._cond.wait(left)

    def take_outside(self) -> set[str]:
        """Symbols changed from outside since the last call ("*": check everything)."""
        with self._cond:
            out, self._outside = self._outside, set()
            return out

