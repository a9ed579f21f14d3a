"""SimExchange, the paper wallet: Bybit's rules, the linear-perp book, stops on candle extremes,
persistence. Prices are real recorded BTC candles from the seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.errors import (
    DataError,
    DuplicateOrderError,
    InsufficientFundsError,
    InvalidOrderError,
    WalletInUseError,
)
from bot.exchange.base import Exchange, round_to_tick
from bot.exchange.sim import SimExchange, generic_instrument
from bot.market.feeds import ReplayFeed
from bot.market.seed import load_seed
from bot.types import OrderStatus
from self_test.conftest import make_settings

FEE = 0.00055


@pytest.fixture
def feed(btc_hourly):
    return ReplayFeed(btc_hourly, "BTCUSDT", "60")


def sim(tmp_path, **over):
    base = {"SLIPPAGE_BPS": 0.0}
    base.update(over)
    return SimExchange(make_settings(tmp_path, **base), state_path=tmp_path / "paper_wallet.json")


def test_is_an_exchange_with_bybit_instrument_rules(tmp_path):
    ex = sim(tmp_path)
    assert isinstance(ex, Exchange) and ex.mode == "PAPER" and ex.name == "paper"
    btc = ex.get_instrument("BTCUSDT")
    assert (btc.tick_size, btc.qty_step, btc.min_qty, btc.min_notional) == (0.1, 0.001, 0.001, 5)
    eth = ex.get_instrument("ETHUSDT")
    assert (eth.tick_size, eth.qty_step) == (0.01, 0.01)


def test_unknown_symbol_gets_a_generic_rule_from_its_price(tmp_path, caplog):
    ex = sim(tmp_path)
    with pytest.raises(DataError, match="no price for SOLUSDT"):
        ex.get_instrument("SOLUSDT")
    ex.set_price("SOLUSDT", 143.27)
    inst = ex.get_instrument("SOLUSDT")
    assert (inst.tick_size, inst.qty_step, inst.min_notional) == (0.01, 0.001, 5.0)
    assert "generic rule" in caplog.text
    assert generic_instrument("PEPEUSDT", 0.0000123).qty_step == 10000.0


def test_market_orders_average_realise_and_flip_with_fees(tmp_path, feed):
    ex = sim(tmp_path)
    c1, c2, c3 = feed.candle_at(100), feed.candle_at(101), feed.candle_at(102)
    ex.on_candle(c1)
    p1 = round_to_tick(c1.close, 0.1)  # fills are on Bybit's 0.1 tick
    ex.create_order("BTCUSDT", "Buy", 0.02, client_order_id="a1")
    ex.on_candle(c2)
    p2 = round_to_tick(c2.close, 0.1)  # fills are on Bybit's 0.1 tick
    ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="a2")
    (pos,) = ex.get_positions()
    assert pos.side == "long" and pos.size == pytest.approx(0.03)
    assert pos.entry_price == pytest.approx((0.02 * p1 + 0.01 * p2) / 0.03)
    ex.on_candle(c3)
    p3 = round_to_tick(c3.close, 0.1)  # fills are on Bybit's 0.1 tick
    ex.create_order("BTCUSDT", "Sell", 0.05, client_order_id="a3")  # close 0.03, open a 0.02 short
    (pos,) = ex.get_positions()
    assert pos.side == "short" and pos.size == pytest.approx(0.02) and pos.entry_price == pytest.approx(p3)
    realised = (p3 - (0.02 * p1 + 0.01 * p2) / 0.03) * 0.03
    fees = FEE * (0.02 * p1 + 0.01 * p2 + 0.05 * p3)
    bal = ex.get_balance()
    assert bal.wallet_balance == pytest.approx(1000 + realised - fees, abs=1e-9)
    (trade,) = ex.closed_trades()
    assert trade.side == "long" and trade.qty == pytest.approx(0.03) and trade.exit_price == pytest.approx(p3)
    assert trade.pnl == pytest.approx(realised - FEE * (0.02 * p1 + 0.01 * p2 + 0.03 * p3), abs=1e-9)
    assert bal.available == pytest.approx(bal.equity - 0.02 * p3)  # leverage 1: margin = notional


def test_slippage_goes_against_the_taker_and_delay_is_waited(tmp_path, feed):
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=10.0, SIMULATION_ORDER_DELAY=0.05))
    c = feed.candle_at(500)
    ex.on_candle(c)
    buy = ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="s1")
    sell = ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id="s2")
    assert buy.avg_price == pytest.approx(round(c.close * 1.001, 1))
    assert sell.avg_price == pytest.approx(round(c.close * 0.999, 1))
    assert buy.fee == pytest.approx(0.01 * buy.avg_price * FEE)


def test_instrument_and_money_rules_reject_like_bybit(tmp_path, feed):
    ex = sim(tmp_path)
    ex.on_candle(feed.candle_at(200))  # about 2,700 USD in 2017
    with pytest.raises(InvalidOrderError, match="not a multiple of the step"):
        ex.create_order("BTCUSDT", "Buy", 0.0015, client_order_id="r1")
    with pytest.raises(InvalidOrderError, match="not positive"):
        ex.create_order("BTCUSDT", "Buy", 0.0, client_order_id="r2")
    eth = load_seed("ETHUSDT", "D")
    ex.set_price("ETHUSDT", float(eth["close"].iloc[0]))  # a real 2016-17 ETH close, well under 500 USD
    assert 0.01 * ex.get_price("ETHUSDT") < 5
    with pytest.raises(InvalidOrderError, match="below the minimum 5"):
        ex.create_order("ETHUSDT", "Buy", 0.01, client_order_id="r2b")
    with pytest.raises(InsufficientFundsError, match="available"):
        ex.create_order("BTCUSDT", "Buy", 1.0, client_order_id="r3")
    with pytest.raises(InvalidOrderError, match="no long position"):
        ex.create_order("BTCUSDT", "Sell", 0.01, reduce_only=True, client_order_id="r4")
    with pytest.raises(InvalidOrderError, match="1-36 characters"):
        ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="x" * 37)
    ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="r5")
    with pytest.raises(DuplicateOrderError):
        ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="r5")
    assert len(ex.get_positions()) == 1 and ex.get_order("r1") is None


def test_spot_is_long_only(tmp_path, feed):
    ex = sim(tmp_path, EXCHANGE_CATEGORY="spot")
    ex.on_candle(feed.candle_at(300))
    assert ex.get_instrument("BTCUSDT").qty_step == 0.000001
    with pytest.raises(InsufficientFundsError, match="spot cannot short"):
        ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id="sp1")
    ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="sp2")
    with pytest.raises(InsufficientFundsError):
        ex.create_order("BTCUSDT", "Sell", 0.02, client_order_id="sp3")
    ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id="sp4")
    assert ex.get_positions() == [] and len(ex.closed_trades()) == 1


def _wide(c, p) -> bool:
    """A candle that opens inside its range, at least 0.3 % from both extremes (no gap at the open)."""
    return (c.open - c.low) / c.open > 0.003 and (c.high - c.open) / c.open > 0.003


def _find(feed, pred, start=1000):
    for i in range(start, len(feed)):
        c = feed.candle_at(i)
        if pred(c, feed.candle_at(i - 1)):
            return i
    raise AssertionError("no such candle in the seed")


@pytest.mark.parametrize("side", ["long", "short"])
def test_stop_loss_and_take_profit_trigger_on_candle_extremes(tmp_path, feed, side):
    long = side == "long"
    # A real candle with a range of more than 1 % to put the stop / target inside it.
    i = _find(feed, _wide)
    prev, c = feed.candle_at(i - 1), feed.candle_at(i)
    for kind in ("sl", "tp"):
        ex = SimExchange(make_settings(tmp_path / side / kind, SLIPPAGE_BPS=0.0))
        ex.on_candle(prev)
        adverse = round(c.low + 1, 1) if long else round(c.high - 1, 1)
        favour = round(c.high - 1, 1) if long else round(c.low + 1, 1)
        far = prev.close * (0.5 if long else 1.5)
        far_tp = prev.close * (1.5 if long else 0.5)
        sl, tp = (adverse, far_tp) if kind == "sl" else (far, favour)
        ex.create_order("BTCUSDT", "Buy" if long else "Sell", 0.01, stop_loss=sl, take_profit=tp,
                        client_order_id=f"{side}-{kind}")
        (fill,) = ex.on_candle(c)
        assert fill.reason == ("stop-loss" if kind == "sl" else "take-profit")
        assert fill.price == pytest.approx(sl if kind == "sl" else tp)
        assert ex.get_positions() == []
        assert [f.reason for f in ex.get_executions("BTCUSDT")] == ["signal", fill.reason]
        (trade,) = ex.closed_trades()
        entry = round_to_tick(prev.close, 0.1)
        expected = (1 if long else -1) * (fill.price - entry) * 0.01
        assert trade.pnl == pytest.approx(expected - FEE * 0.01 * (entry + fill.price))


@pytest.mark.parametrize("side", ["long", "short"])
def test_both_hit_in_one_candle_takes_the_stop_first(tmp_path, feed, side):
    long = side == "long"
    i = _find(feed, _wide)
    prev, c = feed.candle_at(i - 1), feed.candle_at(i)
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=0.0))
    ex.on_candle(prev)
    sl = round(c.low + 1, 1) if long else round(c.high - 1, 1)
    tp = round(c.high - 1, 1) if long else round(c.low + 1, 1)
    ex.create_order("BTCUSDT", "Buy" if long else "Sell", 0.01, stop_loss=sl, take_profit=tp, client_order_id="b1")
    (fill,) = ex.on_candle(c)
    assert fill.reason == "stop-loss" and fill.price == pytest.approx(sl)


@pytest.mark.parametrize("side", ["long", "short"])
def test_a_gap_through_the_stop_fills_at_the_open(tmp_path, feed, side):
    long = side == "long"
    # A real candle that opened more than 0.3 % away from the previous close, against the position.
    i = _find(feed, lambda c, p: (p.close - c.open) / p.close > 0.003 if long else (c.open - p.close) / p.close > 0.003)
    prev, c = feed.candle_at(i - 1), feed.candle_at(i)
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=2.0))
    ex.on_candle(prev)
    sl = round(prev.close * (0.999 if long else 1.001), 1)  # between the previous close and the gapped open
    ex.create_order("BTCUSDT", "Buy" if long else "Sell", 0.01, stop_loss=sl, client_order_id="g1")
    (fill,) = ex.on_candle(c)
    # the triggered stop is a market order at the gapped open: it slips 2 bp against us, on the tick
    slipped = c.open * (1 - 2e-4) if long else c.open * (1 + 2e-4)
    assert fill.reason == "stop-loss" and fill.price == round_to_tick(slipped, 0.1)
    assert (fill.price < c.open < sl) if long else (fill.price > c.open > sl)


def test_set_trading_stop_moves_the_stop(tmp_path, feed):
    ex = sim(tmp_path)
    ex.on_candle(feed.candle_at(700))
    ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="t1")
    ex.set_trading_stop("BTCUSDT", stop_loss=1234.56, take_profit=99999.99)
    (pos,) = ex.get_positions()
    assert (pos.stop_loss, pos.take_profit) == (1234.6, 100000.0)  # rounded to the 0.1 tick


def test_limit_orders_rest_then_fill_on_a_candle_that_reaches_them(tmp_path, feed):
    ex = sim(tmp_path)
    i = _find(feed, lambda c, p: (p.close - c.low) / p.close > 0.005)
    prev, c = feed.candle_at(i - 1), feed.candle_at(i)
    ex.on_candle(prev)
    limit = round(prev.close * 0.997, 1)
    order = ex.create_order("BTCUSDT", "Buy", 0.01, "Limit", price=limit, client_order_id="l1")
    assert order.status == OrderStatus.NEW and [o.client_order_id for o in ex.get_open_orders()] == ["l1"]
    assert ex.get_balance().available < 1000 - 0.01 * limit * 0.99  # the resting order reserves margin
    (fill,) = ex.on_candle(c)
    assert fill.price == pytest.approx(min(c.open, limit)) and fill.is_maker == (c.open > limit)
    assert ex.get_order("l1").status == OrderStatus.FILLED and ex.get_open_orders() == []
    ex.create_order("BTCUSDT", "Sell", 0.01, "Limit", price=round(c.close * 2, 1), client_order_id="l2")
    ex.cancel_order("BTCUSDT", "l2")
    assert ex.get_order("l2").status == OrderStatus.CANCELLED


def test_state_survives_a_restart_and_the_file_is_written_atomically(tmp_path, feed):
    ex = sim(tmp_path)
    for i in range(10, 15):
        ex.on_candle(feed.candle_at(i))
    ex.create_order("BTCUSDT", "Buy", 0.03, stop_loss=1000.0, client_order_id="p1")
    ex.on_candle(feed.candle_at(15))
    ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id="p2")
    ex.save()
    again = sim(tmp_path)
    assert again.get_positions() == ex.get_positions()
    assert again.get_balance() == ex.get_balance()
    assert again.closed_trades() == ex.closed_trades() and again.get_fills("p2") == ex.get_fills("p2")
    assert again.equity_history() == ex.equity_history() and len(again.equity_history()) == 6
    with pytest.raises(DuplicateOrderError):
        again.create_order("BTCUSDT", "Buy", 0.01, client_order_id="p1")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".paper-")] == []
    (tmp_path / "paper_wallet.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        sim(tmp_path)


def test_the_wallet_file_stays_bounded_however_many_trades(tmp_path, feed):
    """Closed trades live in the journal; the paper wallet file keeps the last 500 round trips
    (and 500 orders and fills), so 600 round trips do not grow it without end."""
    ex = sim(tmp_path)
    ex.on_candle(feed.candle_at(10))
    for i in range(600):
        ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id=f"b{i}")
        ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id=f"s{i}")
    ex.save()
    data = json.loads((tmp_path / "paper_wallet.json").read_text())
    assert len(data["closed"]) == 500 and len(data["fills"]) == 500 and len(data["orders"]) <= 500
    assert data["closed"][-1] == vars(ex.closed_trades()[-1])       # the newest are the ones kept


def test_wallet_file_of_another_category_is_refused(tmp_path, feed):
    ex = sim(tmp_path)
    ex.on_candle(feed.candle_at(5))
    ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="c1")
    data = json.loads((tmp_path / "paper_wallet.json").read_text())
    assert data["category"] == "linear"
    with pytest.raises(DataError, match="EXCHANGE_CATEGORY"):
        sim(tmp_path, EXCHANGE_CATEGORY="spot")


def test_the_built_in_rules_are_the_recorded_bybit_rows():
    from bot.exchange.instruments import KNOWN_INSTRUMENTS, known_instrument, parse_instrument
    from self_test.conftest import FIXTURES

    rows = json.loads((FIXTURES / "bybit" / "market_instruments_info_rows.json").read_text())["rows"]
    for category in ("linear", "spot"):
        recorded = {r["symbol"]: parse_instrument(r, category) for r in rows[category] if r["symbol"].endswith("USDT")}
        assert set(KNOWN_INSTRUMENTS[category]) <= set(recorded)
        for symbol in KNOWN_INSTRUMENTS[category]:
            ours, theirs = known_instrument(symbol, category), recorded[symbol]
            assert (ours.tick_size, ours.qty_step, ours.min_qty, ours.min_notional) == (
                theirs.tick_size, theirs.qty_step, theirs.min_qty, theirs.min_notional), symbol


def test_a_wallet_traded_by_another_running_process_is_refused(tmp_path, settings):
    """Two processes trading one persisted wallet would overwrite each other's saves."""
    wallet = tmp_path / "paper_wallet.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "paper_wallet.json.owner").write_text(str(other.pid))
        with pytest.raises(WalletInUseError, match=f"pid {other.pid}"):
            SimExchange(settings, state_path=wallet)
        looking = SimExchange(settings, state_path=wallet, claim=False)  # `bot status` may still look
        looking.set_price("BTCUSDT", 8000.0)
        looking.create_order("BTCUSDT", "Buy", 0.01, client_order_id="look-1")
        assert not wallet.exists()  # ... but never writes
    finally:
        other.kill()
        other.wait()
    # the other process is gone: its stale mark is taken over
    mine = SimExchange(settings, state_path=wallet)
    assert (tmp_path / "paper_wallet.json.owner").read_text() == str(os.getpid())
    mine.set_price("BTCUSDT", 8000.0)
    mine.create_order("BTCUSDT", "Buy", 0.01, client_order_id="mine-1")
    assert wallet.exists()


