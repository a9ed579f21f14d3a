"""Crash safety with real processes: SIGKILL at each step of an order, restart, and check that the
journal and the exchange agree, with no order duplicated and no position lost.

The bot under test is `self_test/crash_driver.py`: the real Journal (with the CRASH_AT hook),
recovery, TradeExecutor and BybitExchange (real pybit) against the fake Bybit V5 server that runs
in this test process, on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.journal.store import Journal
from bot.types import OrderStatus
from self_test.conftest import ROOT

SYM = "BTCUSDT"
USDT = "60"
DRIVER = ROOT / "self_test" / "crash_driver.py"
KEYS = {"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}


def run_bot(tmp_path: Path, fake, target: str, crash_at: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CRASH_AT",)}
    env.update(KEYS, HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL=fake.url, BYBIT_TIMEOUT="5", CRASH_AT=crash_at, NO_PROXY="127.0.0.1")
    return subprocess.run([sys.executable, str(DRIVER), target, SYM, USDT], env=env, capture_output=True,
                          text=True, timeout=120, cwd=str(ROOT))


def output(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_agree(tmp_path: Path, fake) -> Journal:
    """Journal and exchange tell the same story: orders, fills, positions."""
    j = Journal(tmp_path / "data" / "state.db")
    book = fake.book
    assert j.unresolved_intents() == []
    intents = {i.client_order_id: i for i in j.intents(mode="LIVE")}
    linked = {link: book.orders[oid] for link, oid in book.links.items()}
    # Every order on the exchange was journaled before it was sent, and has its final status.
    for link, o in linked.items():
        assert link in intents, f"order {link} on the exchange is not in the journal"
        assert o["status"] == "Filled" and intents[link].status == OrderStatus.FILLED
    # Every journaled intent that is not on the exchange is marked as never sent.
    for cid, intent in intents.items():
        if cid not in linked:
            assert intent.status in (OrderStatus.FAILED, OrderStatus.REJECTED), (cid, intent.status)
    # Fills: the same executions, once each.
    ours = sorted(f.exec_id for f in j.fills(mode="LIVE") if f.client_order_id)
    theirs = sorted(e["execId"] for e in book.executions if e["orderLinkId"])
    assert ours == theirs
    # Positions.
    ex_pos = {s: p for (s, _), p in book.positions.items() if p["size"] != 0}
    j_pos = {p.symbol: p for p in j.positions("LIVE")}
    assert set(ex_pos) == set(j_pos)
    for s, p in ex_pos.items():
        assert j_pos[s].size == pytest.approx(abs(p["size"])) and j_pos[s].side == ("long" if p["size"] > 0 else "short")
    return j


@pytest.fixture
def fake(fake_bybit, btc_hourly):
    fake_bybit.set_price(SYM, round(float(btc_hourly["close"].iloc[-1]), 1))  # the last real recorded close
    return fake_bybit


@pytest.mark.parametrize("point, on_exchange, recovered", [
    ("after_intent", 0, ["failed"]),               # journaled, never sent: marked failed, sent anew
    ("after_send", 1, ["resolved", "restored"]),   # filled on the exchange, answer never journaled
    ("after_fill", 1, ["restored"]),               # fill journaled, position bookkeeping not
])
def test_sigkill_while_opening(tmp_path, fake, point, on_exchange, recovered) -> None:
    crashed = run_bot(tmp_path, fake, "long", crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert f"CRASH_AT={point}" in (tmp_path / "bot.log").read_text()
    assert len(fake.book.links) == on_exchange

    out = output(run_bot(tmp_path, fake, "long"))  # the restart
    assert out["recovered"] == recovered
    assert len(out["orders"]) == (1 if point == "after_intent" else 0)  # sent again only if it never left

    j = assert_agree(tmp_path, fake)
    try:
        filled = [i for i in j.intents() if i.status == OrderStatus.FILLED]
        assert len(filled) == 1 and len(fake.book.links) == 1  # exactly one order: nothing duplicated
        (pos,) = j.positions("LIVE")  # nothing lost
        assert pos.side == "long" and pos.stop_loss is not None
    finally:
        j.close()
    # A third start finds nothing to repair and sends nothing.
    assert output(run_bot(tmp_path, fake, "long")) == {"recovered": [], "orders": [], "ok": True}


def test_fills_unreadable_at_fill_time_then_sigkill_are_journaled_by_recovery(tmp_path, fake) -> None:
    """Bybit fills the order, but its executions cannot be read (HTTP 502) when the order is
    answered, and the process is killed right after journaling the outcome: the journal says
    filled with no fill. The restart reads the executions by orderLinkId, journals them, and so
    restores its own position from its own fills instead of adopting it as foreign."""
    from self_test.fakes.bybit_server import Fault

    fake.inject("/v5/execution/list", Fault(kind="http", status=502, count=10))
    crashed = run_bot(tmp_path, fake, "long", crash_at="after_outcome")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert len(fake.book.links) == 1 and "fills could not be read yet" in (tmp_path / "bot.log").read_text()
    with Journal(tmp_path / "data" / "state.db") as j:
        (intent,) = j.intents()
        assert intent.status == OrderStatus.FILLED and j.fills() == [] and j.fills_missing("LIVE") == [intent]
    fake.faults.clear()

    out = output(run_bot(tmp_path, fake, "long"))
    assert out["recovered"] == ["fills", "restored"] and out["orders"] == []     # never "adopted"
    j = assert_agree(tmp_path, fake)
    try:
        assert j.fills_missing("LIVE") == [] and len(fake.book.links) == 1
    finally:
        j.close()


def test_sigkill_while_closing(tmp_path, fake) -> None:
    assert output(run_bot(tmp_path, fake, "long"))["ok"]
    crashed = run_bot(tmp_path, fake, "flat", crash_at="after_send")
    assert crashed.returncode == -signal.SIGKILL
    assert all(p["size"] == 0 for p in fake.book.positions.values())  # the close reached the exchange

    out = output(run_bot(tmp_path, fake, "flat"))
    assert out["recovered"] == ["resolved", "closed"] and out["orders"] == []
    j = assert_agree(tmp_path, fake)
    try:
        (trade,) = j.closed_trades("LIVE")
        close_fills = [e for e in fake.book.executions if e["side"] == "Sell"]
        assert trade.reason == "reconcile" and trade.exit_price == pytest.approx(float(close_fills[0]["execPrice"]))
        assert len(fake.book.links) == 2  # one open, one close: nothing sent twice
    finally:
        j.close()


@pytest.mark.slow
def test_headless_paper_bot_killed_after_a_fill_is_restarted_and_recovers(tmp_path) -> None:
    """The real `python -m bot paper` (supervisor -> child -> engine) on replayed real candles:
    SIGKILL right after the first fill is journaled; the supervisor restarts the child, recovery
    puts the position back from its own fills, the session runs on; journal and paper wallet agree."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("CRASH_AT",)}
    env.update(HISTORICAL_DATA_PATH=str(data), LOG_FILE=str(tmp_path / "bot.log"), CRASH_AT="after_fill",
               RESTART_BACKOFF_SECONDS="0", TELEGRAM_BOT_TOKEN="")
    proc = subprocess.run([sys.executable, "-m", "bot", "paper", "--replay", "--candles", "150", "--pace", "0",
                           "--strategy", "sma", "--symbols", SYM], env=env, capture_output=True, text=True,
                          timeout=240, cwd=str(ROOT))
    log = (tmp_path / "bot.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "CRASH_AT=after_fill: killing the process now" in log, (
        "the crash hook never fired: the engine must open its journals with Journal.for_settings(...), "
        "which installs it")
    assert "killed by SIGKILL" in log and "(pid" in log and "run 2)" in log  # the supervisor restarted it
    assert "restored into the journal from its own fills" in log

    j = Journal(data / "replay_state.db")
    try:
        wallet = json.loads((data / "replay_wallet.json").read_text())
        assert j.unresolved_intents() == []
        ours = {(f.client_order_id, f.exec_id) for f in j.fills()}
        theirs = {(f["client_order_id"], f["exec_id"]) for f in wallet["fills"]}
        assert ours == theirs and len(ours) >= 2
        for o in wallet["orders"]:  # every order the bot placed was journaled first and is final
            if not o["client_order_id"].startswith(("sl-", "tp-")):  # the wallet's own stop / TP orders
                assert j.get_intent(o["client_order_id"]).status == OrderStatus.FILLED
        assert {(p.symbol, p.side, round(p.size, 9)) for p in j.positions("PAPER")} == {
            (s, b["side"], round(b["size"], 9)) for s, b in wallet["positions"].items()}
    finally:
        j.close()


