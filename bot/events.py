"""Events: what happened, for the UI's log and Telegram. Produced by the engine and its parts.

An `EventBus` fans each event out to subscribers (the UI's queue, the Telegram notifier). It
never blocks the producer: a slow subscriber gets a bounded queue and an overflow counter, and
nothing is dropped silently (the drop is itself logged).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Event", "EventBus", "EventKind"]

log = logging.getLogger(__name__)


class EventKind:
    """The kinds of event; plain strings so they serialise into the journal as they are."""

    TRADE = "trade"              # an order filled (open, add, reduce, close)
    STOP_LOSS = "stop_loss"      # a stop-loss closed a position
    TAKE_PROFIT = "take_profit"  # a take-profit closed a position
    ORDER_FAILED = "order_failed"
    VETO = "veto"                # the risk manager or a reviewer refused a proposal
    MODE = "mode"                # paper <-> live, started, stopped, paused
    RESTART = "restart"
    ERROR = "error"
    CRITICAL = "critical"
    CIRCUIT = "circuit"          # circuit breaker opened / half-open / closed
    RECONCILE = "reconcile"
    PROMOTION = "promotion"
    DATA = "data"                # data source changes (LIVE <-> REPLAY), gaps
    INFO = "info"


@dataclass(frozen=True)
class Event:
    """One thing that happened. `message` is ready to show a person; `data` is for machines."""

    kind: str
    message: str
    level: str = "INFO"
    data: dict[str, Any] = field(default_factory=dict)
    time_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def _level_number(level: str) -> int:
    """The logging level of an event's level name (INFO for a name logging does not know)."""
    number = logging.getLevelName(level)
    return number if isinstance(number, int) else logging.INFO


class EventBus:
    """Publish events to any number of subscribers without blocking the publisher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[queue.Queue[Event]] = []
        self._callbacks: list[Callable[[Event], None]] = []

    def subscribe(self, maxsize: int = 10_000) -> "queue.Queue[Event]":
        """A new queue that receives every event published from now on."""
        q: queue.Queue[Event] = queue.Queue(maxsize=maxsize)
        with self._lock:
            self._queues.append(q)
        return q

    def unsubscribe(self, q: "queue.Queue[Event]") -> None:
        with self._lock:
            if q in self._queues:
                self._queues.remove(q)

    def add_callback(self, fn: Callable[[Event], None]) -> None:
        """Call `fn(event)` for each event, in the publisher's thread; it must be quick."""
        with self._lock:
            self._callbacks.append(fn)

    def publish(self, event: Event) -> None:
        if not self._queues and not self._callbacks:   # nobody listens (a backtest): no lock, no copies
            return
        with self._lock:
            queues = list(self._queues)
            callbacks = list(self._callbacks)
        for q in queues:
            try:
                q.put_nowait(event)
            except queue.Full:
                log.warning("event queue full: dropped %s event %r", event.kind, event.message)
        for fn in callbacks:
            try:
                fn(event)
            except Exception:
                log.exception("event callback %r failed on %s", fn, event.kind)

    def quiet(self, level: str = "INFO") -> bool:
        """True when an event of `level` would reach nobody: no subscriber, no callback, and its
        log line not logged (a backtest). A producer may then skip building its message."""
        if self._queues or self._callbacks:
            return False
        return not log.isEnabledFor(_level_number(level))

    def emit(self, kind: str, message: str, *, level: str = "INFO", **data: Any) -> Event:
        """Build, log and publish an event; returns it."""
        ev = Event(kind=kind, message=message, level=level, data=data)
        number = _level_number(level)
        if log.isEnabledFor(number):
            log.log(number, "%s", message)
        self.publish(ev)
        return ev
