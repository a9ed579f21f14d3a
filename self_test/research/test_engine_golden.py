"""The engine path makes exactly the trades it made before it was made fast (golden runs recorded
with the code of before: self_test/research/engine_golden.py), for sma (with and without ATR
stops) and the DQN agent (a checkpoint copied into the fixtures), on the real seed candles."""

from __future__ import annotations

import json

import pytest

from self_test.research import engine_golden as G

GOLDEN = json.loads(G.GOLDEN.read_text())


@pytest.mark.parametrize("case", sorted(G.CASES))
def test_engine_path_trades_as_the_golden_run(case, tmp_path):
    want = GOLDEN[case]
    got = G.summary(G.run_case(G.settings_for(tmp_path), case))
    assert len(want["trades"]) >= 30                       # a run that trades, so the comparison can fail
    assert got["candles"] == want["candles"]
    assert [t[:3] + t[-1:] for t in got["trades"]] == [t[:3] + t[-1:] for t in want["trades"]]
    for a, b in zip(got["trades"], want["trades"], strict=True):
        assert a[3:8] == pytest.approx(b[3:8], rel=1e-9, abs=1e-9)    # qty, prices, pnl, fees
    assert got["final_equity"] == pytest.approx(want["final_equity"], rel=1e-9)
    assert got["equity_sum"] == pytest.approx(want["equity_sum"], rel=1e-9)
    assert got["held_sum"] == want["held_sum"]


def test_a_backtest_keeps_every_closed_trade(settings, btc_hourly):
    """The paper exchange keeps the last 500 closed trades of a wallet; a backtest needs them all
    (it kept only the last 500, so a long run's report lost its first trades)."""
    from bot.research.backtest import engine_backtest
    from bot.strategies.sma import SMACrossStrategy

    frame = btc_hourly.iloc[:4000]
    res = engine_backtest(settings, SMACrossStrategy(settings, fast=3, slow=7), frame)
    assert len(res.trades) > 500
    assert res.trades[0].entry_ms < int(frame.index[200])          # the first trades are there
    assert sum(t.pnl for t in res.trades) == pytest.approx(res.equity[-1] - res.start_balance, abs=1e-6)
