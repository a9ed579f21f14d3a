"""The risk manager: one test per rule, on real BTC daily candles and the seed's sizing numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.analysis import indicators as ind
from bot.errors import RiskViolationError
from bot.events import EventBus, EventKind
from bot.exchange.executor import TradeExecutor
from bot.exchange.sim import SimExchange
from bot.journal.base import MemoryJournal
from bot.journal.store import Journal
from bot.safety.risk import RiskManager, stop_distance_of
from bot.types import Position
from self_test.conftest import make_settings

DAY = 86_400_000


def seed_point(btc_daily: pd.DataFrame, day: str) -> tuple[float, float, float, int]:
    """(close, ATR 14, median ATR of the last 100 days, close time ms) of a real BTC day."""
    h, lo, c = (btc_daily[k].to_numpy() for k in ("high", "low", "close"))
    atr = ind.atr(h, lo, c, 14)
    i = int(np.searchsorted(btc_daily.index, pd.Timestamp(day, tz="UTC").value // 1_000_000))
    return float(c[i]), float(atr[i]), float(np.median(atr[i - 99: i + 1])), int(btc_daily.index[i]) + DAY


def manager(tmp_path, journal=None, bus=None, **overrides) -> RiskManager:
    s = make_settings(tmp_path, **overrides)
    executor = TradeExecutor(SimExchange(s), MemoryJournal(), settings=s)   # the executor's sizing rule
    return RiskManager(s, sizer=executor.notional_for, journal=journal, bus=bus)


def pos(symbol: str, side: str, size: float, entry: float, stop: float | None) -> Position:
    return Position(symbol=symbol, side=side, size=size, entry_price=entry, stop_loss=stop)


def test_sizing_follows_the_executor_seed_rule_and_the_regime(tmp_path, btc_daily):
    rm = manager(tmp_path)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    kw = dict(symbol="BTCUSDT", side="long", price=price, atr=atr, positions=[], atr_median=med, time_ms=t)
    # Seed rule: equity 2,000 -> 100 USDT; equity 150 -> 10 USDT (the minimum).
    assert rm.evaluate_entry(equity=2000, regime="trending", **kw).notional == pytest.approx(100.0)
    assert rm.evaluate_entry(equity=150, regime="trending", **kw).notional == pytest.approx(10.0)
    # Regime sizing: choppy half, volatile quarter.
    assert rm.evaluate_entry(equity=2000, regime="choppy", **kw).notional == pytest.approx(50.0)
    volatile = rm.evaluate_entry(equity=2000, regime="volatile", **kw)
    assert volatile.approved and volatile.notional == pytest.approx(25.0)


def test_stop_and_take_profit_from_atr_and_wider_when_volatile(tmp_path, btc_daily):
    rm = manager(tmp_path)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000, positions=[],
                          regime="trending", atr_median=med, time_ms=t)
    assert d.stop_loss == pytest.approx(price - 2.5 * atr)
    assert d.take_profit == pytest.approx(price + 5.0 * atr)
    short = rm.evaluate_entry(symbol="BTCUSDT", side="short", price=price, atr=atr, equity=1000, positions=[],
                              regime="volatile", atr_median=med, time_ms=t)
    assert short.stop_loss == pytest.approx(price + 2.5 * 1.5 * atr)        # VOLATILE_STOP_MULT
    assert short.take_profit == pytest.approx(price - 5.0 * 1.5 * atr)


def test_percent_stop_mode(tmp_path, btc_daily):
    rm = manager(tmp_path, STOP_LOSS_MODE="percent", STOP_LOSS_PCT=0.03)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000, positions=[],
                          regime="trending", time_ms=t)
    assert d.stop_loss == pytest.approx(price * 0.97)
    assert d.take_profit == pytest.approx(price * (1 + 0.03 * 2.0))   # same 2:1 reward multiple as 5/2.5 ATR


def test_max_open_positions_vetoes(tmp_path, btc_daily):
    rm = manager(tmp_path, MAX_OPEN_POSITIONS=2)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    open_ = [pos("ETHUSDT", "long", 0.1, 150.0, 140.0), pos("LTCUSDT", "long", 0.5, 50.0, 48.0)]
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000, positions=open_,
                          regime="trending", time_ms=t)
    assert not d.approved and d.rule == "max_positions"
    # Adding to a symbol already open does not count itself twice.
    d2 = rm.evaluate_entry(symbol="ETHUSDT", side="long", price=150.0, atr=5.0, equity=1000, positions=open_,
                           regime="trending", time_ms=t)
    assert d2.approved


def test_reward_risk_below_minimum_vetoes(tmp_path, btc_daily):
    rm = manager(tmp_path)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    # A strategy suggests a take-profit only 1 ATR away against a 2.5 ATR stop: reward/risk 0.4 < 1.5.
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000, positions=[],
                          regime="trending", take_profit=price + atr, time_ms=t)
    assert not d.approved and d.rule == "reward_risk"
    assert "0.40" in d.reason


def test_risk_per_trade_resizes_then_vetoes(tmp_path, btc_daily):
    rm = manager(tmp_path, STOP_LOSS_MODE="percent", STOP_LOSS_PCT=0.45)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    kw = dict(symbol="BTCUSDT", side="long", price=price, atr=atr, positions=[], regime="trending", time_ms=t)
    # Equity 1,000: 5 % = 50 USDT would lose 22.5 USDT at a 45 % stop, above 2 % (20 USDT): resized to 44.44.
    d = rm.evaluate_entry(equity=1000, **kw)
    assert d.approved and d.notional == pytest.approx(20 / 0.45) and d.risk_usdt == pytest.approx(20.0)
    # Equity 200: even the 10 USDT minimum would lose 4.5 > 4 USDT: vetoed.
    v = rm.evaluate_entry(equity=200, **kw)
    assert not v.approved and v.rule == "risk_per_trade"
    # A person's 50 USDT order that breaks the limit is refused, not shrunk.
    m = rm.evaluate_entry(equity=1000, requested=50.0, **kw)
    assert not m.approved and m.rule == "risk_per_trade"


def test_concurrent_risk_resizes_then_vetoes(tmp_path, btc_daily):
    rm = manager(tmp_path, MAX_OPEN_POSITIONS=10)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    # Two open positions risking 28 USDT each: 56 of the 60 USDT (6 %) allowed on 1,000 equity.
    open_ = [pos("ETHUSDT", "long", 1.0, 150.0, 122.0), pos("LTCUSDT", "short", 1.0, 50.0, 78.0)]
    assert sum(stop_distance_of(p) for p in open_) == pytest.approx(56.0)
    kw = dict(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000, regime="trending", time_ms=t)
    d = rm.evaluate_entry(positions=open_, **kw)
    stop_frac = 2.5 * atr / price
    assert 50.0 * stop_frac > 4.0          # the usual 50 USDT would risk more than the 4 USDT left
    assert d.approved and d.risk_usdt == pytest.approx(4.0) and d.notional == pytest.approx(4.0 / stop_frac)
    full = open_ + [pos("XRPUSDT", "long", 100.0, 0.3, 0.26)]   # +4 USDT: the 6 % is used up
    v = rm.evaluate_entry(positions=full, **kw)
    assert not v.approved and v.rule == "total_risk"


def test_daily_loss_limit_raises_halts_and_lifts_next_day(tmp_path, btc_daily):
    rm = manager(tmp_path)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    day0 = t - t % DAY
    rm.check_limits(1000.0, day0 + 1000)
    rm.check_limits(960.0, day0 + 2000)                        # -4 %: within the 5 % limit
    with pytest.raises(RiskViolationError, match="daily loss"):
        rm.check_limits(949.0, day0 + 3000)                     # -5.1 %
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=949, positions=[],
                          regime="trending", time_ms=day0 + 4000)
    assert not d.approved and d.rule == "halted"
    rm.check_limits(949.0, day0 + DAY + 1)                     # a new UTC day
    assert rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=949, positions=[],
                             regime="trending", time_ms=day0 + DAY + 2).approved


def test_max_drawdown_raises_and_stays_halted(tmp_path):
    rm = manager(tmp_path)
    day = 1_550_000_000_000 - 1_550_000_000_000 % DAY
    for k, eq in enumerate([1000, 1100, 1050, 1000, 960]):     # peak 1,100; each day within the daily limit
        rm.check_limits(float(eq), day + k * DAY)
    with pytest.raises(RiskViolationError, match="drawdown"):
        rm.check_limits(930.0, day + 5 * DAY)                  # 15.5 % under the 1,100 peak
    rm.check_limits(1200.0, day + 9 * DAY)                     # even a recovery does not lift it by itself
    assert rm.halted_reason and rm.halt_rule == "max_drawdown"
    rm.reset_halt(1200.0)
    assert not rm.halted_reason


def test_dynamic_adjustment_cuts_size_in_a_real_volatility_spike(tmp_path, btc_daily):
    rm = manager(tmp_path)
    price, atr, med, t = seed_point(btc_daily, "2017-12-23")  # ATR 5.8x its 100-day median
    assert atr / med > 2.0
    mult = rm.dynamic_adjustment(atr, med)
    assert mult == pytest.approx(med / atr)
    calm_price, calm_atr, calm_med, _ = seed_point(btc_daily, "2019-03-01")
    assert rm.dynamic_adjustment(calm_atr, calm_med) == 1.0
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=2000, positions=[],
                          regime="trending", atr_median=med, time_ms=t)
    assert d.notional == pytest.approx(max(100.0 * med / atr, 10.0))


def test_trailing_stop_only_moves_in_our_favour(tmp_path):
    rm = manager(tmp_path, TRAILING_STOP=True, TRAILING_ATR_MULT=2.0)
    long = pos("BTCUSDT", "long", 0.01, 8000.0, 7500.0)
    assert rm.trailing_stop(long, 8600.0, 200.0) == pytest.approx(8200.0)
    assert rm.trailing_stop(long, 7800.0, 200.0) is None       # 7,400 would loosen the stop
    short = pos("BTCUSDT", "short", 0.01, 8000.0, 8500.0)
    assert rm.trailing_stop(short, 7600.0, 100.0) == pytest.approx(7800.0)
    assert manager(tmp_path).trailing_stop(long, 8600.0, 200.0) is None  # off by default


def test_every_veto_is_journaled_and_published(tmp_path, btc_daily):
    bus = EventBus()
    q = bus.subscribe()
    journal = Journal(tmp_path / "state.db")
    rm = manager(tmp_path, journal=journal, bus=bus, MAX_OPEN_POSITIONS=1)
    price, atr, med, t = seed_point(btc_daily, "2019-03-01")
    d = rm.evaluate_entry(symbol="BTCUSDT", side="long", price=price, atr=atr, equity=1000,
                          positions=[pos("ETHUSDT", "long", 0.1, 150.0, 140.0)], regime="trending", time_ms=t)
    assert not d.approved
    rows = journal.vetoes()
    assert len(rows) == 1 and rows[0]["symbol"] == "BTCUSDT" and "max_positions" in rows[0]["reason"]
    ev = q.get_nowait()
    assert ev.kind == EventKind.VETO and ev.data["rule"] == "max_positions"
    journal.close()
