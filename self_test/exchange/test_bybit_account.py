"""The adapter on the private streams: fills and the account view pushed by the fake Bybit's
WebSocket (the real pybit client), REST only where the stream cannot serve, and back to REST while
the stream is down. The fake's REST calls are counted: what did not go over REST came pushed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.exchange.bybit import BybitExchange
from bot.exchange.executor import TradeExecutor
from bot.journal.store import Journal
from bot.market.seed import load_seed
from bot.types import Connection
from config import Settings
from self_test.conftest import make_settings, wait_for
from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream

PRICE = round(float(load_seed("BTCUSDT", "60")["close"].iloc[-1]), 1)   # the last real recorded hourly close
ORDER_READS = ("/v5/order/realtime", "/v5/order/history", "/v5/execution/list")
ACCOUNT_READS = ("/v5/position/list", "/v5/account/wallet-balance")


@pytest.fixture
def fakes() -> Iterator[tuple[FakeBybit, FakeBybitStream]]:
    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        rest.set_price("BTCUSDT", PRICE)
        yield rest, ws


def _settings(tmp_path: Path, rest: FakeBybit, ws: FakeBybitStream) -> Settings:
    return make_settings(tmp_path, environ={"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"},
                         BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url, BYBIT_WS_PING_SECONDS=0.5,
                         BYBIT_WS_STALL_SECONDS=2.0, ACCOUNT_REFRESH_SECONDS=0.0)


def _paths(rest: FakeBybit, since: int) -> list[str]:
    with rest.lock:
        return [path for _, path, _ in rest.requests[since:]]


def _by_hand(rest: FakeBybit, side: str, qty: str) -> None:
    """An order placed on Bybit outside the bot (the website): the real pybit client, no orderLinkId."""
    from pybit.unified_trading import HTTP

    http = HTTP(api_key="testkey", api_secret="testsecret", max_retries=1, retry_codes={-1}, retry_delay=0, timeout=5)
    http.endpoint = rest.url
    assert http.place_order(category="linear", symbol="BTCUSDT", side=side, orderType="Market", qty=qty,
                            reduceOnly=True, positionIdx=0)["retCode"] == 0


def _streaming(ex: BybitExchange, ws: FakeBybitStream) -> None:
    assert ex.start_stream()
    wait_for(lambda: ex.stream_state == Connection.CONNECTED and ws.subscribed("wallet", "/v5/private"),
             message="the private streams up")
    ex.get_balance()
    ex.get_positions()          # the views seeded over REST once on this connection


class Live:
    """The adapter with its private streams up, an executor and a journal on it."""

    def __init__(self, tmp_path: Path, rest: FakeBybit, ws: FakeBybitStream) -> None:
        self.rest, self.ws = rest, ws
        s = _settings(tmp_path, rest, ws)
        self.ex = BybitExchange(s, retries=2, retry_delay=0.05)
        self.journal = Journal(tmp_path / "j.db")
        self.executor = TradeExecutor(self.ex, self.journal, settings=s)


@pytest.fixture
def live(tmp_path: Path, fakes) -> Iterator[Live]:
    rig = Live(tmp_path, *fakes)
    try:
        _streaming(rig.ex, rig.ws)
        yield rig
    finally:
        rig.ex.close_stream()
        rig.journal.close()


def test_an_order_and_its_fill_come_pushed_and_are_journaled_once(live: Live) -> None:
    rest, ex, executor, journal = live.rest, live.ex, live.executor, live.journal
    before = len(rest.requests)
    res = executor.open_position("BTCUSDT", "long", notional=100.0, stop_loss=round(PRICE * 0.98, 1))
    paths = _paths(rest, before)
    assert res.ok and res.order is not None and res.order.status == "filled" and len(res.fills) == 1
    # the order's outcome and its execution came by the stream: no REST polling of either,
    # and the adapter waits at most 1 s on the stream before it would have polled
    assert paths.count("/v5/order/create") == 1 and not set(paths) & set(ORDER_READS + ACCOUNT_READS)
    (execution,) = rest.book.executions
    assert res.fills[0].exec_id == execution["execId"] and res.fills[0].qty == float(execution["execQty"])
    assert [f.exec_id for f in journal.fills(client_order_id=res.client_order_id)] == [execution["execId"]]
    # what REST would say now, pushed: the position with its stop, the wallet net of the fee
    before = len(rest.requests)
    (pos,) = ex.get_positions()
    bal = ex.get_balance()
    assert not set(_paths(rest, before)) & set(ACCOUNT_READS)
    assert (pos.symbol, pos.side, pos.size) == ("BTCUSDT", "long", res.order.filled_qty)
    assert pos.entry_price == pytest.approx(PRICE)
    assert pos.stop_loss == round(PRICE * 0.98, 1)
    assert bal.wallet_balance == pytest.approx(1000.0 - float(execution["execFee"]))
    assert ex.take_outside_changes() == set()          # our own order is no outside change
    # the REST look-ups recovery makes find the same execution: journaled once
    journal.record_outcome(res.order, ex.get_fills(res.client_order_id, "BTCUSDT"), mode=ex.mode)
    assert len(journal.fills(client_order_id=res.client_order_id)) == 1


def test_a_close_by_hand_and_a_stop_bybit_executed_arrive_pushed_as_outside_changes(live: Live) -> None:
    rest, ex, executor = live.rest, live.ex, live.executor
    assert executor.open_position("BTCUSDT", "long", notional=100.0).ok
    (pos,) = ex.get_positions()
    before = len(rest.requests)
    _by_hand(rest, "Sell", f"{pos.size / 2:g}")             # half closed on the website
    wait_for(lambda: ex.get_positions()[0].size == pytest.approx(pos.size / 2), timeout=5,
             message="the half close pushed")
    wait_for(lambda: "BTCUSDT" in ex.take_outside_changes(), timeout=5, message="an outside change")
    assert _paths(rest, before).count("/v5/position/list") == 0
    assert ex.set_trading_stop("BTCUSDT", stop_loss=round(PRICE * 0.99, 1)) is None
    before = len(rest.requests)
    rest.book.set_price("BTCUSDT", round(PRICE * 0.985, 1))    # Bybit executes the stop
    wait_for(lambda: ex.get_positions() == [], timeout=5, message="the stopped-out position gone")
    wait_for(lambda: "BTCUSDT" in ex.take_outside_changes(), timeout=5, message="the stop as outside change")
    assert _paths(rest, before).count("/v5/position/list") == 0


def test_while_the_private_stream_is_down_rest_serves_and_nothing_is_lost_or_doubled(live: Live) -> None:
    rest, ws, ex, executor, journal = live.rest, live.ws, live.ex, live.executor, live.journal
    assert executor.open_position("BTCUSDT", "long", notional=100.0).ok       # pushed
    ws.refuse(True)
    assert ws.drop("/v5/private") == 1
    wait_for(lambda: ex.stream_state == Connection.POLLING, timeout=5, message="Polling-REST")
    before = len(rest.requests)
    down = executor.open_position("BTCUSDT", "long", notional=50.0)          # over REST
    assert down.ok and len(down.fills) == 1
    assert {"/v5/order/realtime", "/v5/execution/list"} <= set(_paths(rest, before))
    assert ex.get_positions()[0].size == pytest.approx(sum(float(e["execQty"]) for e in rest.book.executions))
    ws.refuse(False)
    wait_for(lambda: ex.stream_state == Connection.CONNECTED, timeout=10, message="the stream back")
    wait_for(lambda: "*" in ex.take_outside_changes(), message="a reconnection: check everything once")
    before = len(rest.requests)
    assert executor.close_position("BTCUSDT").ok
    assert not set(_paths(rest, before)) & set(ORDER_READS)                  # pushed again
    assert ex.get_positions() == []
    journaled = [f.exec_id for f in journal.fills()]
    assert sorted(journaled) == sorted(e["execId"] for e in rest.book.executions) and len(journaled) == 3
    assert all(i.status == "filled" for i in journal.intents())
    ex.close_stream()
    assert ex.stream_state == ""


def test_a_push_newer_than_the_rest_read_wins_and_each_connection_reads_anew() -> None:
    import time

    from bot.exchange.bybit_account import AccountMirror
    from bot.exchange.bybit_stream import AccountUpdate

    m = AccountMirror(rest_seconds=60.0)
    m.link_state(True, 1)
    assert not m.fresh("positions", wait=0)                      # nothing read on this connection yet
    started = time.monotonic()                                   # a REST read begins ...
    m.apply(AccountUpdate("position", ({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "size": "0.02",
                                        "entryPrice": "100", "positionIdx": 0, "seq": 7},), 1, time.monotonic()))
    # ... and answers what was true before the push
    m.seed("positions", [{"symbol": "BTCUSDT", "side": "Buy", "size": "0.01", "avgPrice": "100", "seq": 6},
                         {"symbol": "ETHUSDT", "side": "Sell", "size": "0.5", "avgPrice": "2000"}],
           started=started, epoch=1)
    rows = {r["symbol"]: r for r in m.position_rows()}
    assert rows["BTCUSDT"]["size"] == "0.02" and rows["BTCUSDT"]["avgPrice"] == "100"   # the push is newer
    assert rows["ETHUSDT"]["size"] == "0.5" and m.fresh("positions", wait=0)
    m.apply(AccountUpdate("position", ({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "size": "0.03",
                                        "entryPrice": "100", "positionIdx": 0, "seq": 5},), 1, time.monotonic()))
    assert {r["symbol"]: r for r in m.position_rows()}["BTCUSDT"]["size"] == "0.02"      # an older push: ignored
    m.link_state(False, 1)
    assert not m.fresh("positions", wait=0)                      # down: REST serves
    m.link_state(True, 2)
    assert not m.fresh("positions", wait=0) and m.take_outside() == {"*"}   # missed pushes: read anew, check all
