"""bot/analysis/metrics.py on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.analysis.metrics import (
    deflated_sharpe,
    expected_max_sharpe,
    has_exchange_calendar,
    log_returns,
    max_drawdown,
    performance,
    periods_per_year,
    sharpe,
    sortino,
    total_return_pct,
    trade_stats,
)

DAY = 86_400_000
MONDAY = 1546214400000   # 2018-12-31 00:00 UTC, a Monday


def test_periods_per_year_from_the_interval_and_the_calendar():
    assert periods_per_year("60") == 365 * 24
    assert periods_per_year("D") == 365
    every_day = MONDAY + DAY * np.arange(60)                        # crypto: Saturdays and Sundays too
    weekdays = np.array([t for t in every_day if (t - MONDAY) // DAY % 7 < 5])
    assert not has_exchange_calendar(every_day) and has_exchange_calendar(weekdays)
    assert periods_per_year("D", every_day) == 365
    assert periods_per_year("D", weekdays) == 252                   # daily stock data
    session = np.concatenate([d + 3_600_000 * np.arange(14, 21) for d in weekdays])   # 7 hourly bars a day
    assert periods_per_year("60", session) == 252 * 7
    assert periods_per_year(times_ms=[0, DAY, 3 * DAY]) == pytest.approx(365 / 1.5)   # irregular: its density


def test_log_returns_and_total_return_by_hand():
    r = log_returns([100.0, 110.0, 99.0])
    assert r == pytest.approx([math.log(1.1), math.log(0.9)])
    assert total_return_pct(r) == pytest.approx(-1.0)               # 100 -> 99
    assert log_returns([100.0, 0.0])[0] == -math.inf                # wiped out
    assert sharpe(log_returns([100.0, 50.0, 0.0, 0.0]), 365) == -math.inf


def test_a_losing_curve_never_has_a_positive_sharpe():
    # +10 %, -10 %, repeated: simple returns average +0 % and a positive-looking Sharpe is one
    # rounding away; the money is down 1 % per pair of candles and the log-return Sharpe says so
    e = 100.0 * np.cumprod([1.0] + [1.1, 0.9] * 50)
    assert e[-1] < 100.0
    assert sharpe(log_returns(e), 365) < 0
    # the hand computation: 50 x ln(1.1) and 50 x ln(0.9), sample sd
    r = np.array([math.log(1.1), math.log(0.9)] * 50)
    assert sharpe(log_returns(e), 365) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))


def test_sharpe_and_sortino_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])        # log returns
    mean = 0.005
    sd = math.sqrt(((0.005) ** 2 + 0.025 ** 2 + 0.025 ** 2 + 0.005 ** 2) / 3)   # ddof 1
    assert sharpe(r, 365) == pytest.approx(mean / sd * math.sqrt(365))
    assert sharpe(r, 365) == pytest.approx(0.005 / 0.02081666 * 19.10497, rel=1e-6)
    downside = math.sqrt((0.02 ** 2) / 4)           # RMS of the negative parts, all four periods
    assert sortino(r, 365) == pytest.approx(mean / downside * math.sqrt(365))
    assert sharpe(np.zeros(5), 365) == 0.0


def test_drawdown_depth_and_duration():
    e = [100, 120, 90, 95, 130, 117, 140]
    dd = max_drawdown(e)
    assert dd.max_drawdown == pytest.approx(0.25)  # 120 -> 90
    assert (dd.peak_index, dd.trough_index) == (1, 2)
    assert dd.duration == 2  # two candles under the 120 peak


def test_trade_stats():
    ts = trade_stats([10, -5, 20, -5, 0])
    assert ts.trades == 5 and ts.wins == 2 and ts.win_rate == pytest.approx(0.4)
    assert ts.profit_factor == pytest.approx(30 / 10)
    assert ts.avg_win == 15 and ts.avg_loss == pytest.approx(-10 / 3)
    assert trade_stats([]).trades == 0


def test_deflated_sharpe_falls_with_more_trials(btc_hourly):
    close = btc_hourly["close"].to_numpy()
    r = log_returns(close)
    one, many = deflated_sharpe(r, 1), deflated_sharpe(r, 1000)
    assert 0.0 <= many < one <= 1.0
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(100, 1.0) > expected_max_sharpe(10, 1.0) > 0


def test_performance_summary():
    eq = np.array([1000, 1010, 1005, 1020.0])
    p = performance(eq, [10, -5, 15], interval="D", fees=1.5, exposure=[True, False, True, True])
    assert p.net_pnl == 20 and p.return_pct == pytest.approx(2.0)
    r = np.log(eq[1:] / eq[:-1])
    assert p.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    assert p.trades == 3 and p.fees == 1.5 and p.exposure_pct == 75
    assert p.max_drawdown_pct == pytest.approx(100 * 5 / 1010)
