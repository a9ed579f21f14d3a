"""ErrorHandler: classification, logging with context, and the circuit breaker on a fake clock."""

from __future__ import annotations

import logging

import pytest

from bot.events import EventBus, EventKind
from bot.safety import error_handler as eh
from bot.safety.error_handler import CRITICAL_BANNER, ErrorHandler
from self_test.conftest import make_settings


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig(tmp_path):
    settings = make_settings(tmp_path, ERROR_RATE_THRESHOLD=3, ERROR_WINDOW_SECONDS=60,
                             CIRCUIT_COOLDOWN_SECONDS=120, CIRCUIT_MAX_TRIPS=3)
    bus = EventBus()
    q = bus.subscribe()
    clock = Clock()
    return ErrorHandler(settings, bus=bus, clock=clock), clock, q


def drain(q) -> list:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_hierarchy_is_reexported() -> None:
    for name in ("NetworkError", "ExchangeAPIError", "RateLimitError", "AuthError", "InsufficientFundsError",
                 "OrderExecutionError", "DataError", "StrategyError", "RiskViolationError", "ConfigError"):
        assert issubclass(getattr(eh, name), eh.BotError)
    assert eh.ExchangeAPIError("x", code=10006).code == 10006


@pytest.mark.parametrize("exc,critical", [
    (eh.NetworkError("timeout"), False),
    (eh.RateLimitError("slow down", code=10006), False),
    (eh.InsufficientFundsError("no margin", code=110007), False),
    (eh.OrderExecutionError("refused"), False),
    (eh.DataError("gap"), False),
    (eh.StrategyError("nan"), False),
    (eh.RiskViolationError("daily loss"), False),
    (eh.ExchangeAPIError("server error", code=10016), False),
    (eh.AuthError("bad key", code=10003), True),
    (eh.ConfigError("bad setting"), True),
    (eh.CheckpointError("corrupt"), True),
    (eh.JournalError("corrupt"), True),
    (eh.ExchangeAPIError("banned", code=33004), True),   # listed in CRITICAL_ERROR_CODES
    (eh.ExchangeAPIError("error sign", code=10004), True),
])
def test_classification(rig, exc, critical) -> None:
    h, _, _ = rig
    v = h.handle(exc, "test")
    assert v.critical is critical and v.recoverable is (not critical)
    assert v.category == type(exc).__name__


def test_logs_full_traceback_with_context(rig, caplog) -> None:
    h, _, _ = rig

    def deep() -> None:
        raise eh.NetworkError("connection refused by 127.0.0.1")

    with caplog.at_level(logging.ERROR, logger="bot.safety.error_handler"):
        try:
            deep()
        except eh.NetworkError as exc:
            h.handle(exc, "BTCUSDT: fetch candles")
    rec = caplog.records[-1]
    assert "BTCUSDT: fetch candles" in rec.getMessage()
    assert rec.exc_info and rec.exc_info[1].args[0] == "connection refused by 127.0.0.1"
    assert "deep" in caplog.text  # the traceback names the function that failed


def test_circuit_opens_at_threshold_and_closes_after_cooldown(rig) -> None:
    h, clock, q = rig
    h.handle(eh.NetworkError("a"), "x")
    clock.t += 10
    h.handle(eh.NetworkError("b"), "x")
    assert h.state == "closed" and h.allows_entries()
    clock.t += 10
    v = h.handle(eh.NetworkError("c"), "x")  # third within 60 s: threshold 3
    assert v.circuit == "open" and v.errors_in_window == 3
    assert not h.allows_entries()
    opened = [e for e in drain(q) if e.kind == EventKind.CIRCUIT]
    assert opened[-1].data["state"] == "open" and "keep their stops" in opened[-1].message
    clock.t += 119
    assert h.state == "open" and not h.allows_entries()
    clock.t += 1  # cool-down over
    assert h.state == "half-open"
    assert h.allows_entries()          # one probe
    assert not h.allows_entries()      # and only one
    h.record_success()
    assert h.state == "closed" and h.allows_entries()
    assert [e.data["state"] for e in drain(q) if e.kind == EventKind.CIRCUIT] == ["half-open", "closed"]


def test_an_unused_probe_is_forgotten(rig) -> None:
    h, clock, _ = rig
    for _ in range(3):
        h.handle(eh.NetworkError("a"), "x")
    clock.t += 120
    assert h.allows_entries()        # the probe is granted, then vetoed by the risk manager: no outcome
    clock.t += 30
    assert not h.allows_entries()
    clock.t += 30                    # probe_timeout_s = 60: another probe may go
    assert h.allows_entries() and h.state == "half-open"


def test_old_errors_leave_the_window(rig) -> None:
    h, clock, _ = rig
    for _ in range(2):
        h.handle(eh.NetworkError("a"), "x")
    clock.t += 61
    h.handle(eh.NetworkError("a"), "x")
    assert h.state == "closed"


def test_failed_probe_reopens_and_repeated_trips_stay_stopped(rig) -> None:
    h, clock, q = rig
    for _ in range(3):
        h.handle(eh.NetworkError("a"), "x")
    assert h.state == "open" and h.trips_last_hour() == 1
    clock.t += 120
    assert h.allows_entries()  # probe
    h.handle(eh.NetworkError("probe failed"), "x")
    assert h.state == "open" and h.trips_last_hour() == 2
    clock.t += 120
    h.handle(eh.NetworkError("again"), "x")  # third trip within the hour
    assert h.state == "tripped"
    clock.t += 3 * 3600  # no cool-down gets it out of 'tripped'
    assert h.state == "tripped" and not h.allows_entries()
    h.record_success()
    assert h.state == "tripped"
    h.reset()
    assert h.state == "closed" and h.allows_entries()


def test_trips_spread_over_more_than_an_hour_do_not_accumulate(rig) -> None:
    h, clock, _ = rig
    for _ in range(2):
        for _ in range(3):
            h.handle(eh.NetworkError("a"), "x")
        clock.t += 120
        h.allows_entries()
        h.record_success()
        clock.t += 3600
    assert h.state == "closed" and h.trips_last_hour() == 0


def test_critical_error_trips_and_asks_for_restart(rig) -> None:
    h, _, q = rig
    v = h.handle(eh.AuthError("API key is invalid.", code=10003), "startup: wallet balance")
    assert v.critical and h.state == "tripped" and not h.allows_entries()
    crit = [e for e in drain(q) if e.kind == EventKind.CRITICAL]
    assert len(crit) == 1
    assert crit[0].message.startswith(CRITICAL_BANNER)
    assert "restart" in crit[0].message and "startup: wallet balance" in crit[0].message


def test_secrets_never_reach_the_alert(tmp_path) -> None:
    from bot.log_setup import add_secrets

    add_secrets(["SENTINEL-SECRET-9f3a"])
    settings = make_settings(tmp_path)
    bus = EventBus()
    q = bus.subscribe()
    h = ErrorHandler(settings, bus=bus)
    h.handle(eh.AuthError("refused key SENTINEL-SECRET-9f3a", code=10003), "login")
    msgs = [e.message for e in drain(q)]
    assert msgs and all("SENTINEL-SECRET-9f3a" not in m for m in msgs)


def test_guard_swallows_recoverable_and_reraises_critical(rig) -> None:
    h, _, _ = rig
    with h.guard("poll"):
        raise eh.NetworkError("blip")
    assert h.last_error.context == "poll"
    with pytest.raises(eh.ConfigError):
        with h.guard("load"):
            raise eh.ConfigError("bad")
    with pytest.raises(KeyError):  # bugs are not hidden
        with h.guard("lookup"):
            {}["missing"]