def test_headless_bot_with_a_corrupt_journal_does_not_trade_and_keeps_the_file(tmp_path) -> None:
    """A safe start: the real `python -m bot paper` refuses to run on a corrupt journal (exit 3,
    critical), names the file, trades nothing, and leaves the file byte for byte as it was."""
    data = tmp_path / "data"
    path = data / "replay_state.db"
    with Journal(path) as j:
        j.set_state("mode", "PAPER")
    with open(path, "r+b") as fh:
        fh.write(b"this is not the journal any more " * 4)
    before = path.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("CRASH_AT",)}
    env.update(HISTORICAL_DATA_PATH=str(data), LOG_FILE=str(tmp_path / "bot.log"), RESTART_MAX_PER_HOUR="0",
               TELEGRAM_BOT_TOKEN="")
    proc = subprocess.run([sys.executable, "-m", "bot", "paper", "--no-supervisor", "--replay", "--candles", "5",
                           "--pace", "0", "--strategy", "sma", "--symbols", SYM], env=env, capture_output=True,
                          text=True, timeout=120, cwd=str(ROOT))
    log = (tmp_path / "bot.log").read_text()
    assert proc.returncode == 3, log[-3000:]
    assert f"JournalError: journal {path} is not a readable SQLite database" in log
    assert path.read_bytes() == before
    assert not (data / "replay_wallet.json").exists()  # nothing was traded


