"""Backtester speed against vectorbt and backtesting.py, on the real BTC hourly seed candles, in the same run.

vectorbt (the peer to beat beyond one series): the same SMA(10)/SMA(30) crossover, long and
short, all-in (1 / (1 + fee) of equity per entry, what vectorbt's size=inf buys), 0.1 %
commission, no slippage, filled at the signal candle's close, no decision on the last candle,
at 1x, 4x and 16x the seed candles (the series tiled, each copy's timestamps shifted past the
previous one's end). Both tools must make the same trades (side, entry and exit candle); the
script fails otherwise. "warm": best of --repeat calls in one process after a first call;
"cold": the first call in a fresh process (after imports: numba compiling or loading its
cache, vectorbt's too). Timed: from the candles to the trade list (indicators, signals, the
portfolio loop, the trade records).

Reference strategy: SMA(10)/SMA(30) crossover, long and short, all-in (99.99 % of equity per
position, commission included, as backtesting.py's buy() sizes it), 0.1 % commission per fill, no slippage, orders filled at the close of the signal
candle (backtesting.py: trade_on_close=True; open trades closed at the end: finalize_trades=True).
Both tools must agree on the number of trades (within one) and the return (within 0.5 points);
the script fails otherwise. Then it times the same SMA through the whole engine, and the DQN
agent's backtest on the fast and the engine path (untrained unless a checkpoint exists in
historical_data/models: only the speed means something then).

    .venv/bin/python bench/backtest.py [--repeat 5] [--sizes 1,4,16] [--no-cold] [--dqn-candles 3000]
"""

from __future__ import annotations

import argparse
import os
import subprocess

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's own progress bar would garble the table
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bot.market.seed import load_seed  # noqa: E402
from bot.research.fast_path import CostModel, run_fast  # noqa: E402
from bot.strategies.sma import SMACrossStrategy  # noqa: E402
from config import load_settings  # noqa: E402

CASH = 10_000.0
COMMISSION = 0.001
HOUR = 3_600_000


def tile(frame: pd.DataFrame, times: int) -> pd.DataFrame:
    """`times` copies of the candles, one after the other: each copy's open times shifted by the
    whole span of the ones before it, so the index stays strictly increasing and hourly."""
    span = int(frame.index[-1] - frame.index[0]) + HOUR
    idx = np.asarray(frame.index, dtype=np.int64)
    return pd.concat([frame.set_axis(idx + k * span, axis=0) for k in range(times)])


def ours_vs_vectorbt(frame: pd.DataFrame, settings):
    """Our fast path on vectorbt's terms (see the module docstring): its trade list, as the
    loop's arrays (`TradeRecords`; the ClosedTrade objects are made when read, like vectorbt's
    records_arr against its records_readable)."""
    costs = CostModel(start_balance=CASH, fee_rate=COMMISSION, slippage_bps=0.0, size_pct=1 / (1 + COMMISSION),
                      min_notional=0.0)
    return run_fast(SMACrossStrategy(settings, fast=10, slow=30), frame, costs).trades


def vectorbt_sma(frame: pd.DataFrame):
    """The same strategy in vectorbt: its trade records (a numpy record array)."""
    import vectorbt as vbt

    close = pd.Series(frame["close"].to_numpy(), index=pd.to_datetime(frame.index, unit="ms"))
    fast = vbt.MA.run(close, 10, short_name="fast")
    slow = vbt.MA.run(close, 30, short_name="slow")
    up = fast.ma_crossed_above(slow).to_numpy().copy()
    down = fast.ma_crossed_below(slow).to_numpy().copy()
    up[-1] = down[-1] = False          # no decision on the last candle, as ours
    pf = vbt.Portfolio.from_signals(close, entries=up, short_entries=down, fees=COMMISSION, init_cash=CASH,
                                    size=np.inf, freq="1h")
    return pf.trades.records_arr


