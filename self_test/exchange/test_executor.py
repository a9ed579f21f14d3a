"""TradeExecutor: the seed's sizing rule, rounding and minimums, journal-before-send, events, flips,
and failures that are reported, never dropped. Prices are real recorded BTC closes."""

from __future__ import annotations

import re

import pytest

from bot.errors import AuthError
from bot.events import EventBus, EventKind
from bot.exchange.base import floor_to_step, round_to_tick
from bot.exchange.bybit import BybitExchange
from bot.exchange.executor import TradeExecutor, new_client_order_id
from bot.exchange.sim import SimExchange
from bot.journal.base import MemoryJournal
from bot.types import Mode, OrderStatus, Side
from self_test.conftest import make_settings


@pytest.fixture
def last_close(btc_hourly):
    return round_to_tick(float(btc_hourly["close"].iloc[-1]), 0.1)  # 2019-10, about 8,000 USD


@pytest.fixture
def peak_close(btc_hourly):
    return round_to_tick(float(btc_hourly["close"].max()), 0.1)  # Dec 2017, about 19,000 USD


def make(tmp_path, price, **over):
    s = make_settings(tmp_path, SLIPPAGE_BPS=0.0, **over)
    ex = SimExchange(s)
    ex.set_price("BTCUSDT", price)
    bus = EventBus()
    events = bus.subscribe()
    journal = MemoryJournal()
    return TradeExecutor(ex, journal, settings=s, bus=bus), ex, journal, events


def drain(q):
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_sizing_follows_the_seed_rule(tmp_path, last_close, peak_close):
    te, ex, _, _ = make(tmp_path, last_close)
    btc = ex.get_instrument("BTCUSDT")
    assert te.notional_for(2000) == pytest.approx(100.0)     # 5 % of equity
    assert te.notional_for(150) == pytest.approx(10.0)       # 7.50 would be below MIN_ORDER_USDT
    assert te.size_for(2000, last_close, btc) == int(100 / last_close * 1000) / 1000
    # 10 USDT at ~8,036 is 0.00124 BTC: flooring to 0.001 (8.04 USDT) would break the 10 USDT
    # minimum, so the smallest step that meets it is taken: 0.002 BTC (16.07 USDT).
    assert te.size_for(150, last_close, btc) == 0.002
    assert te.size_for(150, last_close, btc) * last_close >= 10.0
    # at the Dec-2017 peak one step (0.001 BTC) is already ~19 USDT: that is the smallest order
    assert te.size_for(150, peak_close, btc) == 0.001
    for equity in (150, 199, 210, 1000, 2000):
        for price in (last_close, peak_close, 3000.0):
            assert te.size_for(equity, price, btc) * price >= 10.0 - 1e-9


def test_rounding_up_never_breaks_the_per_trade_risk_limit(tmp_path, last_close):
    te, ex, journal, _ = make(tmp_path, last_close)
    equity = ex.get_balance().equity
    # a stop so far away that even the 10 USDT minimum order would risk more than 2 % of equity
    far_stop = last_close * (1 - 0.9 * 0.02 * equity / 10.0)
    res = te.open_position("BTCUSDT", "long", notional=10.0, stop_loss=far_stop)
    assert not res.ok and "above 2.00% of equity" in res.error
    assert ex.get_positions() == [] and not journal.intents()  # refused before anything was journaled or sent


def test_a_manual_amount_is_never_exceeded(tmp_path, last_close):
    te, ex, journal, _ = make(tmp_path, last_close)
    res = te.manual_order("BTCUSDT", "Buy", 12)  # 12 USDT floors to 0.001 BTC = 8.04 USDT
    assert not res.ok and "below the 10.00 USDT minimum" in res.error and "smallest order that meets it is 0.002" in res.error
    assert ex.get_positions() == [] and not journal.intents()
    ok = te.manual_order("BTCUSDT", "Buy", 20)
    assert ok.ok and ex.get_positions()[0].size == 0.002


def test_client_order_ids_are_bybit_valid_and_unique():
    ids = {new_client_order_id("a-very-long-prefix-indeed") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 36 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)


def test_open_journals_the_intent_before_the_exchange_hears_of_it(tmp_path, last_close):
    te, ex, journal, events = make(tmp_path, last_close)
    seen = []
    original = ex.create_order

    def spy(*args, client_order_id, **kw):
        intent = journal.get_intent(client_order_id)
        seen.append(intent)
        return original(*args, client_order_id=client_order_id, **kw)

    ex.create_order = spy  # the journal is read at the moment the exchange is called
    res = te.open_position("BTCUSDT", "long", stop_loss=last_close * 0.97, take_profit=last_close * 1.061)
    assert res.ok and seen[0] is not None and seen[0].status == OrderStatus.SENT
    assert seen[0].client_order_id == res.client_order_id and seen[0].mode == "PAPER"
    intent = journal.get_intent(res.client_order_id)
    assert intent.status == OrderStatus.FILLED and intent.exchange_order_id == res.order.exchange_order_id
    qty = int(50 / last_close * 1000) / 1000   # 5 % of the 1,000 USDT paper wallet
    assert res.order.filled_qty == qty and [f.qty for f in journal.fills()] == [qty]
    (pos,) = ex.get_positions()
    assert pos.stop_loss == round_to_tick(last_close * 0.97, 0.1)  # prices rounded to the tick
    assert pos.take_profit == round_to_tick(last_close * 1.061, 0.1)
    (ev,) = drain(events)
    assert ev.kind == EventKind.TRADE
    assert ev.message == (f"🟢 BUY BTCUSDT {qty:g} @ {last_close:,.2f} · {qty * last_close:,.2f} USDT · PAPER")
    assert ev.data["symbol"] == "BTCUSDT" and ev.data["side"] == "Buy" and ev.data["mode"] == "PAPER"
    assert ev.data["qty"] == qty and ev.data["price"] == last_close
    assert ev.data["fee"] == pytest.approx(qty * last_close * 0.00055)


