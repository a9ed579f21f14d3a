"""bot/analysis/metrics.py on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bot.analysis.metrics import (
    deflated_sharpe,
    expected_max_sharpe,
    max_drawdown,
    performance,
    periods_per_year,
    sharpe,
    sortino,
    trade_stats,
)


def test_periods_per_year():
    assert periods_per_year("60") == 365 * 24
    assert periods_per_year("D") == 365


def test_sharpe_and_sortino_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    mean, sd = 0.005, np.std(r, ddof=1)
    assert sharpe(r, 365) == pytest.approx(mean / sd * math.sqrt(365))
    downside = math.sqrt((0.02 ** 2) / 4)
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
    r = close[1:] / close[:-1] - 1
    one, many = deflated_sharpe(r, 1), deflated_sharpe(r, 1000)
    assert 0.0 <= many < one <= 1.0
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(100, 1.0) > expected_max_sharpe(10, 1.0) > 0


def test_performance_summary():
    eq = np.array([1000, 1010, 1005, 1020.0])
    p = performance(eq, [10, -5, 15], interval="D", fees=1.5, exposure=[True, False, True, True])
    assert p.net_pnl == 20 and p.return_pct == pytest.approx(2.0)
    assert p.trades == 3 and p.fees == 1.5 and p.exposure_pct == 75
    assert p.max_drawdown_pct == pytest.approx(100 * 5 / 1010)
