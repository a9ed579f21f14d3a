"""The backtester: hand-computed trades on real candles, costs, fast path == engine path, report, CLI."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest

from bot.errors import DataError
from bot.research.backtest import engine_backtest
from bot.research.fast_path import CostModel, costs_for, run_fast
from bot.research.report import build_report, regime_labels
from bot.strategies.sma import SMACrossStrategy

START_MS = 1551398400000  # 2019-03-01 00:00 UTC


@pytest.fixture(scope="module")
def slice_(btc_hourly):
    i = int(np.searchsorted(btc_hourly.index, START_MS))
    return btc_hourly.iloc[i:i + 300]


def fixed_costs(fee: float, slip_bps: float) -> CostModel:
    # notional = max(equity * 1e-6, 100): a fixed 100 USDT per entry keeps the hand arithmetic exact
    return CostModel(start_balance=1000.0, fee_rate=fee, slippage_bps=slip_bps, size_pct=1e-6, min_notional=100.0)


def hand_trades(frame: pd.DataFrame, fast: int, slow: int, fee: float, slip: float) -> list[tuple]:
    """The textbook crossover, by hand: (side, entry, exit, qty, pnl) per round trip."""
    c = frame["close"].tolist()
    events = []
    for i in range(slow, len(c) - 1):    # no decision on the last candle
        f0, s0 = sum(c[i - fast:i]) / fast, sum(c[i - slow:i]) / slow
        f1, s1 = sum(c[i - fast + 1:i + 1]) / fast, sum(c[i - slow + 1:i + 1]) / slow
        if f0 < s0 and f1 > s1:
            events.append((i, 1))
        elif f0 > s0 and f1 < s1:
            events.append((i, -1))
    out = []
    for k, (i, d) in enumerate(events):
        j = events[k + 1][0] if k + 1 < len(events) else len(c) - 1
        qty = 100.0 / c[i]
        entry = c[i] * (1 + d * slip)
        exit_ = c[j] * (1 - d * slip)
        pnl = d * (exit_ - entry) * qty - fee * qty * (entry + exit_)
        out.append(("long" if d > 0 else "short", entry, exit_, qty, pnl))
    return out


def test_sma_reference_matches_hand_computed_trades(settings, slice_):
    res = run_fast(SMACrossStrategy(settings, fast=5, slow=20), slice_, fixed_costs(0.001, 5.0))
    want = hand_trades(slice_, 5, 20, 0.001, 5e-4)
    assert len(want) >= 10
    got = [(t.side, t.entry_price, t.exit_price, t.qty, t.pnl) for t in res.trades]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0]
        assert g[1:] == pytest.approx(w[1:], rel=1e-12, abs=1e-12)
    assert res.trades[-1].reason == "end-of-data" and all(t.reason == "signal" for t in res.trades[:-1])
    assert res.equity[-1] == pytest.approx(1000.0 + sum(w[4] for w in want), abs=1e-9)


def test_fees_and_slippage_cost_exactly_what_they_should(settings, slice_):
    strat = SMACrossStrategy(settings, fast=5, slow=20)
    free = run_fast(strat, slice_, fixed_costs(0.0, 0.0))
    fee = run_fast(strat, slice_, fixed_costs(0.00055, 0.0))
    slip = run_fast(strat, slice_, fixed_costs(0.0, 10.0))
    assert len(free.trades) == len(fee.trades) == len(slip.trades) >= 10
    expected_fees = sum(0.00055 * t.qty * (t.entry_price + t.exit_price) for t in free.trades)
    assert fee.fees == pytest.approx(expected_fees, rel=1e-12)
    assert free.equity[-1] - fee.equity[-1] == pytest.approx(expected_fees, rel=1e-9)
    expected_slip = sum(t.qty * 1e-3 * (t.entry_price + t.exit_price) for t in free.trades)
    assert free.equity[-1] - slip.equity[-1] == pytest.approx(expected_slip, rel=1e-9)
    for a, b in zip(free.trades, slip.trades, strict=True):
        d = 1 if a.side == "long" else -1
        assert b.entry_price == pytest.approx(a.entry_price * (1 + d * 1e-3), rel=1e-12)


@pytest.mark.parametrize("options", [{"atr_stop": 2.0, "take_profit": 4.0}, {}],
                         ids=["strategy-stops", "risk-manager-stops"])
def test_fast_path_equals_engine_path_on_real_candles(settings, btc_hourly, options):
    """Default settings: regime sizing, volatility cut, risk caps and stops of the real RiskManager."""
    i = int(np.searchsorted(btc_hourly.index, START_MS))
    frame = btc_hourly.iloc[i:i + 1100]
    strat = SMACrossStrategy(settings, fast=5, slow=20, **options)
    start = 400
    fast = run_fast(strat, frame, costs_for(settings, "BTCUSDT", frame), start=start, settings=settings)
    eng = engine_backtest(settings, strat, frame, start=start)
    assert {"signal", "stop-loss", "take-profit"} <= {t.reason for t in fast.trades}  # every rule is exercised
    assert len({round(t.qty * t.entry_price, -1) for t in fast.trades}) > 1  # sizes vary with equity and regime
    assert len(fast.trades) == len(eng.trades) >= 20
    for a, b in zip(fast.trades, eng.trades, strict=True):
        assert (a.side, a.entry_ms, a.exit_ms, a.reason, a.qty) == (b.side, b.entry_ms, b.exit_ms, b.reason, b.qty)
        assert (a.entry_price, a.exit_price) == pytest.approx((b.entry_price, b.exit_price), rel=1e-12)
        assert a.pnl == pytest.approx(b.pnl, abs=1e-9)
    np.testing.assert_allclose(fast.equity, eng.equity, rtol=1e-10)
    assert (fast.position == eng.position).all()


def test_report_numbers_and_files(tmp_path, settings, btc_hourly):
    frame = btc_hourly.iloc[-2000:]
    res = run_fast(SMACrossStrategy(settings, fast=10, slow=30, atr_stop=2.5), frame,
                   costs_for(settings, "BTCUSDT", frame), start=100)
    labels = regime_labels(frame, settings)
    rep = build_report(res, costs_for(settings, "BTCUSDT", frame), regimes=labels[100:])
    m = rep.metrics
    assert m["net_pnl_usdt"] == pytest.approx(sum(t.pnl for t in res.trades), abs=1e-6)
    assert m["fees"] == pytest.approx(sum(t.fees for t in res.trades), rel=1e-9)
    close = frame["close"].to_numpy()[100:]
    assert m["buy_hold_return_pct"] == pytest.approx((close[-1] / close[0] - 1) * 100, abs=0.2)
    # every candle and every trade lands in exactly one regime row
    assert sum(r["candles"] for r in rep.regimes) == m["candles"]
    assert sum(r["trades"] for r in rep.regimes) == m["trades"]
    assert sum(r["net_pnl_usdt"] for r in rep.regimes) == pytest.approx(m["net_pnl_usdt"], abs=1e-6)
    assert {r["regime"] for r in rep.regimes} >= {"trending", "choppy", "volatile"}
    assert all(r["candles"] > 0 for r in rep.regimes if r["regime"] != "warmup")
    paths = rep.write(tmp_path / "rep")
    trades = pd.read_csv(paths["trades"])
    assert len(trades) == m["trades"] and set(trades["side"]) <= {"long", "short"}
    saved = json.loads(paths["metrics"].read_text())
    assert saved["trades"] == m["trades"] and saved["sharpe"] == pytest.approx(m["sharpe"])
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "buy-and-hold" in rep.table() and "volatile" in rep.table()


def cli_args(**kw):
    from bot.cli import backtest as cli
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    argv = []
    for k, v in kw.items():
        if v is True:
            argv.append(f"--{k.replace('_', '-')}")
        else:
            argv += [f"--{k.replace('_', '-')}", str(v)]
    return p.parse_args(argv)


def test_cli_backtest_on_seed_candles_both_paths_agree(tmp_path, settings, capsys):
    from bot.cli import backtest as cli
    common = dict(strategy="sma", symbols="BTCUSDT", interval="60", start="2019-09-01", end="2019-10-01")
    assert cli.run(cli_args(**common, path="engine", out=tmp_path / "engine", no_plot=True), settings) == 0
    text = capsys.readouterr().out
    assert "engine path" in text and "buy-and-hold" in text
    assert cli.run(cli_args(**common, out=tmp_path / "auto"), settings) == 0   # default: auto -> fast
    assert "fast path" in capsys.readouterr().out
    m_engine = json.loads((tmp_path / "engine" / "metrics.json").read_text())
    m_fast = json.loads((tmp_path / "auto" / "metrics.json").read_text())
    assert m_engine["start"].startswith("2019-09-01") and m_engine["candles"] == 30 * 24
    assert m_engine["trades"] == m_fast["trades"] > 5
    for key in ("net_pnl_usdt", "fees", "sharpe", "max_drawdown_pct", "exposure_pct"):
        assert m_engine[key] == pytest.approx(m_fast[key], rel=1e-9, abs=1e-9), key
    assert (tmp_path / "auto" / "report.png").stat().st_size > 10_000
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "engine" / "trades.csv"),
                                  pd.read_csv(tmp_path / "auto" / "trades.csv"), rtol=1e-9)


def write_csv(path, frame):
    df = frame.reset_index()
    df.insert(0, "Timestamp", pd.to_datetime(df.pop("open_time"), unit="ms", utc=True).astype(str))
    df.columns = [c.capitalize() for c in df.columns]
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("damage, message", [
    ("drop_close", "lacks column(s) close"),
    ("unsorted", "not sorted by time"),
    ("nan", "line 62: field high is empty or not a number"),
])
def test_bad_data_files_get_clear_errors(tmp_path, settings, btc_hourly, damage, message):
    from bot.cli import backtest as cli
    frame = btc_hourly.iloc[:200]
    path = write_csv(tmp_path / "candles.csv", frame)
    df = pd.read_csv(path)
    if damage == "drop_close":
        df = df.drop(columns=["Close"])
    elif damage == "unsorted":
        df.iloc[[50, 51]] = df.iloc[[51, 50]].to_numpy()
    else:
        df.loc[60, "High"] = np.nan
    df.to_csv(path, index=False)
    strict = {"strict": True} if damage == "unsorted" else {}   # by default rows out of order are repaired
    with pytest.raises(DataError, match=re.escape(message)) as err:
        cli.run(cli_args(strategy="sma", data=path, path="fast", out=tmp_path / "o", no_plot=True, **strict), settings)
    assert "candles.csv" in str(err.value)


def test_good_csv_with_other_column_names_runs(tmp_path, settings, btc_hourly, capsys):
    from bot.cli import backtest as cli
    path = write_csv(tmp_path / "candles.csv", btc_hourly.iloc[:600])
    assert cli.run(cli_args(strategy="sma", data=path, path="fast", out=tmp_path / "o", no_plot=True), settings) == 0
    assert "fast path" in capsys.readouterr().out


def test_dqn_fast_policy_decides_like_the_strategy(settings, btc_hourly):
    """The batched DQN pass (flat states) and the per-candle pass (open positions) give the
    targets `DQNStrategy.decide` gives, on real candles (an untrained agent: seeded weights)."""
    from bot.research.backtest_dqn import DQNPolicy
    from bot.strategies import get_strategy
    from bot.strategies.base import StrategyContext
    from bot.types import Position

    strat = get_strategy("dqn", settings)
    strat.training = False
    frame = btc_hourly.iloc[-450:]
    policy = DQNPolicy(strat, frame, settings)
    step = 3_600_000
    checked = set()
    for i in range(policy.first, len(frame), 11):
        window = frame.iloc[: i + 1]
        price = float(window["close"].iloc[-1])
        close_ms = int(window.index[-1]) + step
        for pos in (0, 1, -1):
            position = None
            upnl, held = 0.0, 0
            if pos:
                entry = float(frame["close"].iloc[i - 5])
                position = Position("BTCUSDT", "long" if pos > 0 else "short", 0.01, entry,
                                    opened_ms=close_ms - 5 * step)
                upnl, held = pos * (price / entry - 1.0) * 100.0, 5
            ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=close_ms, price=price,
                                  candles={"60": window}, position=position)
            want = strat.decide(ctx).target
            assert policy(i, pos, upnl, held) == want, (i, pos)
            checked.add(want)
    assert len(checked) >= 2   # the agent does not answer the same everywhere


def test_dqn_backtest_takes_the_fast_path(settings, btc_hourly):
    from bot.research.backtest import run_backtest
    from bot.strategies import get_strategy
    res = run_backtest(settings, get_strategy("dqn", settings), btc_hourly.iloc[-800:], start=300)
    assert res.path == "fast" and res.candles == 500
    assert res.equity[-1] == pytest.approx(1000.0 + sum(t.pnl for t in res.trades), abs=1e-6)


def test_the_engine_trails_stops_only_when_trailing_is_on(settings, btc_hourly):
    """TRAILING_STOP moves a stop towards profit candle by candle (the engine step asks the risk
    manager only when the setting is on): on 3,000 real hourly candles with 2-ATR stops, the same
    crossovers end by a stop far more often with trailing than without, and never by a looser one."""
    frame = btc_hourly.iloc[:3000]
    runs = {}
    for trail in (False, True):
        s = settings.replace(TRAILING_STOP=trail, SIMULATION_ORDER_DELAY=0.0)
        runs[trail] = engine_backtest(s, SMACrossStrategy(s, atr_stop=2.0), frame, start=200).trades
    stops = {k: sum(t.reason == "stop-loss" for t in v) for k, v in runs.items()}
    assert stops[True] > stops[False] + 10, stops
    plain = {t.entry_ms: t for t in runs[False]}
    for t in runs[True]:   # a trade entered at the same candle never exits later than without trailing
        same = plain.get(t.entry_ms)
        if same is not None and same.side == t.side:
            assert t.exit_ms <= same.exit_ms, (t, same)


def test_the_engine_path_leaves_older_objects_out_of_the_collectors_passes_then_hands_them_back(settings, slice_):
    """While `engine_backtest` runs, the objects made before it are frozen (`gc.freeze`: the
    collector's passes walk only what the run makes); afterwards nothing is left frozen, and a
    reference cycle made during the run is still collected."""
    import gc
    import weakref

    class Node:
        pass

    during: list[int] = []
    cycles: list[weakref.ref[Node]] = []

    def progress(_: int) -> None:
        during.append(gc.get_freeze_count())
        if len(cycles) < 3:
            node = Node()
            node.me = node     # type: ignore[attr-defined]
            cycles.append(weakref.ref(node))

    before = gc.get_freeze_count()
    engine_backtest(settings, SMACrossStrategy(settings, fast=10, slow=30), slice_, start=50, progress=progress)
    assert during and min(during) > before
    assert gc.get_freeze_count() == before
    gc.collect()
    assert [ref() for ref in cycles] == [None, None, None]
