"""The fast path's compiled loop (bot/research/fast_kernel.py) and its Python loop give the same
backtest to the last bit on the real seed candles: trades, equity, positions and fees."""

from __future__ import annotations

import numpy as np
import pytest

from bot.research import fast_kernel
from bot.research.fast_path import CostModel, fast_backtest
from bot.strategies.sma import SMACrossStrategy


@pytest.mark.parametrize("fast, slow, atr_stop, take_profit, costs", [
    (10, 30, None, None, CostModel(start_balance=10_000.0, fee_rate=0.001, slippage_bps=0.0, size_pct=1 / 1.001,
                                   min_notional=0.0)),
    (5, 20, 2.5, None, CostModel()),
    (3, 7, 1.5, 3.0, CostModel(size_pct=1e-6, min_notional=100.0, max_risk_per_trade=0.01)),
    (10, 30, 2.0, 4.0, CostModel(slippage_bps=5.0, min_qty=0.002, min_order_value=49.0)),
])
def test_the_compiled_loop_and_the_python_loop_agree_bit_for_bit(settings, btc_hourly, fast, slow, atr_stop,
                                                                 take_profit, costs):
    assert fast_kernel.kernel() is not None, "numba is pinned in requirements.txt: the kernel must compile"
    strat = SMACrossStrategy(settings, fast=fast, slow=slow, atr_stop=atr_stop, take_profit=take_profit)
    frame = btc_hourly.iloc[:12_000]
    targets = strat.signals(frame)
    sl, tp = strat.stop_distances(frame)
    for start, end in ((0, None), (700, 9_000)):
        a = fast_backtest(frame, targets, costs, stop_dist=sl, tp_dist=tp, start=start, end=end)
        b = fast_backtest(frame, targets, costs, stop_dist=sl, tp_dist=tp, start=start, end=end, use_kernel=False)
        assert len(a.trades) > 50
        assert a.trades == b.trades        # dataclass equality: every float exactly equal
        assert a.equity.tobytes() == b.equity.tobytes() and a.position.tobytes() == b.position.tobytes()
        assert a.fees == b.fees
    reasons = {t.reason for t in a.trades}
    if atr_stop:
        assert "stop-loss" in reasons      # the stop branch of the kernel was exercised
    if take_profit:
        assert "take-profit" in reasons


def test_the_kernel_writes_its_trades_into_arrays(btc_hourly, settings):
    """run_kernel hands back arrays cut to the trades made; the reason codes name ledger's reasons."""
    fn = fast_kernel.kernel()
    frame = btc_hourly.iloc[:3_000]
    strat = SMACrossStrategy(settings, fast=5, slow=20, atr_stop=2.0)
    sl, _ = strat.stop_distances(frame)
    c = frame["close"].to_numpy()
    close_ms = np.asarray(frame.index, dtype=np.int64) + 3_600_000
    costs = CostModel()
    equity, held, t_i, t_f, fees = fast_kernel.run_kernel(
        fn, frame["open"].to_numpy(), frame["high"].to_numpy(), frame["low"].to_numpy(), c, close_ms,
        strat.signals(frame), sl, None, 0, len(c),
        (costs.start_balance, costs.fee_rate, costs.slippage_bps / 1e4, costs.size_pct, costs.min_notional,
         costs.max_risk_per_trade, costs.min_qty, costs.min_order_value))
    assert equity.shape == held.shape == (len(c),)
    assert t_i.shape[1] == 4 and t_f.shape[1] == 5 and len(t_i) == len(t_f) > 10
    assert set(t_i[:, 3].tolist()) <= set(range(len(fast_kernel.REASONS)))
    assert fees == pytest.approx(t_f[:, 4].sum(), rel=1e-12)
    assert equity[-1] == pytest.approx(costs.start_balance + (t_f[:, 3] - t_f[:, 4]).sum(), rel=1e-12)


def test_the_trade_records_are_the_tuple_of_closed_trades_they_stand_for(btc_hourly, settings):
    import pickle

    from bot.types import ClosedTrade

    res = fast_backtest(btc_hourly, SMACrossStrategy(settings, fast=5, slow=20).signals(btc_hourly), CostModel())
    trades = res.trades
    n = len(trades)
    assert n == len(trades.ints) > 1000
    as_tuple = tuple(trades)
    assert all(isinstance(t, ClosedTrade) for t in as_tuple) and len(as_tuple) == n
    assert trades == as_tuple and trades == list(as_tuple) and trades[:3] == as_tuple[:3] and trades[-1] == as_tuple[-1]
    assert trades != as_tuple[:-1]
    assert pickle.loads(pickle.dumps(trades)) == trades      # the optimiser's workers send results back
    assert trades[0].mode == "BACKTEST" and trades[0].pnl == as_tuple[0].pnl
