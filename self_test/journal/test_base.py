"""The `Journal` protocol and `MemoryJournal`: the whole protocol in memory, the order part kept
with the SQLite journal's rules, everything else empty."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import pytest

from bot.errors import JournalError
from bot.journal.base import Journal, MemoryJournal, OrderJournal
from bot.journal.store import Journal as SQLiteJournal
from bot.types import (
    ClosedTrade,
    Fill,
    Mode,
    Order,
    OrderIntent,
    OrderStatus,
    Position,
    PositionSide,
    Side,
)

PRICE = 2505.56   # the first hourly close of the seed file (Coinbase BTC-USD, 2017-07)


def _protocol_methods(proto: type) -> set[str]:
    return {n for n, v in vars(proto).items() if callable(v) and (not n.startswith("_") or n in ("__enter__",
                                                                                                   "__exit__"))}


def test_memory_journal_is_a_whole_journal():
    j = MemoryJournal()
    assert isinstance(j, Journal) and isinstance(j, OrderJournal)
    assert not isinstance(object(), Journal)


def test_both_journals_take_the_protocols_arguments():
    """Same parameter names and kinds as the protocol, method by method (callers pass keywords)."""
    names = _protocol_methods(Journal) | _protocol_methods(OrderJournal)
    assert {"record_intent", "fills", "closed_trades", "set_lesson_active", "__enter__"} <= names
    for cls in (MemoryJournal, SQLiteJournal):
        for name in sorted(names):
            want = [(p.name, p.kind) for p in inspect.signature(getattr(Journal, name)).parameters.values()]
            got = [(p.name, p.kind) for p in inspect.signature(getattr(cls, name)).parameters.values()]
            assert got == want, f"{cls.__name__}.{name}{got} differs from the protocol's {want}"


def _intent(cid: str, **kw: object) -> OrderIntent:
    base: dict[str, object] = dict(client_order_id=cid, symbol="BTCUSDT", side=Side.BUY, qty=0.04, mode=Mode.PAPER,
                                   created_ms=1_500_000)
    base.update(kw)
    return OrderIntent(**base)


def _story(j: Journal) -> dict[str, object]:
    """One order's life, as the executor and recovery write it; what a journal then says."""
    j.record_intent(_intent("a"))
    j.record_intent(_intent("b", symbol="ETHUSDT", side=Side.SELL))
    j.record_intent(_intent("c"))
    j.update_intent("a", OrderStatus.SENT)
    j.update_intent("b", OrderStatus.SENT)
    j.update_intent("c", OrderStatus.REJECTED, error="too small")
    j.record_order(Order("a", "BTCUSDT", Side.BUY, 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04,
                         exchange_order_id="ex-a"), Mode.PAPER)
    # a late report of a final intent does not move it
    j.record_order(Order("c", "BTCUSDT", Side.BUY, 0.04, status=OrderStatus.NEW, exchange_order_id="ex-c"), Mode.PAPER)
    j.record_fill(Fill("a", "BTCUSDT", Side.BUY, 0.04, PRICE, 0.05, 1_500_100, exec_id="e1"), mode=Mode.PAPER)
    j.record_fill(Fill("b", "ETHUSDT", Side.SELL, 1.0, 200.0, 0.1, 1_500_200, exec_id="e2"), mode=Mode.LIVE)
    a, c = j.get_intent("a"), j.get_intent("c")
    assert a is not None and c is not None
    return {
        "a": (a.status, a.exchange_order_id),
        "c": (c.status, c.error),
        "unresolved": [i.client_order_id for i in j.unresolved_intents()],
        "btc fills": [(f.client_order_id, f.qty) for f in j.fills(symbol="BTCUSDT")],
        "live fills": [f.client_order_id for f in j.fills(mode=Mode.LIVE)],
        "fills of b": [f.exec_id for f in j.fills(client_order_id="b")],
        "unknown": j.get_intent("zzz"),
    }


def test_memory_journal_keeps_orders_like_the_sqlite_journal(tmp_path: Path):
    with SQLiteJournal(tmp_path / "state.db") as sqlite:
        expected = _story(sqlite)
    got = _story(MemoryJournal())
    assert got == expected
    assert got["a"] == (OrderStatus.FILLED, "ex-a") and got["c"] == (OrderStatus.REJECTED, "too small")
    assert got["unresolved"] == ["b"] and got["btc fills"] == [("a", 0.04)] and got["live fills"] == ["b"]


