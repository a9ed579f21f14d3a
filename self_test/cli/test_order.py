"""`python -m bot order` and `python -m bot status` in paper mode (price from the last recorded
candle when Bybit is unreachable) and in live mode against the fake Bybit."""

from __future__ import annotations

import json
import socket

import pytest

from bot.__main__ import main


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HISTORICAL_DATA_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "bot.log"))
    monkeypatch.setenv("SIMULATION_ORDER_DELAY", "0")
    monkeypatch.setenv("BYBIT_TIMEOUT", "1")
    for k in ("BYBIT_API_KEY", "BYBIT_API_SECRET", "BYBIT_BASE_URL", "EXCHANGE_CATEGORY", "LEVERAGE"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_paper_order_and_status_offline(tmp_path, env, capsys, btc_hourly):
    env.setenv("BYBIT_BASE_URL", f"http://127.0.0.1:{closed_port()}")  # Bybit unreachable, on loopback
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "20"]) == 0
    out = capsys.readouterr().out
    last = float(btc_hourly["close"].iloc[-1])
    assert "last recorded candle 2019-10-17" in out and f"price {last:,.2f}" in out
    assert "🟢 BUY BTCUSDT 0.002 @" in out and "· PAPER · manual" in out
    wallet = json.loads((tmp_path / "data" / "paper_wallet.json").read_text())
    assert wallet["positions"]["BTCUSDT"]["size"] == 0.002
    assert main(["--env-file", "/dev/null", "status"]) == 0
    out = capsys.readouterr().out
    assert "positions (1)" in out and "BTCUSDT LONG 0.002" in out and "last recorded candle" in out
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "2"]) == 1  # under 0.001 BTC
    assert "order not placed: order too small" in capsys.readouterr().out


def test_live_order_and_status_against_the_fake(tmp_path, env, capsys, fake_bybit, btc_hourly):
    price = float(btc_hourly["close"].iloc[-1])
    fake_bybit.set_price("BTCUSDT", price)
    env.setenv("BYBIT_BASE_URL", fake_bybit.url)
    assert main(["--env-file", "/dev/null", "status", "--live"]) == 2  # no keys: refused with a reason
    env.setenv("BYBIT_API_KEY", "testkey")
    env.setenv("BYBIT_API_SECRET", "testsecret")
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "sell", "20", "--live"]) == 1  # no consent
    assert fake_bybit.book.orders == {}
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "sell", "20", "--live", "--yes"]) == 0
    (order,) = fake_bybit.book.orders.values()
    assert order["side"] == "Sell" and order["qty"] == 0.002 and order["orderLinkId"].startswith("manual-")
    from bot.journal.store import Journal

    with Journal(tmp_path / "data" / "state.db") as journal:  # journaled, and it agrees with the exchange
        intent = journal.get_intent(order["orderLinkId"])
        assert intent.status == "filled" and intent.exchange_order_id == order["orderId"] and intent.mode == "LIVE"
    capsys.readouterr()
    assert main(["--env-file", "/dev/null", "status", "--live"]) == 0
    out = capsys.readouterr().out
    assert f"LIVE linear account at {fake_bybit.url}" in out and "BTCUSDT SHORT 0.002" in out


def test_live_order_limits_come_from_the_instrument(tmp_path, env, capsys, fake_bybit, btc_hourly):
    """1,000,000 USDT of BTCUSDT is above the 119 BTC market-order maximum (the 1,190 limit-order
    maximum does not apply to a market order): the executor refuses it as too large, never sent
    (the `order` command's risk checks refuse it before that); a side in capitals is a side."""
    from bot.exchange.bybit import BybitExchange
    from bot.exchange.executor import TradeExecutor
    from bot.journal.base import MemoryJournal
    from config import load_settings

    price = float(btc_hourly["close"].iloc[-1])
    fake_bybit.set_price("BTCUSDT", price)
    env.setenv("BYBIT_BASE_URL", fake_bybit.url)
    env.setenv("BYBIT_API_KEY", "testkey")
    env.setenv("BYBIT_API_SECRET", "testsecret")
    s = load_settings(None)
    executor = TradeExecutor(BybitExchange(s), MemoryJournal(), settings=s)
    res = executor.manual_order("BTCUSDT", "BUY", 1_000_000)
    assert not res.ok and "order too large, not sent" in res.error and "market-order maximum 119" in res.error
    assert "too small" not in res.error
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "BUY", "1000000", "--live", "--yes"]) == 1
    assert "order not placed: risk per trade" in capsys.readouterr().out
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "BUY", "2", "--live", "--yes"]) == 1
    assert "order not placed" in capsys.readouterr().out
    assert fake_bybit.calls("/v5/order/create") == []
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "BUY", "20", "--live", "--yes"]) == 0
    (order,) = fake_bybit.book.orders.values()
    assert order["side"] == "Buy" and order["status"] == "Filled"


