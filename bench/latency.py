"""Latency of the trading engine: from a candle close to the order handed to the exchange.

20 active pairs close a candle at the same moment; the engine processes them one after the
other (data -> indicators -> strategy -> risk -> executor -> journal intent -> exchange), so the
latency of pair k includes the work for the pairs before it in the batch. We time from the moment
the batch arrives to each `create_order` call on the paper exchange (no network, no simulated
order delay). Target: p99 < 20 ms.

The 20 pairs are 20 consecutive slices of the real Coinbase BTC-USD hourly seed candles, each
replayed as its own symbol (the project ships one hourly series; prices stay real, only the
names are made up). Each configuration is measured in the same run:

- sma + in-memory journal: the engine's own cost,
- sma + SQLite journal (WAL, synchronous=FULL): what paper/live pay to journal the intent
  before sending (an fsync per transaction, so this figure is the disk's),
- dqn + in-memory journal: the agent's state and forward pass. It learns online (as in paper
  trading) so that it explores and trades; its gradient steps run after the batch's orders and
  are not in the figure. An untrained agent acting greedily would hold one position and send
  no orders to time. The state's market features are carried forward candle by candle
  (`bot.analysis.feature_stream.FeatureStream`, seeded when the pair is added),
- dqn, state recomputed: the same, with every state's features computed in full over the last
  2,000 candles (`DQNStrategy.incremental = False`, as before the stream): the peer the stream
  is measured against, in the same run, as a ratio (skip it with --no-peer).

Run: .venv/bin/python bench/latency.py [--pairs 20] [--candles 300] [--no-peer]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from bot.engine.trading_engine import TradingEngine  # noqa: E402
from bot.exchange.sim import SimExchange  # noqa: E402
from bot.journal.base import MemoryJournal  # noqa: E402
from bot.journal.store import Journal  # noqa: E402
from bot.market.feeds import ReplayMarket  # noqa: E402
from bot.market.seed import load_seed  # noqa: E402
from config import load_settings  # noqa: E402

WARMUP = 700    # warm-up history per pair (20 slices of 1,000 fit in the 20,111 hourly candles)


class TimedSim(SimExchange):
    """The paper exchange, noting when each order reaches it."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.order_times: list[float] = []

    def create_order(self, *a, **kw):
        self.order_times.append((time.perf_counter(), time.thread_time()))
        return super().create_order(*a, **kw)


def measure(name: str, strategy: str, journal_kind: str, pairs: int, candles: int, tmp: Path, *,
            training: bool = False, incremental: bool = True) -> tuple[np.ndarray, np.ndarray]:
    s = load_settings(None, environ={}, HISTORICAL_DATA_PATH=str(tmp / name), LOG_FILE=str(tmp / "bench.log"),
                      SIMULATION_ORDER_DELAY=0.0, CANDLE_INTERVAL="60", MAX_OPEN_POSITIONS=pairs,
                      MAX_TOTAL_RISK=1.0, TRAINING_ENABLED=training, STRATEGY=strategy,
                      FALLBACK_SYMBOLS=",".join(f"BTC{i:02d}USDT" for i in range(pairs)))
    btc = load_seed("BTCUSDT", "60")
    span = WARMUP + candles
    if span * pairs > len(btc):
        raise SystemExit(f"{pairs} pairs x {span} candles need more than the {len(btc)} real hourly candles; "
                         f"use fewer --pairs or --candles")
    frames = {}
    for i in range(pairs):
        part = btc.iloc[i * span:(i + 1) * span]
        # Every slice replays on the same clock so all pairs close together, like live pairs do.
        part = part.set_axis(btc.index[:span], axis=0)
        frames[f"BTC{i:02d}USDT"] = part
    market = ReplayMarket(s, frames=frames, pace=0, start_ms=int(btc.index[WARMUP]))
    journal = MemoryJournal() if journal_kind == "memory" else Journal(tmp / name / "state.db")
    sim = TimedSim(s)
    engine = TradingEngine(s, market=market, exchange=sim, journal=journal)
    engine.replay = True
    engine.prepare("PAPER")
    step = engine.step
    if hasattr(engine.c.strategy, "incremental"):
        engine.c.strategy.incremental = incremental
    symbols = list(frames)
    for sym in symbols:
        step.new_pair(sym)
    lat: list[float] = []
    cpu: list[float] = []
    bar = tqdm(total=candles, desc=f"{name:<22}", unit="batch", leave=False)
    while not market.exhausted:
        batch = market.next_candles(symbols, 0)
        if not batch:
            continue
        sim.order_times.clear()
        step.defer_learning = True          # as the engine loop does: learn after the batch's orders
        t0, c0 = time.perf_counter(), time.thread_time()
        for c in batch:
            step.process_candle(c)
        lat.extend((t - t0) * 1000 for t, _ in sim.order_times)
        cpu.extend((c - c0) * 1000 for _, c in sim.order_times)
        step.flush_learning()
        bar.update(1)
    bar.close()
    if hasattr(journal, "close"):
        journal.close()
    return np.array(lat), np.array(cpu)


