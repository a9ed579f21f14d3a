"""Crash points for the crash-safety tests: kill the process at a chosen moment of an order.

`Journal.for_settings` wraps the journal in `CrashingJournal` when the setting `CRASH_AT` is
set (it is empty in normal use, so nothing here runs on the hot path). Because the executor
writes the journal at each step of an order, the journal is where "after the intent",
"after the send" and "after the fill" can be caught without touching the executor:

- `after_intent`: right after the intent is committed, before anything is sent;
- `after_send`:   the exchange accepted the order, but the process dies before its answer is
                  journaled (the first write that carries the exchange's answer is never made);
- `after_fill`:   right after the first fill is committed (with the order's status, in one
                  transaction: `record_outcome`), before the rest of the bookkeeping;
- `after_outcome`: right after the order's outcome is committed, fills or none (they may not
                  have been readable yet), before the position bookkeeping.

The kill is SIGKILL: no `finally`, no `atexit`, no flush, exactly like a power cut of the
process (the OS still has what SQLite committed). It happens once per data folder: a marker
file `.crashed-<point>` next to the journal is written first, so the restarted process (which
inherits the environment, e.g. under the supervisor) runs on and shows that it recovers.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from bot.journal.base import Journal
from bot.types import Fill, Mode, Order, OrderIntent, OrderStatus

__all__ = ["CrashingJournal", "CRASH_POINTS"]

log = logging.getLogger(__name__)

CRASH_POINTS = ("after_intent", "after_send", "after_fill", "after_outcome")
_BEFORE_ANSWER = frozenset({OrderStatus.PENDING, OrderStatus.SENT})


def _die(point: str, marker: Path | None) -> None:
    if marker is not None:
        if marker.exists():
            return  # crashed here once already: this is the restarted process
        with open(marker, "w") as fh:
            fh.write(point)
            fh.flush()
            os.fsync(fh.fileno())
    log.critical("CRASH_AT=%s: killing the process now (test hook)", point)
    for h in logging.getLogger().handlers:  # the test reads the log to see where it died
        h.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingJournal:
    """A journal that kills the process at `point`; everything else is passed to the real journal
    (`__getattr__`), so it is a `Journal` wherever the real one is."""

    def __init__(self, journal: Journal, point: str) -> None:
        if point not in CRASH_POINTS:
            raise ValueError(f"crash point {point!r} is not one of {', '.join(CRASH_POINTS)}")
        self._journal = journal
        self.point = point
        path = getattr(journal, "path", None)
        self.marker = Path(path).parent / f".crashed-{point}" if path is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)

    def record_intent(self, intent: OrderIntent) -> None:
        self._journal.record_intent(intent)
        if self.point == "after_intent":
            _die(self.point, self.marker)

    def update_intent(self, client_order_id: str, status: OrderStatus, *, exchange_order_id: str = "",
                      error: str = "") -> None:
        if self.point == "after_send" and status not in _BEFORE_ANSWER:
            _die(self.point, self.marker)
        self._journal.update_intent(client_order_id, status, exchange_order_id=exchange_order_id, error=error)

    def record_order(self, order: Order, mode: Mode) -> None:
        if self.point == "after_send":
            _die(self.point, self.marker)
        self._journal.record_order(order, mode)

    def record_outcome(self, order: Order, fills: Sequence[Fill], *, mode: Mode, error: str = "") -> None:
        if self.point == "after_send":
            _die(self.point, self.marker)
        self._journal.record_outcome(order, fills, mode=mode, error=error)
        if (self.point == "after_fill" and fills) or self.point == "after_outcome":
            _die(self.point, self.marker)

    def record_fill(self, fill: Fill, *, mode: Mode) -> None:
        if self.point == "after_send":
            _die(self.point, self.marker)
        self._journal.record_fill(fill, mode=mode)
        if self.point == "after_fill":
            _die(self.point, self.marker)

    # `with` looks these up on the class, never through `__getattr__`.
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._journal.close()
