"""Journal: what must survive a crash. `Journal` is the SQLite journal (WAL, one writer, every
change one transaction): order intents, orders, fills, positions, closed trades, equity, events,
vetoes and bot state. `OrderJournal` is what the executor needs of a journal; `MemoryJournal`
keeps it in memory for backtests and tests. Crash points let the tests kill a process mid-order.

Import rule (docs/architecture.md): journal never imports the engine; it uses only the primitives.
Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.journal.base import MemoryJournal, OrderJournal
    from bot.journal.store import Journal

__all__ = [
    "Journal", "MemoryJournal", "OrderJournal",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "Journal": "store", "MemoryJournal": "base", "OrderJournal": "base",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
