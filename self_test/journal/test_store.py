"""The SQLite journal: protocol, transactions, WAL readers, migrations, and corrupt files."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.errors import JournalError
from bot.events import Event, EventBus, EventKind
from bot.journal import base
from bot.journal.base import OrderJournal
from bot.journal.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    DuplicateIntentError,
    Journal,
    UnknownIntentError,
)
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

# Real prices: the first hourly closes of the seed file (Coinbase BTC-USD, 2017-07).
PRICE = 2505.56


def intent(coid: str = "t-1", **kw) -> OrderIntent:
    base = dict(client_order_id=coid, symbol="BTCUSDT", side="Buy", qty=0.04, mode="PAPER", created_ms=1_500_000)
    base.update(kw)
    return OrderIntent(**base)


@pytest.fixture
def journal(tmp_path: Path):
    j = Journal(tmp_path / "state.db")
    yield j
    j.close()


def test_implements_the_journal_protocol(journal: Journal) -> None:
    assert isinstance(journal, OrderJournal) and isinstance(journal, base.Journal)


def test_enums_are_stored_as_their_plain_strings_and_read_back_as_enums(journal: Journal) -> None:
    """Files written before the StrEnums (and by anything else) hold "Buy", "pending", "PAPER":
    the enums write exactly those, and read them back as enum members."""
    journal.record_intent(intent("e-1", side=Side.SELL, mode=Mode.LIVE))
    journal.update_intent("e-1", OrderStatus.SENT)
    journal.record_fill(Fill("e-1", "BTCUSDT", Side.SELL, 0.04, PRICE, 0.05, 1_500_100, exec_id="x"), mode=Mode.LIVE)
    journal.upsert_position(Position("BTCUSDT", PositionSide.SHORT, 0.04, PRICE), mode=Mode.LIVE)
    journal.record_closed_trade(ClosedTrade("ETHUSDT", PositionSide.LONG, 1.0, 200.0, 210.0, 1, 2, 9.8, 0.2,
                                            mode=Mode.LIVE))
    raw = sqlite3.connect(journal.path)
    try:
        assert raw.execute("SELECT side, status, mode, typeof(status) FROM intents").fetchall() == [
            ("Sell", "sent", "LIVE", "text")]
        assert raw.execute("SELECT side, mode FROM fills").fetchall() == [("Sell", "LIVE")]
        assert raw.execute("SELECT side, mode FROM positions").fetchall() == [("short", "LIVE")]
        assert raw.execute("SELECT side, mode FROM closed_trades").fetchall() == [("long", "LIVE")]
    finally:
        raw.close()
    got = journal.get_intent("e-1")
    assert got is not None and (got.side, got.status, got.mode) == (Side.SELL, OrderStatus.SENT, Mode.LIVE)
    assert type(got.status) is OrderStatus and type(got.side) is Side and type(got.mode) is Mode
    assert type(journal.fills(mode=Mode.LIVE)[0].side) is Side
    assert journal.positions(Mode.LIVE)[0].side is PositionSide.SHORT
    (trade,) = journal.closed_trades(mode="LIVE")       # a plain string still selects
    assert trade.side is PositionSide.LONG and trade.mode is Mode.LIVE


def test_intent_lifecycle_survives_reopen(tmp_path: Path, btc_hourly) -> None:
    price = float(btc_hourly["close"].iloc[0])
    path = tmp_path / "state.db"
    with Journal(path) as j:
        j.record_intent(intent("a", price=price))
        j.record_intent(intent("b"))
        j.update_intent("a", OrderStatus.SENT)
        assert [i.client_order_id for i in j.unresolved_intents()] == ["a", "b"]
        j.update_intent("a", OrderStatus.FILLED, exchange_order_id="ex-1")
        j.record_fill(Fill("a", "BTCUSDT", "Buy", 0.04, price, 0.055, 1_500_100, exec_id="e1"), mode="PAPER")
        j.update_intent("b", OrderStatus.FAILED, error="refused")
    with Journal(path) as j:
        a = j.get_intent("a")
        assert a is not None and a.status == OrderStatus.FILLED and a.exchange_order_id == "ex-1"
        assert a.price == price
        assert j.get_intent("b").error == "refused"
        assert j.unresolved_intents() == []
        fills = j.fills(client_order_id="a")
        assert len(fills) == 1 and fills[0].price == price and fills[0].exec_id == "e1"
        assert j.get_intent("nope") is None


def test_duplicate_intent_and_unknown_update_are_refused(journal: Journal) -> None:
    journal.record_intent(intent("dup"))
    with pytest.raises(DuplicateIntentError, match="dup"):
        journal.record_intent(intent("dup", qty=1.0))
    assert journal.get_intent("dup").qty == 0.04  # the first one is untouched
    with pytest.raises(ValueError):  # same contract as MemoryJournal
        journal.record_intent(intent("dup"))
    with pytest.raises(UnknownIntentError):
        journal.update_intent("missing", OrderStatus.SENT)
    with pytest.raises(KeyError):
        journal.update_intent("missing", OrderStatus.SENT)


def test_same_execution_twice_is_stored_once(journal: Journal) -> None:
    f = Fill("a", "BTCUSDT", "Buy", 0.04, PRICE, 0.05, 1, exec_id="x")
    journal.record_fill(f, mode="LIVE")
    journal.record_fill(f, mode="LIVE")  # recovery re-reports what the live answer already gave
    journal.record_fill(Fill("a", "BTCUSDT", "Buy", 0.01, PRICE, 0.01, 2, exec_id="y"), mode="LIVE")
    assert [x.exec_id for x in journal.fills(mode="LIVE")] == ["x", "y"]
    assert journal.fills(mode="PAPER") == []


def test_record_order_moves_an_open_intent_but_not_a_final_one(journal: Journal) -> None:
    journal.record_intent(intent("o1", status=OrderStatus.SENT))
    order = Order("o1", "BTCUSDT", "Buy", 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04,
                  exchange_order_id="E9")
    journal.record_order(order, "LIVE")
    got = journal.get_intent("o1")
    assert got.status == OrderStatus.FILLED and got.exchange_order_id == "E9"
    assert journal.get_order("o1").avg_price == PRICE
    # A stale answer (e.g. an old 'new' status) never reopens a final intent.
    journal.record_order(Order("o1", "BTCUSDT", "Buy", 0.04, status=OrderStatus.NEW), "LIVE")
    assert journal.get_intent("o1").status == OrderStatus.FILLED


@pytest.mark.parametrize("make", [lambda tmp: Journal(tmp / "state.db"), lambda tmp: base.MemoryJournal()],
                         ids=["sqlite", "memory"])
def test_an_outcome_is_status_order_and_fills_at_once_and_short_fills_are_found(tmp_path: Path, make) -> None:
    j = make(tmp_path)
    try:
        j.record_intent(intent("o1", status=OrderStatus.SENT, mode="LIVE"))
        order = Order("o1", "BTCUSDT", "Buy", 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04,
                      exchange_order_id="E1")
        j.record_outcome(order, [], mode="LIVE")             # filled, but the fills could not be read
        assert j.get_intent("o1").status == OrderStatus.FILLED and j.get_order("o1").filled_qty == 0.04
        assert [i.client_order_id for i in j.fills_missing("LIVE")] == ["o1"] and j.fills_missing("PAPER") == []
        half = Fill("o1", "BTCUSDT", "Buy", 0.02, PRICE, 0.03, 1, exec_id="x")
        j.record_outcome(order, [half], mode="LIVE")
        assert [i.client_order_id for i in j.fills_missing("LIVE")] == ["o1"]       # 0.02 of 0.04
        j.record_outcome(order, [half, Fill("o1", "BTCUSDT", "Buy", 0.02, PRICE, 0.03, 2, exec_id="y")], mode="LIVE")
        assert j.fills_missing("LIVE") == [] and [f.exec_id for f in j.fills(client_order_id="o1")] == ["x", "y"]
    finally:
        j.close()


def test_an_outcome_that_cannot_be_written_leaves_the_intent_as_it_was(journal: Journal) -> None:
    """Status and fills are one transaction: a fill that cannot be stored takes the status with it."""
    journal.record_intent(intent("o2", status=OrderStatus.SENT, mode="LIVE"))
    order = Order("o2", "BTCUSDT", "Buy", 0.04, status=OrderStatus.FILLED, avg_price=PRICE, filled_qty=0.04)
    broken = Fill("o2", "BTCUSDT", "Buy", 0.04, [PRICE], 0.05, 1, exec_id="z")   # a price SQLite cannot bind
    with pytest.raises(JournalError):
        journal.record_outcome(order, [broken], mode="LIVE")
    assert journal.get_intent("o2").status == OrderStatus.SENT and journal.get_order("o2") is None
    assert journal.fills() == []


def test_failed_transaction_leaves_nothing(journal: Journal) -> None:
    journal.record_intent(intent("keep"))
    with pytest.raises(RuntimeError):
        with journal._tx() as c:
            c.execute("UPDATE intents SET status='filled' WHERE client_order_id='keep'")
            raise RuntimeError("crash in the middle")
    assert journal.get_intent("keep").status == OrderStatus.PENDING


def test_positions_trades_equity_events_state(journal: Journal, btc_hourly) -> None:
    closes = btc_hourly["close"].iloc[:3].astype(float).tolist()
    times = [int(t) for t in btc_hourly.index[:3]]
    pos = Position("BTCUSDT", "long", 0.04, closes[0], stop_loss=closes[0] * 0.98, opened_ms=times[0])
    journal.upsert_position(pos, mode="PAPER")
    journal.upsert_position(Position("ETHUSDT", "short", 1.0, 200.0), mode="LIVE")
    assert [p.symbol for p in journal.positions("PAPER")] == ["BTCUSDT"]
    assert len(journal.positions()) == 2
    assert journal.positions("PAPER")[0].stop_loss == pytest.approx(closes[0] * 0.98)
    pnl = (closes[2] - closes[0]) * 0.04
    trade = ClosedTrade("BTCUSDT", "long", 0.04, closes[0], closes[2], times[0], times[2], pnl, 0.11,
                        reason="stop-loss", mode="PAPER")
    journal.close_position(trade)
    assert journal.positions("PAPER") == []
    assert journal.closed_trades("PAPER") == [trade]
    assert journal.closed_trades("LIVE") == []
    assert journal.closed_trades(since_ms=times[2] + 1) == []
    for t, c in zip(times, closes, strict=True):
        journal.record_equity(t, 1000 + c / 100, 1000.0, "PAPER")
    hist = journal.equity_history("PAPER")
    assert [h[0] for h in hist] == times and hist[1][1] == pytest.approx(1000 + closes[1] / 100)

    bus = EventBus()
    journal.follow(bus)
    for i in range(5):
        bus.emit(EventKind.INFO, f"event {i}", n=i)
    last = journal.recent_events(3)
    assert [e.message for e in last] == ["event 2", "event 3", "event 4"]
    assert last[-1].data == {"n": 4} and last[-1].kind == EventKind.INFO

    assert journal.get_state("live_consent", False) is False
    journal.set_state("live_consent", True)
    journal.set_state("active_pairs", ["BTCUSDT", "ETHUSDT"])
    assert journal.get_state("live_consent") is True
    assert journal.get_state("active_pairs") == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(JournalError, match="JSON"):
        journal.set_state("bad", {1, 2})


def test_vetoes_reviews_lessons(journal: Journal) -> None:
    journal.record_veto("BTCUSDT", "risk", "daily loss limit", {"loss": 51.0})
    assert journal.vetoes()[0]["reason"] == "daily loss limit" and journal.vetoes()[0]["data"] == {"loss": 51.0}
    journal.record_review(1, "BTCUSDT", "risk", "rules", "reject", "stop too wide", {"side": "long"})
    assert journal.reviews("BTCUSDT")[0]["proposal"] == {"side": "long"}
    assert journal.reviews("ETHUSDT") == []
    lid = journal.add_lesson("avoid longs in volatile regime", {"regime": "volatile", "side": "long"})
    assert journal.lessons()[0]["id"] == lid
    journal.set_lesson_active(lid, False)
    assert journal.lessons() == [] and journal.lessons(active_only=False)[0]["active"] is False
    with pytest.raises(JournalError):
        journal.set_lesson_active(999, True)


def test_wal_mode_and_reader_thread_sees_commits(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Journal(path) as j:
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        seen: list[int] = []
        stop = threading.Event()

        def ui_reader() -> None:  # the UI thread polls while the engine writes
            while not stop.is_set():
                seen.append(len(j.closed_trades()))

        t = threading.Thread(target=ui_reader)
        t.start()
        for i in range(50):
            j.record_closed_trade(ClosedTrade("BTCUSDT", "long", 0.01, PRICE, PRICE, i, i, 0.0, 0.0))
        stop.set()
        t.join(5)
        assert not t.is_alive()
        assert seen and seen == sorted(seen)  # never goes backwards, never a half-written row
        assert len(j.closed_trades()) == 50


def test_reader_connections_of_finished_threads_are_closed(journal: Journal) -> None:
    for _ in range(5):
        t = threading.Thread(target=journal.closed_trades)
        t.start()
        t.join()
    journal.closed_trades()
    assert len(journal._readers) == 1  # only this thread's: the workers' were closed


def test_migrations_run_in_order_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    # A journal written by version 1 of the schema.
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)")
    for stmt in MIGRATIONS[0]:
        con.execute(stmt)
    con.execute("INSERT INTO schema_version VALUES (1, 0)")
    con.execute("INSERT INTO state VALUES ('mode', '\"PAPER\"', 0)")
    con.commit()
    con.close()
    with Journal(path) as j:
        assert j.schema_version() == SCHEMA_VERSION >= 2
        assert j.get_state("mode") == "PAPER"
        j.record_veto("BTCUSDT", "risk", "new table from migration 2")
        assert len(j.vetoes()) == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Journal(path).close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(path)


def _filled_journal(path: Path) -> None:
    with Journal(path) as j:
        for i in range(40):  # ~1 kB each: the file spans well over 8 pages
            j.record_intent(intent(f"id-{i}", reason="signal " * 150))
        j.record_fill(Fill("id-0", "BTCUSDT", "Buy", 0.04, PRICE, 0.05, 0, exec_id="0"), mode="PAPER")


@pytest.mark.parametrize("where", ["header", "middle"])
def test_corrupt_journal_is_a_clear_error_and_never_reset(tmp_path: Path, where: str) -> None:
    good = tmp_path / "good.db"
    _filled_journal(good)
    bad = tmp_path / "bad.db"
    shutil.copyfile(good, bad)
    size = bad.stat().st_size
    assert size > 8 * 4096
    with open(bad, "r+b") as fh:  # garbage bytes written into the copy
        fh.seek(0 if where == "header" else 4096 * 3)
        fh.write(b"\xde\xad\xbe\xef garbage " * 300)
    before = bad.read_bytes()
    with pytest.raises(JournalError) as err:
        Journal(bad)
    assert str(bad) in str(err.value)
    assert "untouched" in str(err.value)
    assert bad.exists() and bad.read_bytes() == before  # no silent reset: the file is still there, as it was
    with Journal(good) as j:  # the original is fine
        assert len(j.intents()) == 40 and len(j.fills()) == 1


def test_closed_journal_refuses_writes(tmp_path: Path) -> None:
    j = Journal(tmp_path / "state.db")
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.record_intent(intent())


def test_for_settings_uses_data_dir(settings) -> None:
    j = Journal.for_settings(settings)
    try:
        assert j.path == settings.data_dir / "state.db"
        j.record_event(Event(EventKind.MODE, "started PAPER"))
        assert j.recent_events(1)[0].message == "started PAPER"
    finally:
        j.close()