def test_the_crash_hook_journal_is_a_whole_journal_and_a_context_manager(settings) -> None:
    """`Journal.for_settings` with CRASH_AT set gives the wrapper; callers use it like the journal
    itself, `with` included (looked up on the class, not through __getattr__)."""
    from bot.errors import JournalError
    from bot.journal.base import Journal as JournalProtocol
    from bot.journal.crashpoints import CrashingJournal

    with Journal.for_settings(settings.replace(CRASH_AT="after_fill")) as j:
        assert isinstance(j, CrashingJournal) and isinstance(j, JournalProtocol)
        j.set_state("k", 1)                      # passed through to the real journal
        assert j.get_state("k") == 1
    with pytest.raises(JournalError, match="closed"):
        j.get_state("k")                         # leaving `with` closed the real journal


def test_a_stop_bybit_executed_while_the_bot_was_down_is_journaled_as_stop_loss(tmp_path, fake) -> None:
    """The position's server-side stop fills while no bot runs; the next start journals the round
    trip as `stop-loss` with the stop's fill, and its P&L (both fees) is what the wallet lost."""
    start = fake.book.wallet
    assert output(run_bot(tmp_path, fake, "long"))["ok"]
    ((_, pos),) = [(k, p) for k, p in fake.book.positions.items() if p["size"] != 0]
    assert pos["sl"] > 0
    fake.set_price(SYM, round(pos["sl"] - 50, 1))                   # through the stop: Bybit closes it
    assert all(p["size"] == 0 for p in fake.book.positions.values())
    out = output(run_bot(tmp_path, fake, "flat"))
    assert out["recovered"] == ["closed"] and out["orders"] == []
    j = assert_agree(tmp_path, fake)
    try:
        (trade,) = j.closed_trades("LIVE")
        stop_fill = [f for f in j.fills(mode="LIVE") if f.reason == "stop-loss"]
        assert trade.reason == "stop-loss" and len(stop_fill) == 1
        assert trade.exit_price == pytest.approx(stop_fill[0].price)
        assert trade.pnl == pytest.approx(fake.book.wallet - start, abs=1e-9)
    finally:
        j.close()