def _recomputed(ex):
    """The balance worked out from scratch (the cached one dropped), to compare with the cache."""
    ex._state.balance = None
    return ex.get_balance()


def test_the_cached_balance_follows_every_change(tmp_path, feed):
    """The balance is worked out once per change of the wallet, a position, its price or an open
    order (it is read several times per candle); after each kind of change it is what a fresh
    computation gives, and the candle's equity point and `equity()` agree with it."""
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=2.0))
    i = _find(feed, _wide)
    ex.on_candle(feed.candle_at(i - 3))
    flat = ex.get_balance()
    ex.on_candle(feed.candle_at(i - 2))
    assert ex.get_balance() is flat                     # flat: a new price changes nothing
    steps = [
        lambda: ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id="k1"),
        lambda: ex.on_candle(feed.candle_at(i - 1)),
        lambda: ex.set_price("BTCUSDT", feed.candle_at(i - 1).close * 1.01),
        lambda: ex.create_order("BTCUSDT", "Buy", 0.01, "Limit", price=round(feed.candle_at(i - 1).low * 0.9, 1),
                                client_order_id="k2"),
        lambda: ex.cancel_order("BTCUSDT", "k2"),
        lambda: ex.set_trading_stop("BTCUSDT", stop_loss=round(feed.candle_at(i).low + 1, 1)),
        lambda: ex.on_candle(feed.candle_at(i)),        # the stop fills
        lambda: ex.create_order("BTCUSDT", "Sell", 0.02, client_order_id="k3"),
        lambda: ex.on_candle(feed.candle_at(i + 1)),
    ]
    seen = [flat]
    for step in steps:
        step()
        now = ex.get_balance()
        assert now == _recomputed(ex) and ex.equity() == now.equity
        seen.append(now)
    assert ex.equity_history()[-1][1] == seen[-1].equity
    assert len({(b.equity, b.available) for b in seen}) >= 6    # the steps did change the account
    assert [f.reason for f in ex.get_executions("BTCUSDT")] == ["signal", "stop-loss", "signal"]


