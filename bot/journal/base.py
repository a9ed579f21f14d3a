"""What the executor needs from a journal, and an in-memory one for backtests and tests.

`bot.journal.store.Journal` implements `OrderJournal` on SQLite; `MemoryJournal` keeps it in memory.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol, runtime_checkable

from bot.types import Fill, OrderIntent, OrderStatus

__all__ = ["OrderJournal", "MemoryJournal"]


@runtime_checkable
class OrderJournal(Protocol):
    """Where the executor writes intents, orders and fills. `bot/journal/store.py` implements it on SQLite;
    `MemoryJournal` in memory (tests, backtests)."""

    def record_intent(self, intent: OrderIntent) -> None: ...
    def update_intent(self, client_order_id: str, status: str, *, exchange_order_id: str = "",
                      error: str = "") -> None: ...
    def record_fill(self, fill: Fill, *, mode: str) -> None: ...
    def get_intent(self, client_order_id: str) -> OrderIntent | None: ...
    def unresolved_intents(self) -> list[OrderIntent]: ...


class MemoryJournal:
    """An in-memory `OrderJournal` (tests, backtests). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.intents: dict[str, OrderIntent] = {}
        self.fills: list[tuple[Fill, str]] = []

    def record_intent(self, intent: OrderIntent) -> None:
        with self._lock:
            if intent.client_order_id in self.intents:
                raise ValueError(f"client order id {intent.client_order_id} is already journaled")
            self.intents[intent.client_order_id] = intent

    def update_intent(self, client_order_id: str, status: str, *, exchange_order_id: str = "",
                      error: str = "") -> None:
        with self._lock:
            old = self.intents[client_order_id]
            self.intents[client_order_id] = replace(
                old, status=status, exchange_order_id=exchange_order_id or old.exchange_order_id,
                error=error or old.error)

    def record_fill(self, fill: Fill, *, mode: str) -> None:
        with self._lock:
            self.fills.append((fill, mode))

    def get_intent(self, client_order_id: str) -> OrderIntent | None:
        with self._lock:
            return self.intents.get(client_order_id)

    def unresolved_intents(self) -> list[OrderIntent]:
        with self._lock:
            return [i for i in self.intents.values() if i.status in OrderStatus.UNRESOLVED]
