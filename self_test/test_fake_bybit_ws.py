"""The fake Bybit WebSocket speaks V5 as Bybit does (../shared/bybit_v5_reference.md, section 6):
checked here frame by frame with a plain WebSocket client, so the pybit tests elsewhere stand on a
fake that refuses what Bybit refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from self_test.fakes.bybit_server import FakeBybit
from self_test.fakes.bybit_ws import FakeBybitStream


@pytest.fixture
def fakes() -> Iterator[tuple[FakeBybit, FakeBybitStream]]:
    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        yield rest, ws


def ask(c: ClientConnection, msg: dict) -> dict:
    c.send(json.dumps(msg))
    return json.loads(c.recv(timeout=5))


def auth_args(secret: str = "testsecret", key: str = "testkey", ahead_ms: int = 1000) -> list:
    expires = int(time.time() * 1000) + ahead_ms
    sign = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    return [key, expires, sign]


def test_public_ping_subscribe_and_unsubscribe_replies(fakes) -> None:
    _, ws = fakes
    with connect(ws.url + "/v5/public/linear") as c:
        pong = ask(c, {"op": "ping", "req_id": "p1"})
        assert pong["op"] == "ping" and pong["ret_msg"] == "pong" and pong["success"] is True and pong["req_id"] == "p1"
        ack = ask(c, {"op": "subscribe", "req_id": "r1", "args": ["kline.1.BTCUSDT"]})
        assert ack == {"success": True, "ret_msg": "", "conn_id": ack["conn_id"], "req_id": "r1", "op": "subscribe"}
        assert ws.subscribed("kline.1.BTCUSDT")
        bad = ask(c, {"op": "subscribe", "req_id": "r2", "args": ["nonsense.BTCUSDT"]})
        assert bad["success"] is False and "nonsense" in bad["ret_msg"]
        off = ask(c, {"op": "unsubscribe", "req_id": "r1", "args": ["kline.1.BTCUSDT"]})
        assert off["success"] is True and off["op"] == "unsubscribe" and not ws.subscribed("kline.1.BTCUSDT")


def test_private_needs_a_signed_unexpired_auth_before_topics(fakes) -> None:
    _, ws = fakes
    with connect(ws.url + "/v5/private") as c:
        early = ask(c, {"op": "subscribe", "req_id": "s0", "args": ["order"]})
        assert early["success"] is False and "not authorized" in early["ret_msg"]
        assert ask(c, {"op": "auth", "args": auth_args(secret="wrong")})["success"] is False
        assert ask(c, {"op": "auth", "args": auth_args(key="otherkey")})["success"] is False
        assert ask(c, {"op": "auth", "args": auth_args(ahead_ms=-5000)})["ret_msg"] == "error:request expired"
        ok = ask(c, {"op": "auth", "args": auth_args()})
        assert ok["success"] is True and ok["op"] == "auth"
        assert ask(c, {"op": "subscribe", "req_id": "s1", "args": ["order", "wallet"]})["success"] is True
        pong = ask(c, {"op": "ping", "req_id": "p"})
        assert pong["op"] == "pong" and pong["args"][0].isdigit()      # the private pong shape
    assert ws.auth_results == [False, False, False, True]


def test_topic_pushes_have_bybits_shapes(fakes, btc_hourly) -> None:
    rest, ws = fakes
    rest.set_klines("BTCUSDT", "60", btc_hourly)
    t0 = int(btc_hourly.index[100]) / 1000 + 3600 + 1
    clock = [t0]
    rest.clock = ws.clock = lambda: clock[0]
    ws._tick_ms = ws.now_ms()
    with connect(ws.url + "/v5/public/linear") as c:
        ask(c, {"op": "subscribe", "req_id": "r", "args": ["kline.60.BTCUSDT"]})
        clock[0] += 3600
        ws.tick()
        closed, still_open = json.loads(c.recv(timeout=5)), json.loads(c.recv(timeout=5))
    assert set(closed) == {"topic", "type", "ts", "data"} and closed["topic"] == "kline.60.BTCUSDT"
    row = closed["data"][0]
    assert row["confirm"] is True and still_open["data"][0]["confirm"] is False
    assert row["start"] == int(btc_hourly.index[101]) and row["end"] == row["start"] + 3_599_999
    assert isinstance(row["start"], int) and isinstance(row["open"], str) and float(row["open"]) == btc_hourly["open"].iloc[101]
    rest.set_price("BTCUSDT", float(btc_hourly["close"].iloc[-1]))
    with connect(ws.url + "/v5/private") as p:
        ask(p, {"op": "auth", "args": auth_args()})
        ask(p, {"op": "subscribe", "req_id": "s", "args": ["order", "execution", "position", "wallet"]})
        with rest.lock:
            rest.book.create({"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
                              "qty": "0.01", "orderLinkId": "shape-1"})
        pushes = [json.loads(p.recv(timeout=5)) for _ in range(4)]
    assert [m["topic"] for m in pushes] == ["order", "execution", "position", "wallet"]
    assert all(set(m) == {"id", "topic", "creationTime", "data"} for m in pushes)
    order, execution, position = pushes[0]["data"][0], pushes[1]["data"][0], pushes[2]["data"][0]
    assert order["orderStatus"] == "Filled" and order["category"] == "linear" and order["orderLinkId"] == "shape-1"
    assert execution["execType"] == "Trade" and execution["execQty"] == "0.01"
    assert position["entryPrice"] == position["avgPrice"] and position["size"] == "0.01"


def test_faults_drop_stall_malformed_refuse(fakes) -> None:
    _, ws = fakes
    with connect(ws.url + "/v5/public/linear") as c:
        assert ws.send_malformed(text="not json {") == 1
        assert c.recv(timeout=5) == "not json {"
        ws.stall()
        c.send(json.dumps({"op": "ping"}))
        with pytest.raises(TimeoutError):
            c.recv(timeout=0.5)                                          # stalled: not even a pong
    with connect(ws.url + "/v5/public/linear") as c:
        assert ask(c, {"op": "ping"})["ret_msg"] == "pong"                # a new connection is healthy
        assert ws.drop() == 1
        with pytest.raises(ConnectionClosed):
            c.recv(timeout=5)                                            # cut, no close frame
    ws.refuse(True)
    with pytest.raises(InvalidStatus):
        connect(ws.url + "/v5/public/linear")
    ws.refuse(False)
    with pytest.raises(InvalidStatus):
        connect(ws.url + "/v5/public/nowhere")                           # unknown path: 404
