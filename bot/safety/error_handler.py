"""What to do when something fails: classify, log, count, and stop new entries when it piles up.

`ErrorHandler.handle(exc, context)` logs the full traceback with what the bot was doing,
decides whether the failure is recoverable (retry later: network, rate limit, a refused
order) or critical (retrying cannot help: bad keys, bad settings, a corrupt journal or
checkpoint, an exchange code listed in CRITICAL_ERROR_CODES), and counts it in a sliding
window. When ERROR_RATE_THRESHOLD errors fall within ERROR_WINDOW_SECONDS the circuit
breaker opens: `allows_entries()` turns False, so the engine stops opening positions while
exits and server-side stops keep working. After CIRCUIT_COOLDOWN_SECONDS the circuit is
half-open and lets one entry through as a probe; `record_success()` closes it, another error
opens it again. After CIRCUIT_MAX_TRIPS openings within an hour it stays 'tripped' until a
person calls `reset()`. A critical error trips it at once and publishes a
`🚨 CRITICAL ERROR 🚨` event asking for a restart.

The exception hierarchy lives in `bot/errors.py` (no imports, no cycles) and is re-exported
here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.errors import (
    AuthError,
    BotError,
    CheckpointError,
    ConfigError,
    DataError,
    DuplicateOrderError,
    ExchangeAPIError,
    InsufficientFundsError,
    InvalidOrderError,
    JournalError,
    NetworkError,
    OrderExecutionError,
    RateLimitError,
    RiskViolationError,
    StrategyError,
)
from bot.events import Event, EventBus, EventKind
from bot.log_setup import redact

__all__ = [
    "ErrorHandler", "Verdict", "CRITICAL_BANNER",
    "BotError", "ConfigError", "DataError", "NetworkError", "ExchangeAPIError", "RateLimitError", "AuthError",
    "InsufficientFundsError", "OrderExecutionError", "InvalidOrderError", "DuplicateOrderError",
    "StrategyError", "RiskViolationError", "CheckpointError", "JournalError",
]

log = logging.getLogger(__name__)

CRITICAL_BANNER = "🚨 CRITICAL ERROR 🚨"

# Retrying cannot fix these: a person has to look.
_CRITICAL_TYPES = (AuthError, ConfigError, CheckpointError, JournalError)

CLOSED, OPEN, HALF_OPEN, TRIPPED = "closed", "open", "half-open", "tripped"


@dataclass(frozen=True)
class Verdict:
    """What `handle` decided about one error."""

    critical: bool
    category: str          # the exception class name, e.g. "RateLimitError"
    context: str
    message: str           # redacted, one line
    circuit: str           # circuit state after this error
    errors_in_window: int

    @property
    def recoverable(self) -> bool:
        return not self.critical


class ErrorHandler:
    """Classifies errors and runs the circuit breaker. Thread-safe; one per engine."""

    def __init__(self, settings: Any, *, bus: EventBus | None = None,
                 clock: Callable[[], float] = time.monotonic, probe_timeout_s: float = 60.0) -> None:
        self.bus = bus
        self.clock = clock
        self.threshold = int(settings.ERROR_RATE_THRESHOLD)
        self.window_s = float(settings.ERROR_WINDOW_SECONDS)
        self.cooldown_s = float(settings.CIRCUIT_COOLDOWN_SECONDS)
        self.max_trips = int(settings.CIRCUIT_MAX_TRIPS)
        self.critical_codes = frozenset(int(c) for c in settings.CRITICAL_ERROR_CODES)
        self._lock = threading.RLock()
        self._errors: deque[float] = deque()
        self._trips: deque[float] = deque()
        self._state = CLOSED
        self._opened_at = 0.0
        self._probe_out = False
        self._probe_at = 0.0
        # A probe entry that was allowed but never tried (the risk manager vetoed it, the strategy
        # changed its mind) is forgotten after this long, so half-open never blocks entries for good.
        self.probe_timeout_s = probe_timeout_s
        self.last_error: Verdict | None = None
        self.reason = ""           # why the circuit is not closed, for the UI

    # -- classification --------------------------------------------------------------------------
    def is_critical(self, exc: BaseException) -> bool:
        if isinstance(exc, _CRITICAL_TYPES):
            return True
        code = getattr(exc, "code", None)
        return isinstance(exc, ExchangeAPIError) and code is not None and int(code) in self.critical_codes

    # -- the one entry point ---------------------------------------------------------------------
    def handle(self, exc: BaseException, context: str) -> Verdict:
        """Log, classify and count `exc`, raised while doing `context` (e.g. "BTCUSDT: place order")."""
        critical = self.is_critical(exc)
        text = redact(f"{type(exc).__name__}: {exc}".replace("\n", " "))
        if critical:
            log.critical("%s: critical %s", context, text, exc_info=exc)
        else:
            log.error("%s: %s", context, text, exc_info=exc)
        with self._lock:
            now = self.clock()
            self._errors.append(now)
            self._prune(now)
            count = len(self._errors)
            state = self._advance(now)
            if critical:
                if state != TRIPPED:
                    self._set(TRIPPED, f"critical error in {context}: {text}")
            elif state == HALF_OPEN:
                self._open(now, f"probe failed in {context}: {text}")
            elif state == CLOSED and count >= self.threshold:
                self._open(now, f"{count} errors within {self.window_s:g} s (last: {context}: {text})")
            verdict = Verdict(critical=critical, category=type(exc).__name__, context=context, message=text,
                              circuit=self._state, errors_in_window=count)
            self.last_error = verdict
        if critical:
            self._publish(Event(kind=EventKind.CRITICAL, level="CRITICAL", message=(
                f"{CRITICAL_BANNER}\n{context}: {text}\n"
                "Trading has stopped opening positions; open positions keep their stops. "
                "Please check the log and restart the bot."),
                data={"context": context, "category": verdict.category, "code": getattr(exc, "code", None)}))
        else:
            self._publish(Event(kind=EventKind.ERROR, level="ERROR", message=f"{context}: {text}",
                                data={"context": context, "category": verdict.category}))
        return verdict

    @contextmanager
    def guard(self, context: str) -> Iterator[None]:
        """`with handler.guard("BTCUSDT: fetch candles"):` handles recoverable errors and goes on;
        critical ones are handled and then re-raised so the caller stops."""
        try:
            yield
        except BotError as exc:
            if self.handle(exc, context).critical:
                raise

    # -- circuit breaker -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """'closed', 'open', 'half-open' or 'tripped'."""
        with self._lock:
            return self._advance(self.clock())

    def allows_entries(self) -> bool:
        """May the engine open a new position now? Exits and stops never ask."""
        with self._lock:
            state = self._advance(self.clock())
            if state == CLOSED:
                return True
            now = self.clock()
            if state == HALF_OPEN and (not self._probe_out or now - self._probe_at >= self.probe_timeout_s):
                self._probe_out, self._probe_at = True, now  # one probe entry at a time
                return True
            return False

    def record_success(self) -> None:
        """Something worked (an order filled, a cycle completed): a half-open circuit closes."""
        with self._lock:
            if self._advance(self.clock()) == HALF_OPEN:
                self._errors.clear()
                self._set(CLOSED, "probe succeeded")

    def reset(self) -> None:
        """A person says: start again (clears errors, trips and a tripped state)."""
        with self._lock:
            self._errors.clear()
            self._trips.clear()
            self._set(CLOSED, "reset by the user")

    def trips_last_hour(self) -> int:
        with self._lock:
            self._prune(self.clock())
            return len(self._trips)

    def _prune(self, now: float) -> None:
        while self._errors and now - self._errors[0] > self.window_s:
            self._errors.popleft()
        while self._trips and now - self._trips[0] > 3600.0:
            self._trips.popleft()

    def _advance(self, now: float) -> str:
        if self._state == OPEN and now - self._opened_at >= self.cooldown_s:
            self._set(HALF_OPEN, f"cool-down of {self.cooldown_s:g} s over; one probe entry allowed")
        return self._state

    def _open(self, now: float, why: str) -> None:
        self._trips.append(now)
        self._prune(now)
        if len(self._trips) >= self.max_trips:
            self._set(TRIPPED, f"{len(self._trips)} trips within an hour; {why}")
            return
        self._opened_at = now
        self._set(OPEN, why)

    def _set(self, state: str, why: str) -> None:
        old, self._state, self.reason = self._state, state, why
        self._probe_out = False
        if old == state:
            return
        if state == OPEN:
            msg = (f"⚠️ Circuit breaker OPEN: {why}. New entries paused for {self.cooldown_s:g} s; "
                   "open positions keep their stops.")
            level = "WARNING"
        elif state == HALF_OPEN:
            msg, level = f"Circuit breaker HALF-OPEN: {why}.", "INFO"
        elif state == TRIPPED:
            msg = (f"⛔ Circuit breaker TRIPPED: {why}. New entries stay stopped until the bot is "
                   "restarted or reset; open positions keep their stops.")
            level = "ERROR"
        else:
            msg, level = f"✅ Circuit breaker CLOSED: {why}. Trading resumes.", "INFO"
        log.log(logging.getLevelName(level), "%s", msg)
        self._publish(Event(kind=EventKind.CIRCUIT, level=level, message=msg, data={"state": state, "from": old}))

    def _publish(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.publish(event)
