"""What the bot needs from a journal (`Journal`, and its order part `OrderJournal`), and an
in-memory one for backtests and tests (`MemoryJournal`).

`bot.journal.store.Journal` implements `Journal` on SQLite. `MemoryJournal` implements it too, so
no caller has to ask a journal what it can do: it keeps the order bookkeeping (intents, orders,
fills) in memory and keeps nothing else. Its positions, trades, equity, state, reviews and lessons
are empty, and writing them does nothing, because a backtest's record is its result, not a journal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from bot.errors import JournalError
from bot.types import ClosedTrade, Fill, Mode, Order, OrderIntent, OrderStatus, Position

__all__ = ["OrderJournal", "Journal", "MemoryJournal"]

_QTY_EPS = 1e-9   # relative: fills that add up to the order's quantity within this are complete


@runtime_checkable
class OrderJournal(Protocol):
    """Where the executor writes intents and fills (journal first, then the exchange)."""

    def record_intent(self, intent: OrderIntent) -> None:
        """Journal an order before it is sent; a client order id can be journaled once (ValueError)."""
        ...

    def update_intent(self, client_order_id: str, status: OrderStatus, *, exchange_order_id: str = "",
                      error: str = "") -> None:
        """The outcome of a journaled intent; an id never journaled is a KeyError."""
        ...

    def record_fill(self, fill: Fill, *, mode: Mode) -> None: ...
    def record_outcome(self, order: Order, fills: Sequence[Fill], *, mode: Mode, error: str = "") -> None:
        """What the exchange did with a journaled order: its status, the order as the exchange
        knows it and its fills, all or nothing (one transaction), so a crash never leaves an
        order marked filled without the fills that say at what price."""
        ...
    def get_intent(self, client_order_id: str) -> OrderIntent | None: ...
    def unresolved_intents(self) -> list[OrderIntent]:
        """Intents whose fate on the exchange is not known yet (pending, sent, lost)."""
        ...
    def fills_missing(self, mode: Mode) -> list[OrderIntent]:
        """(Partly) filled intents of `mode` whose journaled fills add up to less than the
        exchange filled (the fills could not be read when the order was answered)."""
        ...


@runtime_checkable
class Journal(OrderJournal, Protocol):
    """Everything the engine, the executor, recovery, the risk manager and the review pipeline use
    of a journal."""

    # -- orders, fills, positions (recovery) ---------------------------------------------------
    def record_order(self, order: Order, mode: Mode) -> None:
        """The exchange's view of an order; moves its intent along unless the intent is final."""
        ...

    def fills(self, *, client_order_id: str | None = None, symbol: str | None = None,
              mode: Mode | None = None) -> list[Fill]:
        """Stored executions, oldest first, filtered by any of order id, symbol, mode."""
        ...

    def positions(self, mode: Mode | None = None) -> list[Position]: ...
    def upsert_position(self, position: Position, *, mode: Mode = Mode.PAPER) -> None: ...
    def close_position(self, trade: ClosedTrade) -> None:
        """Record a round trip and drop its open position, in one go."""
        ...

    # -- the record (promotion gate, lessons) ----------------------------------------------------
    def record_closed_trade(self, trade: ClosedTrade) -> None: ...
    def closed_trades(self, mode: Mode | None = None, since_ms: int | None = None) -> list[ClosedTrade]:
        """Round trips, oldest exit first."""
        ...

    def record_equity(self, time_ms: int, equity: float, balance: float, mode: Mode) -> None: ...
    def equity_history(self, mode: Mode) -> list[tuple[int, float, float]]:
        """(time_ms, equity, balance) points, oldest first."""
        ...

    # -- bot state (live consent, replay cursor) -----------------------------------------------
    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-able value under `key`."""
        ...

    def get_state(self, key: str, default: Any = None) -> Any: ...

    # -- vetoes, reviews, lessons (risk manager, review pipeline) --------------------------------
    def record_veto(self, symbol: str, source: str, reason: str, data: dict[str, Any] | None = None) -> None: ...
    def record_review(self, time_ms: int, symbol: str, stage: str, reviewer: str, verdict: str, reason: str,
                      proposal: dict[str, Any]) -> None: ...
    def reviews(self, symbol: str | None = None, n: int = 100) -> list[dict[str, Any]]:
        """The last `n` review records, oldest first, each with its `proposal` dict."""
        ...

    def add_lesson(self, text: str, rule: dict[str, Any]) -> int:
        """Store a lesson; its id."""
        ...

    def lessons(self, active_only: bool = True) -> list[dict[str, Any]]: ...
    def set_lesson_active(self, lesson_id: int, active: bool) -> None:
        """Switch a lesson off or on; JournalError when the journal has no such lesson."""
        ...

    # -- life ----------------------------------------------------------------------------------
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class MemoryJournal:
    """The in-memory `Journal` (backtests, tests). Thread-safe.

    Kept: intents, orders and fills, with the SQLite journal's rules (an id is journaled once, an
    update needs a journaled id, a final intent is not moved by a later order report). Not kept:
    positions, round trips, equity, state, vetoes, reviews and lessons: reads give empty results
    (`get_state` its default) and writes do nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._intents: dict[str, OrderIntent] = {}       # as journaled
        # What became of an intent since: (status, exchange order id, error). The intent as it
        # stands is put together when it is read (`_current`), so the two updates every order gets
        # are a dict write each, not a copy of the whole record (a backtest journals every order).
        self._fates: dict[str, tuple[OrderStatus, str, str]] = {}
        self._orders: dict[str, tuple[Order, Mode]] = {}
        self._fills: list[tuple[Fill, Mode]] = []
        self._fill_keys: set[tuple[str, str]] = set()   # (order id, exec id) of the fills above that have one

    # -- OrderJournal ------------------------------------------------------------------------------
    def record_intent(self, intent: OrderIntent) -> None:
        with self._lock:
            if intent.client_order_id in self._intents:
                raise ValueError(f"client order id {intent.client_order_id} is already journaled")
            self._intents[intent.client_order_id] = intent

    def update_intent(self, client_order_id: str, status: OrderStatus, *, exchange_order_id: str = "",
                      error: str = "") -> None:
        with self._lock:
            self._update(self._intents[client_order_id], status, exchange_order_id, error)

    def _fate(self, intent: OrderIntent) -> tuple[OrderStatus, str, str]:
        """(status, exchange order id, error) of `intent` now."""
        return self._fates.get(intent.client_order_id) or (intent.status, intent.exchange_order_id, intent.error)

    def _update(self, intent: OrderIntent, status: OrderStatus, exchange_order_id: str, error: str) -> None:
        _, old_id, old_error = self._fate(intent)
        self._fates[intent.client_order_id] = (status, exchange_order_id or old_id, error or old_error)

    def _current(self, intent: OrderIntent) -> OrderIntent:
        """The intent as it stands: as journaled, with what became of it since."""
        fate = self._fates.get(intent.client_order_id)
        if fate is None:
            return intent
        status, exchange_order_id, error = fate
        return replace(intent, status=status, exchange_order_id=exchange_order_id, error=error)

    def record_fill(self, fill: Fill, *, mode: Mode) -> None:
        with self._lock:
            self._fills.append((fill, mode))
            if fill.exec_id:
                self._fill_keys.add((fill.client_order_id, fill.exec_id))

    def record_outcome(self, order: Order, fills: Sequence[Fill], *, mode: Mode, error: str = "") -> None:
        with self._lock:
            self._orders[order.client_order_id] = (order, mode)
            self._update(self._intents[order.client_order_id], order.status, order.exchange_order_id, error)
            seen = self._fill_keys   # kept as fills come: a backtest's thousands of orders stay linear
            for f in fills:
                if f.exec_id:
                    key = (f.client_order_id, f.exec_id)
                    if key in seen:
                        continue
                    seen.add(key)
                self._fills.append((f, mode))

    def fills_missing(self, mode: Mode) -> list[OrderIntent]:
        with self._lock:
            out = []
            for i in self._intents.values():
                if i.mode != mode or self._fate(i)[0] not in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
                    continue
                found = self._orders.get(i.client_order_id)
                want = found[0].filled_qty if found is not None else i.qty
                have = sum(f.qty for f, _ in self._fills if f.client_order_id == i.client_order_id)
                if have < want - _QTY_EPS * max(1.0, want):
                    out.append(self._current(i))
            return out

    def get_intent(self, client_order_id: str) -> OrderIntent | None:
        with self._lock:
            i = self._intents.get(client_order_id)
            return None if i is None else self._current(i)

    def unresolved_intents(self) -> list[OrderIntent]:
        with self._lock:
            return [self._current(i) for i in self._intents.values() if self._fate(i)[0] in OrderStatus.UNRESOLVED]

    # -- what is kept, read back -------------------------------------------------------------------
    def intents(self, *, mode: Mode | None = None, symbol: str | None = None) -> list[OrderIntent]:
        """Every journaled intent, in the order they were journaled."""
        with self._lock:
            return [self._current(i) for i in self._intents.values()
                    if (mode is None or i.mode == mode) and (symbol is None or i.symbol == symbol)]

    def record_order(self, order: Order, mode: Mode) -> None:
        with self._lock:
            self._orders[order.client_order_id] = (order, mode)
            old = self._intents.get(order.client_order_id)
            if old is not None and self._fate(old)[0] not in OrderStatus.FINAL:
                self._update(old, order.status, order.exchange_order_id, "")

    def get_order(self, client_order_id: str) -> Order | None:
        with self._lock:
            found = self._orders.get(client_order_id)
            return found[0] if found is not None else None

    def fills(self, *, client_order_id: str | None = None, symbol: str | None = None,
              mode: Mode | None = None) -> list[Fill]:
        with self._lock:
            return [f for f, m in self._fills
                    if (client_order_id is None or f.client_order_id == client_order_id)
                    and (symbol is None or f.symbol == symbol) and (mode is None or m == mode)]

    # -- what is not kept ----------------------------------------------------------------------------
    def positions(self, mode: Mode | None = None) -> list[Position]:
        return []

    def upsert_position(self, position: Position, *, mode: Mode = Mode.PAPER) -> None:
        pass

    def close_position(self, trade: ClosedTrade) -> None:
        pass

    def record_closed_trade(self, trade: ClosedTrade) -> None:
        pass

    def closed_trades(self, mode: Mode | None = None, since_ms: int | None = None) -> list[ClosedTrade]:
        return []

    def record_equity(self, time_ms: int, equity: float, balance: float, mode: Mode) -> None:
        pass

    def equity_history(self, mode: Mode) -> list[tuple[int, float, float]]:
        return []

    def set_state(self, key: str, value: Any) -> None:
        pass

    def get_state(self, key: str, default: Any = None) -> Any:
        return default

    def record_veto(self, symbol: str, source: str, reason: str, data: dict[str, Any] | None = None) -> None:
        pass

    def record_review(self, time_ms: int, symbol: str, stage: str, reviewer: str, verdict: str, reason: str,
                      proposal: dict[str, Any]) -> None:
        pass

    def reviews(self, symbol: str | None = None, n: int = 100) -> list[dict[str, Any]]:
        return []

    def add_lesson(self, text: str, rule: dict[str, Any]) -> int:
        """Nothing is stored: 0, which no stored lesson has (SQLite ids start at 1)."""
        return 0

    def lessons(self, active_only: bool = True) -> list[dict[str, Any]]:
        return []

    def set_lesson_active(self, lesson_id: int, active: bool) -> None:
        raise JournalError(f"lesson {lesson_id} is not in the journal: an in-memory journal keeps no lessons")

    # -- life ----------------------------------------------------------------------------------------
    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:  # mypy proves here that the in-memory journal is a whole `Journal`
    _memory_is_a_journal: type[Journal] = MemoryJournal
