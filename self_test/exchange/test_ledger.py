"""The position ledger and the stop trigger, by hand on real BTC prices from the seed: adding,
reducing, closing, reversing, fees, round trips, and which level a candle hits at what price."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.exchange.ledger import (
    PositionLedger,
    apply_fill,
    exit_line,
    fee_of,
    pnl,
    stop_exit,
    taker_price,
)

NAN = math.nan


@pytest.fixture(scope="module")
def prices(btc_hourly):
    return [float(x) for x in btc_hourly["close"].iloc[1000:1004]]


def test_apply_fill_opens_adds_reduces_closes_and_reverses(prices):
    p1, p2, p3, p4 = prices
    assert len({p1, p2, p3, p4}) == 4           # distinct prices, or the cases prove nothing
    assert apply_fill(0.0, 0.0, 0.02, p1) == (0.02, p1, 0.0, 0.0)
    size, entry, closed, gain = apply_fill(0.02, p1, 0.01, p2)                      # add
    assert (size, closed, gain) == (0.03, 0.0, 0.0)
    assert entry == pytest.approx((0.02 * p1 + 0.01 * p2) / 0.03, rel=1e-15)
    assert apply_fill(0.03, entry, -0.01, p3) == (0.02, entry, 0.01, pytest.approx((p3 - entry) * 0.01))
    assert apply_fill(0.03, entry, -0.03, p3) == (0.0, 0.0, 0.03, pytest.approx((p3 - entry) * 0.03))
    # a sell of 0.05 against a 0.03 long closes it and opens a 0.02 short at the fill price
    assert apply_fill(0.03, entry, -0.05, p3) == (-0.02, p3, 0.03, pytest.approx((p3 - entry) * 0.03))
    # a short gains when the price falls
    assert apply_fill(-0.02, p3, 0.02, p4) == (0.0, 0.0, 0.02, pytest.approx((p3 - p4) * 0.02))
    assert apply_fill(-0.02, p3, -0.01, p4)[:2] == (-0.03, pytest.approx((0.02 * p3 + 0.01 * p4) / 0.03))


def test_sizes_are_rounded_where_fills_accumulate():
    assert 0.1 + 0.2 != 0.3
    assert apply_fill(0.1, 100.0, 0.2, 100.0)[0] == 0.3
    assert apply_fill(0.3, 100.0, -0.1, 100.0)[0] == 0.2


def test_ledger_round_trip_with_fees_split_on_the_reversing_fill(prices):
    p1, p2, p3, p4 = prices
    rate = 0.00055
    led = PositionLedger(mode="PAPER")
    f1, f2, f3, f4 = (fee_of(q, p, rate) for q, p in ((0.02, p1), (0.01, p2), (0.01, p3), (0.04, p4)))
    assert led.book("BTCUSDT", "Buy", 0.02, p1, f1, 1).opened is not None
    added = led.book("BTCUSDT", "Buy", 0.01, p2, f2, 2)
    assert (added.realised, added.closed, added.opened) == (0.0, None, None)
    entry = (0.02 * p1 + 0.01 * p2) / 0.03
    part = led.book("BTCUSDT", "Sell", 0.01, p3, f3, 3, reason="manual")
    assert part.closed is None and part.realised == pytest.approx((p3 - entry) * 0.01)
    assert led.positions["BTCUSDT"].size == 0.02
    flip = led.book("BTCUSDT", "Sell", 0.04, p4, f4, 4, reason="signal")
    t = flip.closed
    assert t is not None and (t.symbol, t.side, t.entry_ms, t.exit_ms, t.reason, t.mode) == (
        "BTCUSDT", "long", 1, 4, "signal", "PAPER")
    assert t.qty == pytest.approx(0.03) and t.entry_price == pytest.approx(entry, rel=1e-15)
    assert t.exit_price == pytest.approx((0.01 * p3 + 0.02 * p4) / 0.03, rel=1e-14)
    assert t.fees == pytest.approx(f1 + f2 + f3 + f4 / 2, rel=1e-14)
    realised = (p3 - entry) * 0.01 + (p4 - entry) * 0.02
    assert t.pnl == pytest.approx(realised - t.fees, abs=1e-12)
    short = led.positions["BTCUSDT"]
    assert flip.opened is short and (short.side, short.size, short.entry, short.opened_ms) == ("short", 0.02, p4, 4)
    assert short.fees == pytest.approx(f4 / 2) and short.unrealised(p1) == pytest.approx((p4 - p1) * 0.02)


def test_ledger_pnl_equals_the_cash_flows(btc_hourly):
    """Whatever the order of adds, reduces and reversals, once flat the round trips' P&L is what
    went through the cash: minus every signed quantity times its price, minus the fees."""
    rng = np.random.default_rng(7)
    closes = btc_hourly["close"].to_numpy()[2000:2400]
    led = PositionLedger()
    cash, trades = 0.0, []
    held = 0
    for k, price in enumerate(closes):
        target = int(rng.integers(-3, 4))       # a random position in 0.01 steps: adds, cuts, flips
        if target == held:
            continue
        qty, side = abs(target - held) / 100, "Buy" if target > held else "Sell"
        held = target
        fee = fee_of(qty, price, 0.00055)
        cash += (-qty if side == "Buy" else qty) * price - fee
        booked = led.book("BTCUSDT", side, qty, float(price), fee, k)
        trades += [booked.closed] if booked.closed else []
    p = led.positions.get("BTCUSDT")
    if p is not None:                           # end flat
        fee = fee_of(p.size, closes[-1], 0.00055)
        side = "Sell" if p.side == "long" else "Buy"
        cash += (p.size if side == "Sell" else -p.size) * closes[-1] - fee
        trades.append(led.book("BTCUSDT", side, p.size, float(closes[-1]), fee, 999).closed)
    assert len(trades) > 20 and not led.positions
    assert sum(t.pnl for t in trades) == pytest.approx(cash, abs=1e-8)


def test_exchange_reported_pnl_counts_instead(prices):
    p1, p2, *_ = prices
    led = PositionLedger()
    led.book("BTCUSDT", "Buy", 0.01, p1, 0.0, 1)
    t = led.book("BTCUSDT", "Sell", 0.01, p2, 0.0, 2, realised=1.25).closed
    assert t is not None and t.pnl == 1.25


def test_exit_line_is_the_value_of_closing(prices):
    p1, p2, *_ = prices
    for size in (0.5 / p1, -0.5 / p1):
        base, slope = exit_line(0.5, size, p1, 0.001)
        assert base + slope * p2 == pytest.approx(0.5 + pnl(size, p1, p2) - fee_of(size, p2, 0.001), rel=1e-14)
        assert base + size * p2 == pytest.approx(0.5 + pnl(size, p1, p2), rel=1e-14)
    assert taker_price(p1, 1, 0.001) == pytest.approx(p1 * 1.001) and taker_price(p1, -1, 0.001) < p1


@pytest.fixture(scope="module")
def candle(btc_hourly):
    """A real hourly candle with room between its open and both extremes."""
    f = btc_hourly.iloc[500:]
    row = f[(f["high"] - f["open"] > 20) & (f["open"] - f["low"] > 20)].iloc[0]
    return float(row["open"]), float(row["high"]), float(row["low"])


def test_stop_exit_long(candle):
    o, h, lo = candle
    assert stop_exit(1, o, h, lo, lo - 1, h + 1) is None                     # neither touched
    assert stop_exit(1, o, h, lo, lo + 1, h + 1) == (lo + 1, "stop-loss")
    assert stop_exit(1, o, h, lo, lo - 1, h - 1) == (h - 1, "take-profit")
    assert stop_exit(1, o, h, lo, lo + 1, h - 1) == (lo + 1, "stop-loss")    # both: the stop
    assert stop_exit(1, o, h, lo, o + 5, h + 1) == (o, "stop-loss")          # gapped through: the open
    assert stop_exit(1, o, h, lo, lo + 1, o - 5) == (o, "take-profit")       # gapped through the target
    assert stop_exit(1, o, h, lo, NAN, h - 1) == (h - 1, "take-profit")      # NaN: not set
    assert stop_exit(1, o, h, lo, lo + 1, NAN) == (lo + 1, "stop-loss")
    assert stop_exit(0, o, h, lo, lo + 1, h - 1) is None                     # flat


def test_stop_exit_short(candle):
    o, h, lo = candle
    assert stop_exit(-1, o, h, lo, h + 1, lo - 1) is None
    assert stop_exit(-1, o, h, lo, h - 1, lo - 1) == (h - 1, "stop-loss")
    assert stop_exit(-1, o, h, lo, h + 1, lo + 1) == (lo + 1, "take-profit")
    assert stop_exit(-1, o, h, lo, h - 1, lo + 1) == (h - 1, "stop-loss")
    assert stop_exit(-1, o, h, lo, o - 5, lo - 1) == (o, "stop-loss")
    assert stop_exit(-1, o, h, lo, h + 1, o + 5) == (o, "take-profit")