def test_an_orders_fills_are_found_after_old_fills_are_dropped(tmp_path, feed):
    """The wallet keeps the last 500 fills, indexed by order: `get_fills` answers what a walk over
    the kept fills would, before and after the oldest are dropped."""
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=0.0))
    ex.on_candle(feed.candle_at(10))
    for n in range(300):
        ex.create_order("BTCUSDT", "Buy", 0.01, client_order_id=f"b{n}")
        ex.create_order("BTCUSDT", "Sell", 0.01, client_order_id=f"s{n}")
    kept = ex._state.fills
    assert len(kept) == 500 and kept[0].client_order_id == "b50"
    for cid in ("b0", "s49", "b50", "s50", "b299", "s299", "nope"):
        assert ex.get_fills(cid) == [f for f in kept if f.client_order_id == cid]
    assert ex.get_fills("b0") == [] and len(ex.get_fills("s299")) == 1
    assert sum(len(v) for v in ex._state.fills_of.values()) == 500


def test_the_fast_records_are_the_dataclass_records(tmp_path, feed):
    """The position view, the balance and a changed order skip the dataclass __init__ (they are
    built on every candle and every order): they hold every field, in the dataclass's order, and equal the
    records the dataclass would build."""
    from dataclasses import fields, replace

    from bot.exchange.sim import _replace
    from bot.types import Balance, Order, Position

    ex = sim(tmp_path)
    ex.on_candle(feed.candle_at(10))
    ex.create_order("BTCUSDT", "Buy", 0.01, stop_loss=1000.0, client_order_id="v1")
    (pos,) = ex.get_positions()
    assert list(vars(pos)) == [f.name for f in fields(Position)] and pos == Position(**vars(pos))
    bal = ex.get_balance()
    assert list(vars(bal)) == [f.name for f in fields(Balance)] and bal == Balance(**vars(bal))
    order = ex.get_order("v1")
    assert list(vars(order)) == [f.name for f in fields(Order)]
    changed = _replace(order, status=OrderStatus.CANCELLED, updated_ms=5)
    assert changed == replace(order, status=OrderStatus.CANCELLED, updated_ms=5) and hash(changed) == hash(
        replace(order, status=OrderStatus.CANCELLED, updated_ms=5))
    with pytest.raises(TypeError, match="statsu"):
        _replace(order, statsu=OrderStatus.CANCELLED)