def state_cost(tmp: Path, candles: int = 500) -> tuple[float, float, float]:
    """Microseconds per call of `DQNStrategy.state_for` on consecutive 2,000-candle frames of the
    real hourly seed (as the engine hands them), streamed and recomputed, and of one forward pass."""
    from bot.agent.self_learning import SelfLearningBot
    from bot.strategies.base import StrategyContext
    from bot.strategies.dqn import DQNStrategy

    s = load_settings(None, environ={}, HISTORICAL_DATA_PATH=str(tmp / "state"), LOG_FILE=str(tmp / "bench.log"))
    agent = SelfLearningBot(s)
    agent.training = False
    strat = DQNStrategy(s, agent=agent)
    btc = load_seed("BTCUSDT", "60")
    contexts = [StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(btc.index[i]),
                                price=float(btc["close"].iat[i - 1]), candles={"60": btc.iloc[i - 2000:i]})
                for i in range(3000, 3000 + candles)]
    out = []
    for incremental in (True, False):
        strat.incremental = incremental
        strat._streams.clear()
        strat.state_for(contexts[0])
        t = time.perf_counter()
        for ctx in contexts[1:]:
            state = strat.state_for(ctx)
        out.append((time.perf_counter() - t) / (len(contexts) - 1) * 1e6)
    t = time.perf_counter()
    for _ in range(1000):
        agent.q_values(state)
    return out[0], out[1], (time.perf_counter() - t) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--candles", type=int, default=300, help="candle closes (batches) per configuration (max 300 "
                                                             "with 20 pairs)")
    ap.add_argument("--no-peer", action="store_true", help="skip the 'dqn, state recomputed' configuration")
    args = ap.parse_args()
    logging.disable(logging.WARNING)     # the engine logs every trade; not what we time
    print(f"command: .venv/bin/python bench/latency.py --pairs {args.pairs} --candles {args.candles}"
          + (" --no-peer" if args.no_peer else ""))
    print(f"{args.pairs} pairs, {args.candles} candle closes each; latency = batch arrival -> create_order (ms); "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("wall = elapsed time; cpu = the engine thread's own CPU time over the same span: it leaves out")
    print("time spent waiting for a CPU (other processes) and for the disk (the journal's fsync)")
    print(f"{'configuration':<24}{'orders':>7}{'wall p50':>10}{'p99':>8}{'max':>8}{'cpu p50':>10}{'p99':>8}"
          f"{'max':>8}   target p99 < 20 ms")
    configs = [("sma + memory journal", "sma", "memory", False, True),
               ("sma + SQLite journal", "sma", "sqlite", False, True),
               ("dqn + memory journal", "dqn", "memory", True, True)]
    if not args.no_peer:
        configs.append(("dqn, state recomputed", "dqn", "memory", True, False))
    p99: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        for name, strat, jk, train, incremental in configs:
            t = time.perf_counter()
            lat, cpu = measure(name.replace(" ", "_").replace("+", "").replace(",", ""), strat, jk, args.pairs,
                               args.candles, Path(d), training=train, incremental=incremental)
            if not len(lat):
                print(f"{name:<24}{0:>7}   (no orders)")
                continue
            w50, w99 = np.percentile(lat, [50, 99])
            c50, c99 = np.percentile(cpu, [50, 99])
            p99[name] = (w99, c99)
            print(f"{name:<24}{len(lat):>7}{w50:>10.2f}{w99:>8.2f}{lat.max():>8.2f}{c50:>10.2f}{c99:>8.2f}"
                  f"{cpu.max():>8.2f}   wall {'yes' if w99 < 20 else 'NO'}, cpu {'yes' if c99 < 20 else 'NO'}"
                  f"  ({time.perf_counter() - t:.0f} s)")
    if "dqn, state recomputed" in p99 and "dqn + memory journal" in p99:
        (w_new, c_new), (w_old, c_old) = p99["dqn + memory journal"], p99["dqn, state recomputed"]
        print(f"dqn p99, state carried forward vs recomputed: wall {w_new:.2f} vs {w_old:.2f} ms "
              f"({w_old / w_new:.1f}x), cpu {c_new:.2f} vs {c_old:.2f} ms ({c_old / c_new:.1f}x)")
    with tempfile.TemporaryDirectory() as d:
        streamed, full, forward = state_cost(Path(d))
    print(f"DQNStrategy.state_for per candle (500 consecutive 2,000-candle frames): streamed {streamed:.0f} us, "
          f"recomputed {full:.0f} us ({full / streamed:.0f}x); one forward pass (batch of 1) {forward:.0f} us")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