def test_an_accepted_order_that_cannot_be_seen_is_exit_4_then_resolved_by_status(tmp_path, env, capsys, fake_bybit,
                                                                                  btc_hourly):
    """Bybit accepts the order, then every look-up fails (HTTP 502) for longer than the adapter's
    look-up budget: the command says "accepted, outcome unknown" and exits 4 (never 1: a person
    reading "failed" places it again), the journal has it LOST; the next `status --live` looks it
    up by orderLinkId (read-only), journals the fill and says so in one line."""
    import logging

    from bot.journal.store import Journal
    from self_test.fakes.bybit_server import Fault

    env.setenv("ORDER_LOOKUP_SECONDS", "1")
    fake_bybit.set_price("BTCUSDT", float(btc_hourly["close"].iloc[-1]))
    env.setenv("BYBIT_BASE_URL", fake_bybit.url)
    env.setenv("BYBIT_API_KEY", "testkey")
    env.setenv("BYBIT_API_SECRET", "testsecret")
    for path in ("/v5/order/realtime", "/v5/order/history"):
        fake_bybit.inject(path, Fault(kind="http", status=502, count=10_000))
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "20", "--live", "--yes"]) == 4
    logging.shutdown()
    log = (tmp_path / "bot.log").read_text()
    assert "accepted, outcome unknown, will be resolved" in log and "Traceback" not in capsys.readouterr().err
    (order,) = fake_bybit.book.orders.values()
    assert order["status"] == "Filled"                                          # it did fill
    with Journal(tmp_path / "data" / "state.db") as j:
        assert j.get_intent(order["orderLinkId"]).status == "lost" and j.fills() == []
    fake_bybit.faults.clear()
    creates = len(fake_bybit.calls("/v5/order/create"))
    assert main(["--env-file", "/dev/null", "status", "--live"]) == 0
    out = capsys.readouterr().out
    assert "resolved 1 earlier order(s) by orderLinkId" in out and "lost -> filled" in out
    assert len(fake_bybit.calls("/v5/order/create")) == creates               # look-ups only, nothing sent
    with Journal(tmp_path / "data" / "state.db") as j:
        assert j.get_intent(order["orderLinkId"]).status == "filled"
        assert sum(f.qty for f in j.fills()) == order["cum_qty"]


def test_cli_order_is_the_windows_manual_order_with_its_stop_on_bybit(tmp_path, env, capsys, fake_bybit, btc_hourly):
    """`order` passes the engine's risk checks and sends the risk manager's stop-loss and
    take-profit with the order (the fake's order carries them, and so does the position);
    `--no-stop` sends it bare and says the position is unprotected."""
    price = float(btc_hourly["close"].iloc[-1])
    fake_bybit.set_price("BTCUSDT", price)
    env.setenv("BYBIT_BASE_URL", fake_bybit.url)
    env.setenv("BYBIT_API_KEY", "testkey")
    env.setenv("BYBIT_API_SECRET", "testsecret")
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "20", "--live", "--yes"]) == 0
    out = capsys.readouterr().out
    (order,) = fake_bybit.book.orders.values()
    assert 0 < order["sl"] < price < order["tp"]                    # server-side, with the order
    ((_, pos),) = [(k, p) for k, p in fake_bybit.book.positions.items() if p["size"]]
    assert pos["sl"] == order["sl"] and pos["tp"] == order["tp"]
    assert f"stop-loss {order['sl']:,.2f}" in out and "protected on Bybit" in out
    assert main(["--env-file", "/dev/null", "close-all", "--live", "--yes"]) == 0
    capsys.readouterr()
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "20", "--live", "--yes", "--no-stop"]) == 0
    out = capsys.readouterr().out
    bare = [o for o in fake_bybit.book.orders.values() if not o["reduce"]][-1]
    assert bare["sl"] == 0 and bare["tp"] == 0 and "unprotected" in out
    # the same rules as the window: no opposite order on an open position, and the risk brake on an
    # amount whose stop would risk more than 2 % of equity
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "sell", "20", "--live", "--yes"]) == 1
    assert "has an open long position; close it first" in capsys.readouterr().out
    assert main(["--env-file", "/dev/null", "order", "BTCUSDT", "buy", "5000", "--live", "--yes"]) == 1
    assert "order not placed: risk per trade" in capsys.readouterr().out
    assert len(fake_bybit.book.orders) == 3                          # the refused ones never left