def test_memory_journal_refuses_what_the_sqlite_journal_refuses():
    j = MemoryJournal()
    j.record_intent(_intent("dup"))
    with pytest.raises(ValueError, match="dup"):
        j.record_intent(_intent("dup", qty=1.0))
    assert j.intents()[0].qty == 0.04
    with pytest.raises(KeyError):
        j.update_intent("missing", OrderStatus.SENT)


def test_memory_journal_keeps_nothing_else():
    j = MemoryJournal()
    pos = Position("BTCUSDT", PositionSide.LONG, 0.04, PRICE)
    trade = ClosedTrade("BTCUSDT", PositionSide.LONG, 0.04, PRICE, PRICE * 1.01, 1, 2, 0.9, 0.1)
    j.upsert_position(pos, mode=Mode.PAPER)
    j.close_position(trade)
    j.record_closed_trade(trade)
    j.record_equity(1, 1000.0, 1000.0, Mode.PAPER)
    j.set_state("live_consent", {"given_ms": 1})
    j.record_veto("BTCUSDT", "risk", "too big", {"x": 1})
    j.record_review(1, "BTCUSDT", "risk", "rules", "veto", "too big", {"side": "long"})
    assert j.add_lesson("avoid chop", {"min_adx": 20}) == 0
    assert j.positions() == [] and j.positions(Mode.PAPER) == []
    assert j.closed_trades() == [] and j.equity_history(Mode.PAPER) == []
    assert j.get_state("live_consent") is None and j.get_state("live_consent", "no") == "no"
    assert j.reviews() == [] and j.lessons(active_only=False) == []
    with pytest.raises(JournalError, match="lesson 0"):
        j.set_lesson_active(0, False)
    with j as same:
        assert same is j


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_outcome_journals_each_execution_once_whatever_came_before(kind: str, tmp_path: Path):
    """record_outcome skips executions the journal holds (by order and exec id), also ones a
    record_fill wrote, and a second report of the same outcome adds nothing."""
    with MemoryJournal() if kind == "memory" else SQLiteJournal(tmp_path / "state.db") as j:
        j.record_intent(_intent("a"))
        first = Fill("a", "BTCUSDT", Side.BUY, 0.02, PRICE, 0.02, 1_500_100, exec_id="e1")
        second = Fill("a", "BTCUSDT", Side.BUY, 0.02, PRICE, 0.02, 1_500_200, exec_id="e2")
        j.record_fill(first, mode=Mode.PAPER)
        done = Order("a", "BTCUSDT", Side.BUY, 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04)
        j.record_outcome(done, [first, second], mode=Mode.PAPER)
        j.record_outcome(done, [first, second], mode=Mode.PAPER)
        assert [f.exec_id for f in j.fills(client_order_id="a")] == ["e1", "e2"]
        assert j.fills_missing(Mode.PAPER) == []


def test_memory_journal_reads_back_each_intent_as_its_updates_left_it():
    """The in-memory journal keeps an intent as journaled and what became of it apart (the two
    updates of every order are then cheap); every read gives the whole record as it stands."""
    j = MemoryJournal()
    a, b = _intent("a"), _intent("b", symbol="ETHUSDT")
    j.record_intent(a)
    j.record_intent(b)
    assert j.get_intent("a") == a and j.unresolved_intents() == [a, b]
    j.update_intent("a", OrderStatus.SENT, exchange_order_id="ex-a")
    j.update_intent("a", OrderStatus.LOST, error="timed out")       # the id and the error are kept
    lost = replace(a, status=OrderStatus.LOST, exchange_order_id="ex-a", error="timed out")
    assert j.get_intent("a") == lost and j.intents(symbol="BTCUSDT") == [lost]
    done = Order("a", "BTCUSDT", Side.BUY, 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04)
    j.record_outcome(done, [], mode=Mode.PAPER)
    filled = replace(lost, status=OrderStatus.FILLED)
    assert j.get_intent("a") == filled and j.fills_missing(Mode.PAPER) == [filled]
    j.record_order(replace(done, status=OrderStatus.CANCELLED), Mode.PAPER)   # final: not moved
    assert j.get_intent("a") == filled and j.unresolved_intents() == [b]
    j.record_order(Order("b", "ETHUSDT", Side.BUY, 0.04, status=OrderStatus.NEW, exchange_order_id="ex-b"), Mode.PAPER)
    assert j.intents() == [filled, replace(b, status=OrderStatus.NEW, exchange_order_id="ex-b")]
