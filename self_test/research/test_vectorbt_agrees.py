"""The peer of bench/backtest.py: vectorbt, run by the bench's own code on the real seed candles,
makes the same trades as our fast path (skipped where vectorbt, a bench requirement, is absent)."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "backtest.py"


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("vectorbt")
    spec = importlib.util.spec_from_file_location("bench_backtest", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_backtest"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("bench_backtest", None)


@pytest.mark.slow
def test_vectorbt_and_our_fast_path_make_the_same_trades(bench, settings, btc_hourly):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        records = bench.vectorbt_sma(btc_hourly)
    ours = bench.ours_vs_vectorbt(btc_hourly, settings)
    mine, theirs = bench.trade_keys(ours, records, np.asarray(btc_hourly.index, dtype=np.int64))
    assert len(mine) > 700 and {d for d, _, _ in mine} == {1, -1}
    assert mine == theirs                                   # side, entry and exit candle of every trade
    np.testing.assert_allclose([t.entry_price for t in ours], records["entry_price"], rtol=1e-12)
    np.testing.assert_allclose([t.exit_price for t in ours], records["exit_price"], rtol=1e-12)
    np.testing.assert_allclose([t.qty for t in ours], records["size"], rtol=1e-9)
    # P&L after both fees; vectorbt leaves the last trade open (no exit fee), ours closes it at end of data
    np.testing.assert_allclose([t.pnl for t in ours[:-1]], records["pnl"][:-1], rtol=1e-7, atol=1e-6)
    assert ours[-1].reason == "end-of-data"
    assert ours[-1].pnl == pytest.approx(records["pnl"][-1] - (ours[-1].fees - records["entry_fees"][-1]), rel=1e-7)


def test_tiled_candles_keep_an_hourly_increasing_index(bench, btc_hourly):
    big = bench.tile(btc_hourly, 4)
    idx = np.asarray(big.index, dtype=np.int64)
    assert len(big) == 4 * len(btc_hourly)
    assert np.all(np.diff(idx) > 0) and np.median(np.diff(idx)) == bench.HOUR
    np.testing.assert_array_equal(big["close"].to_numpy()[len(btc_hourly):2 * len(btc_hourly)],
                                  btc_hourly["close"].to_numpy())
