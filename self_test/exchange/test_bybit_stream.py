"""The private streams (order, execution, position, wallet): the real pybit WebSocket, authenticated
with expires + HMAC signature, against the fake Bybit whose REST and WebSocket share one account."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.exchange.bybit_stream import AccountUpdate, PrivateStream
from bot.market.seed import load_seed
from config import Settings
from self_test.conftest import make_settings, wait_for
from self_test.fakes.bybit_server import FakeBybit, _fmt
from self_test.fakes.bybit_ws import FakeBybitStream

PRICE = float(load_seed("BTCUSDT", "60")["close"].iloc[-1])   # the last real recorded hourly close


@pytest.fixture
def fakes() -> Iterator[tuple[FakeBybit, FakeBybitStream]]:
    with FakeBybit() as rest, FakeBybitStream(rest) as ws:
        rest.set_price("BTCUSDT", PRICE)
        yield rest, ws


def _settings(tmp_path: Path, rest: FakeBybit, ws: FakeBybitStream, secret: str = "testsecret") -> Settings:
    return make_settings(tmp_path, environ={"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": secret},
                         BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url, BYBIT_WS_PING_SECONDS=0.5,
                         BYBIT_WS_STALL_SECONDS=2.0)


def _http(rest: FakeBybit):  # the real pybit REST client, as the exchange adapter uses it
    from pybit.unified_trading import HTTP

    http = HTTP(api_key="testkey", api_secret="testsecret", max_retries=1, retry_codes={-1}, retry_delay=0, timeout=5)
    http.endpoint = rest.url
    return http


def _wait_update(stream: PrivateStream, topic: str, link: str, timeout: float) -> AccountUpdate:
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        upd = stream.get(left)
        if upd is not None and upd.topic == topic and (
                not link or any(r.get("orderLinkId") == link for r in upd.rows)):
            return upd
    raise AssertionError(f"no {topic} update for {link or 'the account'} within {timeout} s")


def test_a_rest_fill_arrives_on_the_private_streams_within_a_second(tmp_path: Path, fakes) -> None:
    rest, ws = fakes
    seen: list[AccountUpdate] = []
    stream = PrivateStream(_settings(tmp_path, rest, ws), on_update=seen.append).start()
    try:
        wait_for(lambda: all(ws.subscribed(t, "/v5/private") for t in ("order", "execution", "position", "wallet")),
                 message="the four private subscriptions")
        assert ws.auth_results == [True] and stream.connected
        link = f"t-{uuid.uuid4().hex[:12]}"
        reply = _http(rest).place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market",
                                        qty="0.01", orderLinkId=link, positionIdx=0)
        assert reply["retCode"] == 0
        # Bybit's promise to the engine: the fill is known within a second of the REST answer
        execution = _wait_update(stream, "execution", link, timeout=1.0)
        (row,) = execution.rows
        assert (row["execQty"], row["execPrice"], row["side"], row["category"]) == ("0.01", _fmt(PRICE), "Buy", "linear")
        order = next(u for u in seen if u.topic == "order")
        assert order.rows[0]["orderStatus"] == "Filled" and order.rows[0]["orderLinkId"] == link
        position = _wait_update(stream, "position", "", timeout=1.0)
        assert position.rows[0]["size"] == "0.01" and position.rows[0]["side"] == "Buy"
        wallet = _wait_update(stream, "wallet", "", timeout=1.0)
        fee = 0.01 * PRICE * rest.book.taker_fee
        assert float(wallet.rows[0]["totalWalletBalance"]) == pytest.approx(1000.0 - fee)
        assert all(u.creation_ms > 0 for u in seen)
    finally:
        stream.close()


def test_an_outside_change_is_pushed_too(tmp_path: Path, fakes) -> None:
    """A resting order cancelled elsewhere (the website, another tool) reaches the stream."""
    rest, ws = fakes
    stream = PrivateStream(_settings(tmp_path, rest, ws)).start()
    try:
        wait_for(lambda: ws.subscribed("order", "/v5/private"), message="the order subscription")
        http = _http(rest)
        link = f"t-{uuid.uuid4().hex[:12]}"
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01",
                         price=_fmt(round(PRICE * 0.8)), orderLinkId=link, positionIdx=0)
        assert _wait_update(stream, "order", link, 2.0).rows[0]["orderStatus"] == "New"
        http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId=link)
        assert _wait_update(stream, "order", link, 2.0).rows[0]["orderStatus"] == "Cancelled"
    finally:
        stream.close()


def test_a_wrong_secret_is_refused_and_never_logged(tmp_path: Path, fakes,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    rest, ws = fakes
    secret = "not-the-secret-4f1c"
    with caplog.at_level(logging.DEBUG):
        stream = PrivateStream(_settings(tmp_path, rest, ws, secret=secret)).start()
        try:
            wait_for(lambda: len(ws.auth_results) >= 2, message="two refused logins (a retry with backoff)")
            assert not any(ws.auth_results)
            assert not any(ws.subscribed(t, "/v5/private") for t in ("order", "execution"))
            wait_for(lambda: not stream.connected, message="the link down after the refusal")
        finally:
            stream.close()
    assert secret not in caplog.text


def test_the_private_stream_reconnects_after_a_drop(tmp_path: Path, fakes) -> None:
    rest, ws = fakes
    stream = PrivateStream(_settings(tmp_path, rest, ws)).start()
    try:
        wait_for(lambda: ws.subscribed("wallet", "/v5/private"), message="the wallet subscription")
        assert ws.drop("/v5/private") == 1
        wait_for(lambda: stream.link.epoch == 2 and ws.subscribed("execution", "/v5/private"),
                 message="the second connection, subscribed again")
        assert ws.auth_results == [True, True]
        link = f"t-{uuid.uuid4().hex[:12]}"
        _http(rest).place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market",
                                qty="0.01", orderLinkId=link, positionIdx=0)
        assert _wait_update(stream, "execution", link, 2.0).rows[0]["side"] == "Sell"
    finally:
        stream.close()


def test_no_private_stream_without_keys_or_with_only_a_rest_url(tmp_path: Path, fakes) -> None:
    rest, ws = fakes
    with pytest.raises(ValueError, match="BYBIT_API_KEY"):
        PrivateStream(make_settings(tmp_path, BYBIT_WS_URL=ws.url))
    only_rest = make_settings(tmp_path, environ={"BYBIT_API_KEY": "k", "BYBIT_API_SECRET": "s"},
                              BYBIT_BASE_URL=rest.url)
    with pytest.raises(ValueError, match="BYBIT_WS_URL"):
        PrivateStream(only_rest)