def trade_keys(trades: list, records, open_ms: np.ndarray) -> tuple[list, list]:
    """(direction, entry close ms, exit close ms) of both tools' trades (vectorbt indexes candles
    by position; ours stamps a fill at the candle's close)."""
    a = [(1 if t.side.value == "long" else -1, t.entry_ms, t.exit_ms) for t in trades]
    b = [(1 if d == 0 else -1, int(open_ms[i]) + HOUR, int(open_ms[j]) + HOUR)
         for d, i, j in zip(records["direction"].tolist(), records["entry_idx"].tolist(),
                            records["exit_idx"].tolist(), strict=True)]
    return a, b


def cold_run(tool: str, times: int) -> None:
    """One first call in this fresh process; prints its seconds."""
    settings = load_settings(None, environ={})
    frame = tile(load_seed("BTCUSDT", "60"), times)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tool == "vectorbt":
            import vectorbt  # noqa: F401  (the import is not what we time)
        t0 = time.perf_counter()
        ours_vs_vectorbt(frame, settings) if tool == "ours" else vectorbt_sma(frame)
        print(time.perf_counter() - t0)


def cold(tool: str, times: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--cold-run", tool, "--sizes", str(times)], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def vectorbt_table(settings, sizes: list[int], repeat: int, with_cold: bool) -> bool:
    """Prints ours vs vectorbt at each size; False when the trades differ."""
    try:
        import vectorbt  # noqa: F401
    except ImportError:
        print("vectorbt is not installed (pip install -r requirements-bench.txt): comparison skipped")
        return True
    seed = load_seed("BTCUSDT", "60")
    print(f"ours vs vectorbt {vectorbt.__version__}, SMA(10)/SMA(30), candles/s (higher is better); "
          f"ratio = ours / vectorbt (target >= 1)")
    print(f"{'size':>5}{'candles':>9}{'trades':>8}{'same':>6}{'warm ours':>12}{'vectorbt':>11}{'ratio':>7}"
          + (f"{'cold ours':>12}{'vectorbt':>11}{'ratio':>7}" if with_cold else ""))
    ok = True
    per_candle: dict[int, tuple[float, float]] = {}
    for k in sizes:
        frame = tile(seed, k)
        n = len(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mine, theirs = ours_vs_vectorbt(frame, settings), vectorbt_sma(frame)   # first calls: compile, caches
            a, b = trade_keys(mine, theirs, np.asarray(frame.index, dtype=np.int64))
            same = a == b
            ok &= same
            runs = [(_timed(lambda f=frame: ours_vs_vectorbt(f, settings)), _timed(lambda f=frame: vectorbt_sma(f)))
                    for _ in range(repeat)]      # taken in turns: a busy moment of the machine hits both
            t_ours, t_peer = min(r[0] for r in runs), min(r[1] for r in runs)
        line = (f"{k:>4}x{n:>9,}{len(a):>8}{'yes' if same else 'NO':>6}{n / t_ours:>12,.0f}{n / t_peer:>11,.0f}"
                f"{t_peer / t_ours:>7.2f}")
        if with_cold:
            c_ours, c_peer = cold("ours", k), cold("vectorbt", k)
            line += f"{n / c_ours:>12,.0f}{n / c_peer:>11,.0f}{c_peer / c_ours:>7.2f}"
        print(line, flush=True)
        per_candle[k] = (t_ours / n, t_peer / n)
    if len(per_candle) > 1:
        lo, hi = min(per_candle), max(per_candle)
        print(f"time per candle at {hi}x / at {lo}x (warm): ours {per_candle[hi][0] / per_candle[lo][0]:.2f}, "
              f"vectorbt {per_candle[hi][1] / per_candle[lo][1]:.2f} (target for ours <= 1.2)")
    return ok


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ours(frame: pd.DataFrame, settings) -> tuple[float, int, float]:
    strat = SMACrossStrategy(settings, fast=10, slow=30)
    # backtesting.py's buy() spends 99.99 % of the margin on price plus commission: size alike
    costs = CostModel(start_balance=CASH, fee_rate=COMMISSION, slippage_bps=0.0,
                      size_pct=0.9999 / (1 + COMMISSION), min_notional=0.0)
    t0 = time.perf_counter()
    res = run_fast(strat, frame, costs)
    dt = time.perf_counter() - t0
    return dt, len(res.trades), (res.equity[-1] / CASH - 1) * 100


def peer(frame: pd.DataFrame) -> tuple[float, int, float]:
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    def sma(values, n):
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):
        n1, n2 = 10, 30

        def init(self):
            self.sma1 = self.I(sma, self.data.Close, self.n1)
            self.sma2 = self.I(sma, self.data.Close, self.n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    data = pd.DataFrame({"Open": frame["open"].to_numpy(), "High": frame["high"].to_numpy(),
                         "Low": frame["low"].to_numpy(), "Close": frame["close"].to_numpy(),
                         "Volume": frame["volume"].to_numpy()},
                        index=pd.to_datetime(frame.index, unit="ms", utc=True).tz_localize(None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(data, SmaCross, cash=CASH, commission=COMMISSION, trade_on_close=True,
                                finalize_trades=True, fractional_unit=1e-6)
        t0 = time.perf_counter()
        stats = bt.run()
        dt = time.perf_counter() - t0
    return dt, int(stats["# Trades"]), float(stats["Return [%]"])


def engine_speed(frame: pd.DataFrame, settings, candles: int, warmup: int = 400) -> str:
    """The same SMA(10)/SMA(30) through the whole bot (engine, risk manager, executor, paper exchange).
    Its trades differ from the reference (the risk manager sizes and stops them), so only speed is shown."""
    import logging

    from bot.research.backtest import engine_backtest
    part = frame.iloc[-(candles + warmup):]
    logging.disable(logging.WARNING)
    try:
        t0 = time.perf_counter()
        res = engine_backtest(settings, SMACrossStrategy(settings, fast=10, slow=30), part, start=warmup)
        dt = time.perf_counter() - t0
    finally:
        logging.disable(logging.NOTSET)
    return (f"SMA(10)/SMA(30) through the full engine path: {res.candles} candles in {dt:.2f} s = "
            f"{res.candles / dt:,.0f} candles/s, {len(res.trades)} trades")


def dqn_speed(frame: pd.DataFrame, settings, candles: int, warmup: int = 400) -> list[str]:
    """The DQN agent: the fast path (batched features and flat-state Q-values, one forward pass
    per candle in a position) over all candles, and the engine path over `candles`."""
    import logging
    try:
        from bot.research.backtest import engine_backtest, run_backtest
        from bot.strategies import get_strategy
        strat = get_strategy("dqn", settings)
    except Exception as exc:  # the agent is optional here: say why it was not timed
        return [f"DQN backtest not timed: {type(exc).__name__}: {exc}"]
    lines = []
    logging.disable(logging.WARNING)   # an untrained agent's vetoes would flood the console
    try:
        t0 = time.perf_counter()
        res = run_backtest(settings, strat, frame, path="auto", start=warmup)
        dt = time.perf_counter() - t0
        lines.append(f"DQN agent backtest, {res.path} path: {res.candles} candles in {dt:.2f} s = "
                     f"{res.candles / dt:,.0f} candles/s, {len(res.trades)} trades")
        part = frame.iloc[-(candles + warmup):]
        t0 = time.perf_counter()
        res = engine_backtest(settings, get_strategy("dqn", settings), part, start=warmup)
        dt = time.perf_counter() - t0
        lines.append(f"DQN agent backtest, engine path: {res.candles} candles in {dt:.2f} s = "
                     f"{res.candles / dt:,.0f} candles/s, {len(res.trades)} trades")
        fast = run_backtest(settings, get_strategy("dqn", settings), part, path="fast", start=warmup)
        same = [(t.side, t.entry_ms, t.exit_ms, t.qty, t.reason) for t in fast.trades] == \
            [(t.side, t.entry_ms, t.exit_ms, t.qty, t.reason) for t in res.trades]
        lines.append(f"DQN fast path on the same {res.candles} candles: {len(fast.trades)} trades, "
                     f"{'identical to' if same else 'DIFFERENT from'} the engine path's; largest equity "
                     f"difference {float(abs(fast.equity - res.equity).max()):.2e} USDT")
    finally:
        logging.disable(logging.NOTSET)
    return lines


def analyst_speed(candles: int, warmup: int = 400) -> list[str]:
    """The analyst's rules on the engine path next to backtesting.py driving the same rules.

    Engine path: `engine_backtest` (strategy -> review -> risk manager -> executor -> SimExchange)
    with `AnalystStrategy` as the CLI builds it (history from the candle cache / seed), over the
    last `candles` + `warmup` hourly seed candles; the analyst's own share is the time spent in
    its `decide`. backtesting.py: a `Strategy` whose `next()` hands the candles so far (arrays,
    no DataFrame) to a second `AnalystStrategy` object and follows its target with a market order
    at the close (half the equity, the analyst's stop and take-profit); no risk manager, so its
    trades differ from ours: only the speed of the same rules is compared."""
    import logging
    import tempfile

    from backtesting import Backtest, Strategy

    from bot.research.backtest import engine_backtest
    from bot.strategies.analyst import AnalystStrategy
    from bot.strategies.base import FLAT, LONG, SHORT, StrategyContext
    from bot.types import Position, PositionSide

    tmp = tempfile.mkdtemp(prefix="bench-analyst-")
    settings = load_settings(None, environ={}, HISTORICAL_DATA_PATH=f"{tmp}/data", LOG_FILE=f"{tmp}/bot.log",
                             SIMULATION_ORDER_DELAY=0.0)
    frame = load_seed("BTCUSDT", "60").iloc[-(candles + warmup):]

    class Timed(AnalystStrategy):
        spent, calls, first = 0.0, 0, 0.0   # `first`: the first decide, which loads the cache

        def decide(self, context):
            t0 = time.perf_counter()
            try:
                return super().decide(context)
            finally:
                dt = time.perf_counter() - t0
                if Timed.calls == 0:
                    Timed.first = dt
                else:
                    Timed.spent += dt
                Timed.calls += 1

    logging.disable(logging.WARNING)
    try:
        t0 = time.perf_counter()
        res = engine_backtest(settings, Timed(settings), frame, start=warmup)
        dt = time.perf_counter() - t0
    finally:
        logging.disable(logging.NOTSET)
    ours = res.candles / dt
    own = Timed.spent / max(Timed.calls - 1, 1) * 1e6

    times = np.asarray(frame.index, dtype=np.int64)
    values = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy(dtype=np.float64)
    analyst = AnalystStrategy(settings)

    class Candles(dict):
        """The context's candles as the engine passes them: arrays through `tail`."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def tail(self, interval: str):
            return times[:self.n], values[:self.n]

        def get(self, interval: str, default=None):   # a strategy that reads a frame: the last 400
            return frame.iloc[max(0, self.n - 400):self.n] if interval == "60" else default

        __getitem__ = get

    class AnalystRules(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            n = len(self.data)
            if n <= warmup:
                return
            price = float(values[n - 1, 3])
            pos = None
            if self.position:
                side = PositionSide.LONG if self.position.is_long else PositionSide.SHORT
                pos = Position("BTCUSDT", side, abs(float(self.position.size)), price)
            d = analyst.decide(StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(times[n - 1]) + HOUR,
                                               price=price, candles=Candles(n), position=pos))
            held = pos.direction if pos is not None else FLAT
            if d.target == held:
                return
            if held != FLAT:
                self.position.close()
            sl, tp = d.stop_loss, d.take_profit
            if d.target == LONG:
                ok = sl is not None and tp is not None and sl < price < tp
                self.buy(size=0.5, sl=sl if ok else None, tp=tp if ok else None)
            elif d.target == SHORT:
                ok = sl is not None and tp is not None and tp < price < sl
                self.sell(size=0.5, sl=sl if ok else None, tp=tp if ok else None)

    data = frame.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    data.index = pd.to_datetime(times, unit="ms")
    bt = Backtest(data, AnalystRules, cash=10_000_000, commission=COMMISSION, trade_on_close=True,
                  finalize_trades=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        stats = bt.run()
        pdt = time.perf_counter() - t0
    peer_speed = len(frame) / pdt
    return [f"analyst (rules of bot/strategies/analyst.py), {res.candles} hourly candles after {warmup} of warm-up:",
            f"  engine path (strategy -> review -> risk -> executor -> SimExchange): {dt:.2f} s = "
            f"{ours:,.0f} candles/s, {len(res.trades)} trades; the analyst's own decide: {own:.1f} us per candle "
            f"(= {1e6 / own:,.0f} candles/s if the engine cost nothing) after a first decide of "
            f"{Timed.first * 1e3:.0f} ms (600 days of cached candles taken in)",
            f"  backtesting.py running the same AnalystStrategy rules (no risk manager): {pdt:.2f} s = "
            f"{peer_speed:,.0f} candles/s, {int(stats['# Trades'])} trades",
            f"  speed ratio engine path / backtesting.py: {ours / peer_speed:.2f}x"]


def engine_path_table(settings, repeat: int) -> list[str]:
    """Engine-path speed (strategy -> risk -> executor -> SimExchange, `backtest --path engine`)
    for sma, the DQN agent (the shipped checkpoint) and the analyst on 2019 Q1, on 2018-07 ..
    2019-10 and on the whole seed file (20,111 hourly candles, the size of the issue's files) of
    the seed candles, 1,000 warm-up candles before each; best of `repeat` after one warm
    run. Candles/s counts the traded candles over the whole run's time (the warm-up candles, the
    engine's set-up and the closing of what is open included). Targets (issue 17): >= 50k
    candles/s for sma and dqn, >= 20k for the analyst."""
    import logging
    import tempfile

    from bot.research.backtest import engine_backtest, run_backtest
    from bot.strategies import get_strategy
    from bot.strategies.dqn import DQNStrategy
    from bot.types import ms_to_iso

    seed = load_seed("BTCUSDT", "60")
    model = ROOT / "historical_data" / "models" / "dqn-default.pt"
    # the analyst reads its history from the candle cache (then the seed): an empty one of its own
    quiet = settings.replace(HISTORICAL_DATA_PATH=tempfile.mkdtemp(prefix="bench-engine-"))
    # the DQN's feature replay compiled from the first run, as a sweep or a long run has it (a
    # fresh process replays with the update loop for its first 50,000 candles: COMPILE_AFTER)
    from bot.analysis import feature_replay
    feature_replay.COMPILE_AFTER = 0
    lines = [f"engine path (backtest --path engine), best of {repeat}; load average {os.getloadavg()[0]:.1f}; "
             "the DQN's feature replay compiled (as in a sweep)"]
    logging.disable(logging.WARNING)
    try:
        whole = (ms_to_iso(int(seed.index[1000]) + 86_400_000)[:10], ms_to_iso(int(seed.index[-1]) + 86_400_000)[:10])
        for start, end in (("2019-01-01", "2019-04-01"), ("2018-07-01", "2019-10-01"), whole):
            s_ms, e_ms = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in (start, end))
            first = int(np.searchsorted(np.asarray(seed.index), s_ms))
            frame = seed[seed.index < e_ms].iloc[first - 1000:]
            for name in ("sma", "dqn", "analyst"):
                if name == "dqn" and not model.exists():
                    lines.append(f"  dqn: no checkpoint at {model}: not timed")
                    continue
                make = (lambda: DQNStrategy(settings, model_path=model)) if name == "dqn" else \
                    (lambda n=name: get_strategy(n, quiet))
                runs = [engine_backtest(settings, make(), frame, start=1000) for _ in range(repeat + 1)][1:]
                best = max(r.candles_per_second for r in runs)
                target = "20,000" if name == "analyst" else "50,000"
                lines.append(f"  {name:<7} {start} .. {end}: {runs[0].candles:>6} candles, {len(runs[0].trades):>4} trades, "
                             f"{best:>9,.0f} candles/s (target {target})")
                if name == "dqn":   # the agent's default path, for comparison: the same trades?
                    fast = [run_backtest(settings, make(), frame, path="fast", start=1000) for _ in range(repeat)]
                    same = [(t.side, t.entry_ms, t.exit_ms) for t in fast[0].trades] == \
                        [(t.side, t.entry_ms, t.exit_ms) for t in runs[0].trades]
                    lines.append(f"  {'':<7} the agent's fast path (--path auto): {len(fast[0].trades):>4} trades "
                                 f"({'the same' if same else 'NOT the same'}), "
                                 f"{max(r.candles_per_second for r in fast):,.0f} candles/s")
    finally:
        logging.disable(logging.NOTSET)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each tool; the best counts (default 5)")
    ap.add_argument("--dqn-candles", type=int, default=3000, help="candles for the engine-path timings (default 3000)")
    ap.add_argument("--sizes", default="1,4,16", help="vectorbt comparison: multiples of the seed candles (default 1,4,16)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold (fresh process) timings")
    ap.add_argument("--cold-run", choices=("ours", "vectorbt"), help=argparse.SUPPRESS)
    ap.add_argument("--analyst-only", type=int, metavar="CANDLES", default=0,
                    help="only time the analyst: engine path vs backtesting.py over CANDLES hourly candles")
    args = ap.parse_args()
    if args.analyst_only:
        print(f"machine: {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f}; command: .venv/bin/python "
              f"bench/backtest.py --analyst-only {args.analyst_only}")
        print("\n".join(analyst_speed(args.analyst_only)))
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    if args.cold_run:
        cold_run(args.cold_run, sizes[0])
        return 0
    settings = load_settings(None, environ={}, SIMULATION_ORDER_DELAY=0.0)
    frame = load_seed("BTCUSDT", "60")
    n = len(frame)
    print(f"data: {n} real BTC hourly candles (Coinbase BTC-USD) "
          f"{pd.Timestamp(frame.index[0], unit='ms')} .. {pd.Timestamp(frame.index[-1], unit='ms')}")
    print(f"machine: {os.cpu_count()} CPU(s); command: .venv/bin/python bench/backtest.py --repeat {args.repeat} "
          f"--sizes {args.sizes}" + (" --no-cold" if args.no_cold else ""))
    same_as_vectorbt = vectorbt_table(settings, sizes, args.repeat, not args.no_cold)
    # backtesting.py's last candle only calls next(); finalize_trades then closes at the close of
    # the candle before it. Ours closes at the last close, so it gets the frame without that
    # final candle: both then end on the same price.
    o = min((ours(frame.iloc[:-1], settings) for _ in range(args.repeat)), key=lambda r: r[0])
    p = min((peer(frame) for _ in range(args.repeat)), key=lambda r: r[0])
    print(f"{'':18}{'seconds':>10}{'candles/s':>14}{'trades':>8}{'return %':>12}")
    print(f"{'ours (fast path)':18}{o[0]:>10.3f}{(n - 1) / o[0]:>14,.0f}{o[1]:>8}{o[2]:>12.2f}")
    print(f"{'backtesting.py':18}{p[0]:>10.3f}{n / p[0]:>14,.0f}{p[1]:>8}{p[2]:>12.2f}")
    ratio = ((n - 1) / o[0]) / (n / p[0])
    agree_trades = abs(o[1] - p[1]) <= 1
    agree_ret = abs(o[2] - p[2]) <= 0.5
    print(f"speed ratio (ours / backtesting.py candles/s): {ratio:.1f}x (target >= 2x)")
    print(f"agreement: trades {o[1]} vs {p[1]} ({'ok' if agree_trades else 'MISMATCH'}), "
          f"return {o[2]:.2f} % vs {p[2]:.2f} % (diff {abs(o[2] - p[2]):.3f} points, "
          f"{'ok' if agree_ret else 'MISMATCH'})")
    print(engine_speed(frame, settings, args.dqn_candles))
    for line in dqn_speed(frame, settings, args.dqn_candles):
        print(line)
    for line in engine_path_table(settings, args.repeat):
        print(line)
    for line in analyst_speed(8000):
        print(line)
    return 0 if agree_trades and agree_ret and same_as_vectorbt else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
