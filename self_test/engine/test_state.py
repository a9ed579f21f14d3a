"""The engine's trade book: the paper exchange's fills, booked one by one, give the same round
trips and the same P&L as the exchange's own wallet (both are `bot.exchange.ledger`), on real
BTC prices from the seed."""

from __future__ import annotations

import pytest

from bot.engine.state import TradeBook
from bot.exchange.sim import SimExchange
from bot.market.feeds import ReplayFeed
from bot.types import Fill, Position
from self_test.conftest import make_settings


def test_trade_book_follows_the_paper_wallet_fill_by_fill(tmp_path, btc_hourly):
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=0.0), clock=lambda: 1_700_000_000.0)  # one time for all
    feed = ReplayFeed(btc_hourly, "BTCUSDT", "60")
    book = TradeBook(mode="PAPER")
    trades = []
    # open, add, cut, reverse through zero, close
    for k, (side, qty) in enumerate([("Buy", 0.02), ("Buy", 0.01), ("Sell", 0.01), ("Sell", 0.05), ("Buy", 0.03)]):
        ex.on_candle(feed.candle_at(300 + k))
        ex.create_order("BTCUSDT", side, qty, client_order_id=f"o{k}")
        for fill in ex.get_fills(f"o{k}"):
            t = book.apply(fill)
            trades += [t] if t else []
        mark = ex.get_price("BTCUSDT")
        assert book.value("BTCUSDT", mark) == pytest.approx(ex.get_balance().equity - 1000.0, abs=1e-9), k
    assert [t.side for t in trades] == ["long", "short"] and not book.open
    assert trades == ex.closed_trades()
    assert sum(t.pnl for t in trades) == pytest.approx(ex.get_balance().wallet_balance - 1000.0, abs=1e-9)


def test_a_seeded_position_closes_as_a_round_trip(btc_hourly):
    entry, exit_ = (float(x) for x in btc_hourly["close"].iloc[[400, 420]])
    book = TradeBook(mode="LIVE")
    book.seed(Position("BTCUSDT", "short", 0.004, entry, opened_ms=5, fees=0.12))
    assert book.value("BTCUSDT", exit_) == pytest.approx((entry - exit_) * 0.004 - 0.12)
    t = book.apply(Fill("c1", "BTCUSDT", "Buy", 0.004, exit_, 0.1, 9, reason="manual"))
    assert t is not None and (t.side, t.qty, t.entry_price, t.exit_price, t.entry_ms, t.exit_ms, t.mode) == (
        "short", 0.004, entry, exit_, 5, 9, "LIVE")
    assert t.pnl == pytest.approx((entry - exit_) * 0.004 - 0.22) and book.closed_pnl["BTCUSDT"] == t.pnl