def test_too_small_is_refused_with_the_reason_and_never_sent(tmp_path, peak_close):
    te, ex, journal, events = make(tmp_path, peak_close)
    res = te.manual_order("BTCUSDT", "Buy", 10)
    assert not res.ok and "too small, not sent" in res.error and "0.001" in res.error
    assert journal.intents() == [] and ex.get_positions() == []
    (ev,) = drain(events)
    assert ev.kind == EventKind.ORDER_FAILED and "too small" in ev.message


def test_a_rejected_order_is_reported_and_journaled(tmp_path, last_close):
    te, ex, journal, events = make(tmp_path, last_close)
    res = te.open_position("BTCUSDT", "long", qty=1.0)  # 8,000 USDT with a 1,000 USDT wallet
    assert not res.ok and "available" in res.error
    (intent,) = journal.intents()
    assert intent.status == OrderStatus.REJECTED and "available" in intent.error
    (ev,) = drain(events)
    assert ev.kind == EventKind.ORDER_FAILED and ev.data["client_order_id"] == intent.client_order_id
    assert ex.get_positions() == []


def test_a_flip_is_a_reduce_only_close_then_an_open(tmp_path, btc_hourly):
    closes = [round_to_tick(float(c), 0.1) for c in btc_hourly["close"].iloc[-4:]]
    te, ex, journal, events = make(tmp_path, closes[0])
    r = te.open_position("BTCUSDT", "long", notional=100)
    assert r.ok and ex.get_positions()[0].side == "long"
    ex.set_price("BTCUSDT", closes[1])
    close = te.close_position("BTCUSDT", reason="signal")
    opened = te.open_position("BTCUSDT", "short", notional=100, reason="signal")
    assert close.order.reduce_only and close.order.side == "Sell" and opened.order.side == "Sell"
    (pos,) = ex.get_positions()
    assert pos.side == "short" and pos.size == floor_to_step(100 / closes[1], 0.001)
    ex.set_price("BTCUSDT", closes[2])
    flat = te.close_position("BTCUSDT", reason="take-profit")
    assert flat.ok and ex.get_positions() == [] and te.close_position("BTCUSDT") is None
    assert [i.status for i in journal.intents()] == [OrderStatus.FILLED] * 4
    sides = [i.side for i in journal.intents()]
    assert sides == [Side.BUY, Side.SELL, Side.SELL, Side.BUY] and {type(x) for x in sides} == {Side}
    trades = [e for e in drain(events) if e.kind == EventKind.TRADE]
    assert [e.data["side"] for e in trades] == ["Buy", "Sell", "Sell", "Buy"]
    assert trades[-1].message.endswith("· PAPER · take-profit") and trades[-1].message.startswith("🟢 BUY")
    assert len(ex.closed_trades()) == 2


def test_spot_cannot_short(tmp_path, last_close):
    te, ex, journal, _ = make(tmp_path, last_close, EXCHANGE_CATEGORY="spot")
    res = te.open_position("BTCUSDT", "short", notional=50)
    assert not res.ok and "long only" in res.error and journal.intents() == []
    res = te.manual_order("BTCUSDT", "Buy", 20)
    assert res.ok and res.order.filled_qty == floor_to_step(20 / last_close, 0.000001)


def test_the_same_executor_drives_bybit_in_live_mode(tmp_path, fake_bybit, last_close):
    fake_bybit.set_price("BTCUSDT", last_close)
    s = make_settings(tmp_path, environ={"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"},
                      BYBIT_BASE_URL=fake_bybit.url, BYBIT_TIMEOUT=2)
    bus = EventBus()
    events = bus.subscribe()
    journal = MemoryJournal()
    te = TradeExecutor(BybitExchange(s, retry_delay=0.01), journal, settings=s, bus=bus)
    res = te.manual_order("BTCUSDT", "Buy", 20)
    assert res.ok and res.order.filled_qty == 0.002 and len(fake_bybit.book.orders) == 1
    close = te.close_position("BTCUSDT")
    opened = te.open_position("BTCUSDT", "short", notional=40)
    assert close.ok and opened.ok and fake_bybit.book.positions[("BTCUSDT", 0)]["size"] == -0.004
    msgs = [e.message for e in drain(events)]
    assert msgs[0] == f"🟢 BUY BTCUSDT 0.002 @ {last_close:,.2f} · {0.002 * last_close:,.2f} USDT · LIVE · manual"
    assert len(msgs) == 3 and all(m.endswith("· LIVE") for m in msgs[1:])
    # A refused key: journaled as rejected, published, and raised for the error handler.
    fake_bybit.api_secret = "rotated"
    with pytest.raises(AuthError):
        te.open_position("BTCUSDT", "short", notional=40)
    last = journal.intents()[-1]
    assert last.status == OrderStatus.REJECTED and "10004" in last.error
    assert {i.mode for i in journal.intents()} == {Mode.LIVE} and journal.intents()[0].side is Side.BUY
    (ev,) = drain(events)
    assert ev.kind == EventKind.ORDER_FAILED and ev.level == "WARNING"
