"""The fake Bybit V5 server behaves like Bybit where the real pybit client can tell: signature,
envelope, field names, duplicate orderLinkId, position mode, business error codes, faults."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from bot.market.seed import load_seed
from self_test.fakes.bybit_server import Fault


@pytest.fixture
def btc_price():
    return float(load_seed("BTCUSDT", "60")["close"].iloc[-1])  # the last real recorded hourly close


def client(fake, secret="testsecret", key="testkey", timeout=5):
    http = HTTP(api_key=key, api_secret=secret, max_retries=1, retry_codes={-1}, retry_delay=0, timeout=timeout)
    http.endpoint = fake.url
    return http


def test_signature_matches_the_reference_vectors(fake_bybit):
    # ../shared/bybit_v5_reference.md 1.2: computed with pybit and cross-checked with openssl.
    sign = hmac.new(b"testsecret", b"1700000000000testkey5000category=linear&symbol=BTCUSDT",
                    hashlib.sha256).hexdigest()
    assert sign == "f2f79889fd1201752936b389c890e9d393e01e0311a6d8785fb80753aa26c69b"
    # And the fake refuses a hand-made request whose timestamp is outside recv_window (10002).
    r = requests.get(f"{fake_bybit.url}/v5/position/list?category=linear&symbol=BTCUSDT",
                     headers={"X-BAPI-API-KEY": "testkey", "X-BAPI-TIMESTAMP": "1700000000000",
                              "X-BAPI-RECV-WINDOW": "5000", "X-BAPI-SIGN": sign}, timeout=5)
    assert r.status_code == 200 and r.json()["retCode"] == 10002


def test_wrong_secret_is_10004_and_wrong_key_10003(fake_bybit):
    with pytest.raises(InvalidRequestError) as e:
        client(fake_bybit, secret="not-the-secret").get_positions(category="linear", symbol="BTCUSDT")
    assert e.value.status_code == 10004
    with pytest.raises(InvalidRequestError) as e:
        client(fake_bybit, key="otherkey").get_wallet_balance(accountType="UNIFIED")
    assert e.value.status_code == 10003


def test_order_lifecycle_with_bybit_field_names(fake_bybit, btc_price):
    fake_bybit.set_price("BTCUSDT", btc_price)
    http = client(fake_bybit)
    ack = http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.003",
                           orderLinkId="life-1", positionIdx=0)
    assert ack["retCode"] == 0 and set(ack) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
    assert ack["result"]["orderLinkId"] == "life-1"
    # Closed orders are found by orderLinkId on the realtime endpoint too (openOnly is ignored).
    (row,) = http.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="life-1")["result"]["list"]
    assert row["orderStatus"] == "Filled" and row["cumExecQty"] == "0.003"
    assert float(row["avgPrice"]) == btc_price and isinstance(row["positionIdx"], int)
    assert http.get_open_orders(category="linear", symbol="BTCUSDT")["result"]["list"] == []
    (ex,) = http.get_executions(category="linear", orderLinkId="life-1")["result"]["list"]
    assert float(ex["execFee"]) == pytest.approx(0.003 * btc_price * 0.00055)
    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (pos["side"], pos["size"], float(pos["avgPrice"])) == ("Buy", "0.003", btc_price)
    acct = http.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert acct["accountType"] == "UNIFIED"
    assert float(acct["totalAvailableBalance"]) == pytest.approx(1000 - 0.003 * btc_price * (1 + 0.00055))
    # Close it; the flat position row is still returned when asked by symbol.
    http.place_order(category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.003",
                     reduceOnly=True, orderLinkId="life-2", positionIdx=0)
    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert (pos["side"], pos["size"]) == ("", "0")
    assert http.get_positions(category="linear", settleCoin="USDT")["result"]["list"] == []
    assert len(http.get_order_history(category="linear", symbol="BTCUSDT")["result"]["list"]) == 2


def test_duplicate_order_link_id_is_110072_linear_and_170141_spot(fake_bybit, btc_price):
    fake_bybit.set_price("BTCUSDT", btc_price)
    http = client(fake_bybit)
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                     orderLinkId="dup-1")
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                         orderLinkId="dup-1")
    assert e.value.status_code == 110072
    http.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                     marketUnit="baseCoin", orderLinkId="dup-2")
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                         marketUnit="baseCoin", orderLinkId="dup-2")
    assert e.value.status_code == 170141
    assert len(fake_bybit.orders_with_link("dup-1")) == 1 and len(fake_bybit.orders_with_link("dup-2")) == 1


@pytest.mark.parametrize("params,code", [
    ({"qty": "0.0015"}, 10001),                                   # not a multiple of qtyStep 0.001
    ({"qty": "5"}, 110007),                                       # far more than 1,000 USDT of margin
    ({"qty": "0.001", "side": "Sell", "reduceOnly": True}, 110017),  # nothing to reduce
    ({"qty": "0.001", "positionIdx": 1}, 10001),                  # hedge idx on a one-way account
    ({"qty": "0.001", "orderLinkId": "x" * 37}, 10001),
])
def test_business_errors_use_bybit_codes(fake_bybit, btc_price, params, code):
    fake_bybit.set_price("BTCUSDT", btc_price)
    body = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", **params}
    with pytest.raises(InvalidRequestError) as e:
        client(fake_bybit).place_order(**body)
    assert e.value.status_code == code
    assert fake_bybit.book.orders == {}


def test_min_notional_is_110094(fake_bybit):
    eth = load_seed("ETHUSDT", "D")
    fake_bybit.set_price("ETHUSDT", float(eth["close"].iloc[0]))  # a real early ETH close: 0.01 ETH < 5 USDT
    with pytest.raises(InvalidRequestError) as e:
        client(fake_bybit).place_order(category="linear", symbol="ETHUSDT", side="Buy", orderType="Market",
                                       qty="0.01")
    assert e.value.status_code == 110094


def test_hedge_mode_needs_position_idx(fake_bybit, btc_price):
    fake_bybit.set_price("BTCUSDT", btc_price)
    fake_bybit.book.hedge_mode = True
    http = client(fake_bybit)
    with pytest.raises(InvalidRequestError, match="position idx not match position mode"):
        http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001",
                         positionIdx=0)
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001", positionIdx=1)
    rows = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert [(r["positionIdx"], r["size"]) for r in rows] == [(1, "0.001"), (2, "0")]


def test_leverage_and_trading_stop_not_modified_codes(fake_bybit, btc_price):
    fake_bybit.set_price("BTCUSDT", btc_price)
    http = client(fake_bybit)
    with pytest.raises(InvalidRequestError) as e:
        http.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="1", sellLeverage="1")
    assert e.value.status_code == 110043
    http.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="2", sellLeverage="2")
    assert fake_bybit.book.leverage["BTCUSDT"] == 2
    http.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.001")
    stop = f"{round(btc_price * 0.9, 1)}"
    http.set_trading_stop(category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, stopLoss=stop)
    with pytest.raises(InvalidRequestError) as e:
        http.set_trading_stop(category="linear", symbol="BTCUSDT", tpslMode="Full", positionIdx=0, stopLoss=stop)
    assert e.value.status_code == 34040
    # The stop triggers when the price reaches it.
    fake_bybit.set_price("BTCUSDT", float(stop) - 0.1)
    (pos,) = http.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert pos["size"] == "0"


def test_faults(fake_bybit, btc_price):
    fake_bybit.set_price("BTCUSDT", btc_price)
    http = client(fake_bybit, timeout=0.5)
    order = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market", "qty": "0.001"}
    fake_bybit.inject("/v5/order/create", Fault("rate_limit"))
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(**order, orderLinkId="f1")
    assert e.value.status_code == 10006
    assert int(e.value.resp_headers["X-Bapi-Limit-Reset-Timestamp"]) > fake_bybit.now_ms() - 1000
    fake_bybit.inject("/v5/order/create", Fault("retcode", code=10016))
    with pytest.raises(InvalidRequestError) as e:
        http.place_order(**order, orderLinkId="f2")
    assert e.value.status_code == 10016
    fake_bybit.inject("/v5/order/create", Fault("http", status=502))
    with pytest.raises(FailedRequestError) as e:
        http.place_order(**order, orderLinkId="f3")
    assert e.value.status_code == 502
    fake_bybit.inject("/v5/order/create", Fault("slow", delay=1.2))
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.place_order(**order, orderLinkId="f4")
    fake_bybit.inject("/v5/order/create", Fault("lost"))
    with pytest.raises(requests.exceptions.ConnectionError):
        http.place_order(**order, orderLinkId="f5")
    assert [len(fake_bybit.orders_with_link(f"f{i}")) for i in range(1, 4)] == [0, 0, 0]
    assert len(fake_bybit.orders_with_link("f5")) == 1  # lost: placed, but the answer never came
    from self_test.conftest import wait_for
    wait_for(lambda: len(fake_bybit.orders_with_link("f4")) == 1, timeout=5, message="the slow order to land")
