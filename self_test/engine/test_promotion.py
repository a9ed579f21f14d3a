"""The promotion gate on journals built from real BTC days, and the rule that real money needs
AUTO_LIVE, keys and the user's consent all at once."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from bot.engine.promotion import (
    PerformanceTracker,
    PromotionGate,
    PromotionWatch,
    SwitchToLive,
    promotion_action,
)
from bot.engine.state import PairState
from bot.engine.trading_engine import LiveTradingRefused, TradingEngine
from bot.events import EventKind
from bot.exchange.sim import SimExchange
from bot.journal.store import Journal
from bot.types import ClosedTrade
from self_test.conftest import make_settings

DAY = 86_400_000
KEYS = {"BYBIT_API_KEY": "promo-test-key", "BYBIT_API_SECRET": "promo-test-secret"}


def build_journal(path, frame: pd.DataFrame, start: str, end: str, take) -> Journal:
    """A paper journal of one-day BTC longs (open -> close of real days, 0.01 BTC, taker fee both
    sides) on the days `take(row)` picks, and the equity marked at every day's close."""
    j = Journal(path)
    span = frame[(frame.index >= pd.Timestamp(start, tz="UTC").value // 10**6)
                 & (frame.index < pd.Timestamp(end, tz="UTC").value // 10**6)]
    equity = 1000.0
    for t, row in span.iterrows():
        if take(row):
            qty = 0.01
            fees = 0.00055 * qty * (row.open + row.close)
            pnl = (row.close - row.open) * qty - fees
            j.record_closed_trade(ClosedTrade("BTCUSDT", "long", qty, row.open, row.close, int(t), int(t) + DAY - 1,
                                              pnl, fees, "signal", "PAPER"))
            equity += pnl
        j.record_equity(int(t) + DAY, equity, equity, "PAPER")
    return j


def good(row) -> bool:      # a constructed "skilled" record: mostly the days that rose
    return row.close > row.open or int(row.name // DAY) % 4 == 0


@pytest.fixture
def passing(tmp_path, btc_daily):
    j = build_journal(tmp_path / "pass.db", btc_daily, "2019-02-01", "2019-04-01", good)
    yield j
    j.close()


def test_gate_passes_on_a_good_record(tmp_path, btc_daily, passing):
    s = make_settings(tmp_path)
    rec = PerformanceTracker(s).from_journal(passing, prices={"BTCUSDT": btc_daily})
    assert rec.trades >= 30 and rec.days >= 7 and rec.net_profit > 0
    assert rec.buy_hold_sharpe is not None and rec.sharpe > rec.buy_hold_sharpe
    res = PromotionGate(s).evaluate(rec)
    assert res.passed, res.criteria
    assert [c.name for c in res.criteria] == ["closed trades", "days of record", "net profit after fees",
                                              "profit factor", "max drawdown", "Sharpe vs buy-and-hold"]


def test_gate_fails_on_a_losing_record_and_on_a_short_one(tmp_path, btc_daily):
    s = make_settings(tmp_path)
    losing = build_journal(tmp_path / "lose.db", btc_daily, "2018-06-01", "2018-08-15", lambda r: True)
    rec = PerformanceTracker(s).from_journal(losing, prices={"BTCUSDT": btc_daily})
    res = PromotionGate(s).evaluate(rec)
    assert not res.passed
    assert {"net profit after fees", "profit factor"} <= set(res.missing)
    short = build_journal(tmp_path / "short.db", btc_daily, "2019-02-01", "2019-02-06", good)
    res2 = PromotionGate(s).evaluate(PerformanceTracker(s).from_journal(short, prices={"BTCUSDT": btc_daily}))
    assert {"closed trades", "days of record"} <= set(res2.missing)
    no_prices = PromotionGate(s).evaluate(PerformanceTracker(s).from_journal(losing))
    assert "Sharpe vs buy-and-hold" in no_prices.missing      # unknown buy-and-hold never counts as beaten
    losing.close()
    short.close()


def test_live_only_with_auto_live_keys_and_consent(tmp_path, btc_daily, passing):
    s = make_settings(tmp_path)
    ok = PromotionGate(s).evaluate(PerformanceTracker(s).from_journal(passing, prices={"BTCUSDT": btc_daily}))
    assert ok.passed
    for auto, keys, consent in itertools.product((False, True), repeat=3):
        action, why = promotion_action(ok, auto_live=auto, has_keys=keys, has_consent=consent)
        assert action == ("live" if auto and keys and consent else "ready"), (auto, keys, consent, why)
    failed = PromotionGate(s.replace(PROMOTION_MIN_TRADES=10_000)).evaluate(
        PerformanceTracker(s).from_journal(passing, prices={"BTCUSDT": btc_daily}))
    assert promotion_action(failed, auto_live=True, has_keys=True, has_consent=True)[0] == "wait"


def engine_on(settings, journal, btc_daily) -> TradingEngine:
    e = TradingEngine(settings, strategy="sma", journal=journal, exchange=SimExchange(settings))
    e.prepare("PAPER")
    e.pairs["BTCUSDT"] = PairState("BTCUSDT", "D", btc_daily)
    return e


def check_promotion(e: TradingEngine) -> None:
    """The engine's once-a-minute promotion check, on its prepared session journal."""
    PromotionWatch(e.settings, e.state, e.bus, journals=e.journals, consent=e.has_live_consent).check(e.c.journal)


def test_engine_announces_ready_but_stays_paper_without_keys_or_consent(tmp_path, btc_daily, passing):
    s = make_settings(tmp_path, AUTO_LIVE=True)                 # no keys
    e = engine_on(s, passing, btc_daily)
    q = e.subscribe()
    check_promotion(e)
    assert e.mode == "PAPER" and all(c.met for c in e.promotion)
    events = [q.get_nowait() for _ in range(q.qsize())]
    assert any(ev.kind == EventKind.PROMOTION and "READY FOR LIVE" in ev.message and "no Bybit keys" in ev.message
               for ev in events)
    check_promotion(e)                                        # a minute later: said once, not every minute
    assert not any("READY FOR LIVE" in q.get_nowait().message for _ in range(q.qsize()))
    with pytest.raises(LiveTradingRefused, match="BYBIT_API_KEY"):
        e.start("LIVE")
    keyed = make_settings(tmp_path, environ=KEYS, AUTO_LIVE=True)   # keys, but consent never given
    e2 = engine_on(keyed, passing, btc_daily)
    check_promotion(e2)
    assert e2.mode == "PAPER"
    with pytest.raises(LiveTradingRefused, match="consent"):
        e2.start("LIVE")
    assert not e2.running


def test_engine_switches_to_live_with_all_three(tmp_path, btc_daily, passing):
    s = make_settings(tmp_path, environ=KEYS, AUTO_LIVE=True)
    e = engine_on(s, passing, btc_daily)
    e.give_live_consent()
    assert passing.get_state(TradingEngine.CONSENT_KEY)["given_ms"] > 0
    with pytest.raises(SwitchToLive):
        check_promotion(e)
    assert e.mode == "LIVE"                                   # the thread's next session builds Bybit
    not_auto = make_settings(tmp_path, environ=KEYS, AUTO_LIVE=False)
    e2 = engine_on(not_auto, passing, btc_daily)
    check_promotion(e2)                                       # consent is stored, but AUTO_LIVE is off
    assert e2.mode == "PAPER"
