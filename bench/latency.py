"""Latency of the trading engine: from a candle close to the order handed to the exchange.

N active pairs close a candle at the same moment and the engine takes the batch as its loop does
(`CandleStep.process_batch`: every pair's candle into the exchange and the indicators, the
account read once, the strategy deciding for all pairs at once -- the DQN agent in one forward
pass -- then review -> risk -> executor -> journal intent -> exchange pair by pair), so the
latency of pair k includes the work for the whole batch and for the pairs before it. We time
from the moment the batch arrives to each `create_order` call on the paper exchange (no
network, no simulated order delay). Target: p99 < 20 ms at 50 pairs, on 2 cores.

Pairs from the shipped real candles (historical_data/seed/): one pair each for the daily BTC,
ETH and LTC series, and the rest from the Coinbase BTC-USD hourly series, pair i starting
`stride` hours after pair i-1 (stride = (20,111 - span) / (pairs - 4), e.g. 202 h at 100
pairs: each pair replays a different stretch of the real market; at 100 pairs the stretches
overlap in history but never show the same candle at the same moment). Every pair replays on
the same hourly clock so all close together, as live pairs do; prices stay real, only the
symbol names are made up. Each configuration is measured in the same run:

- sma + in-memory journal: the engine's own cost,
- sma + SQLite journal (WAL, synchronous=FULL): what paper/live pay to journal the intent
  before sending (an fsync per transaction, so this figure is the disk's),
- dqn + memory journal: the agent's state and forward pass, the batch decided together. It
  learns online (as in paper trading) so that it explores and trades; its gradient steps run
  after the batch's orders and are not in the figure. The state's market features are carried
  forward candle by candle (`bot.analysis.feature_stream.FeatureStream`, seeded when the pair is added),
- dqn, one by one: the same, each pair's candle through `process_candle` in turn (the account
  read and the network run once per pair): the peer of the batch, as a ratio,
- dqn, state recomputed (first pair count only): one by one with every state's features
  computed in full over the last 2,000 candles (`DQNStrategy.incremental = False`): the peer
  the feature stream is measured against. --no-peer skips both peers.

Run: .venv/bin/python bench/latency.py [--pairs 20,50,100] [--candles 200] [--no-peer]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

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

WARMUP = 400    # warm-up history per pair: the agent's state needs 200 candles; the daily ETH series has 788
DAILY = (("BTCUSDT", "D"), ("ETHUSDT", "D"), ("LTCUSDT", "D"))


def pair_frames(pairs: int, span: int) -> dict[str, pd.DataFrame]:
    """`pairs` frames of `span` real candles on one hourly clock (see the module docstring)."""
    btc = load_seed("BTCUSDT", "60")
    clock = btc.index[:span]
    sources = [(f"{sym[:3]}D{i}USDT", load_seed(sym, iv)) for i, (sym, iv) in enumerate(DAILY[:max(pairs - 1, 0)])]
    hourly = pairs - len(sources)
    stride = (len(btc) - span) // max(hourly - 1, 1)
    if stride < 1:
        raise SystemExit(f"{pairs} pairs x {span} candles do not fit the {len(btc)} hourly candles")
    sources += [(f"BTC{i:03d}USDT", btc.iloc[i * stride:]) for i in range(hourly)]
    frames = {}
    for name, frame in sources:
        if len(frame) < span:
            raise SystemExit(f"{name}: {len(frame)} candles, fewer than the {span} a pair replays; use fewer --candles")
        frames[name] = frame.iloc[:span].set_axis(clock, axis=0)   # all pairs close together
    return frames


class TimedSim(SimExchange):
    """The paper exchange, noting when each order reaches it."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.order_times: list[float] = []

    def create_order(self, *a, **kw):
        self.order_times.append((time.perf_counter(), time.thread_time()))
        return super().create_order(*a, **kw)


def measure(name: str, strategy: str, journal_kind: str, pairs: int, candles: int, tmp: Path, *,
            training: bool = False, incremental: bool = True, batched: bool = True) -> tuple[np.ndarray, np.ndarray]:
    frames = pair_frames(pairs, WARMUP + candles)
    s = load_settings(None, environ={}, HISTORICAL_DATA_PATH=str(tmp / name), LOG_FILE=str(tmp / "bench.log"),
                      SIMULATION_ORDER_DELAY=0.0, CANDLE_INTERVAL="60", MAX_OPEN_POSITIONS=pairs,
                      MAX_TOTAL_RISK=1.0, TRAINING_ENABLED=training, STRATEGY=strategy,
                      FALLBACK_SYMBOLS=",".join(frames))
    clock = next(iter(frames.values())).index
    market = ReplayMarket(s, frames=frames, pace=0, start_ms=int(clock[WARMUP]))
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
    gc.freeze()                             # as Session.run does before its loop
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
        if batched:
            step.process_batch(batch)       # what the engine loop calls
        else:
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
    ap.add_argument("--pairs", default="20,50,100", help="pair counts, comma-separated (default 20,50,100)")
    ap.add_argument("--candles", type=int, default=200, help="candle closes (batches) per configuration (default 200)")
    ap.add_argument("--no-peer", action="store_true", help="skip the 'one by one' and 'state recomputed' peers")
    args = ap.parse_args()
    counts = [int(x) for x in args.pairs.split(",")]
    logging.disable(logging.WARNING)     # the engine logs every trade; not what we time
    print(f"command: .venv/bin/python bench/latency.py --pairs {args.pairs} --candles {args.candles}"
          + (" --no-peer" if args.no_peer else ""))
    print(f"{args.candles} candle closes per configuration; latency = batch arrival -> create_order (ms); "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("wall = elapsed time; cpu = the engine thread's own CPU time over the same span: it leaves out")
    print("time spent waiting for a CPU (other processes) and for the disk (the journal's fsync)")
    print(f"{'pairs':>5} {'configuration':<24}{'orders':>7}{'wall p50':>10}{'p99':>8}{'max':>8}{'cpu p50':>10}{'p99':>8}"
          f"{'max':>8}   target p99 < 20 ms")
    for k, pairs in enumerate(counts):
        configs = [("sma + memory journal", "sma", "memory", False, True, True),
                   ("sma + SQLite journal", "sma", "sqlite", False, True, True),
                   ("dqn + memory journal", "dqn", "memory", True, True, True)]
        if not args.no_peer:
            configs.append(("dqn, one by one", "dqn", "memory", True, True, False))
            if k == 0:
                configs.append(("dqn, state recomputed", "dqn", "memory", True, False, False))
        p99: dict[str, tuple[float, float]] = {}
        with tempfile.TemporaryDirectory() as d:
            for name, strat, jk, train, incremental, batched in configs:
                t = time.perf_counter()
                lat, cpu = measure(name.replace(" ", "_").replace("+", "").replace(",", ""), strat, jk, pairs,
                                   args.candles, Path(d), training=train, incremental=incremental, batched=batched)
                if not len(lat):
                    print(f"{pairs:>5} {name:<24}{0:>7}   (no orders)")
                    continue
                w50, w99 = np.percentile(lat, [50, 99])
                c50, c99 = np.percentile(cpu, [50, 99])
                p99[name] = (w99, c99)
                print(f"{pairs:>5} {name:<24}{len(lat):>7}{w50:>10.2f}{w99:>8.2f}{lat.max():>8.2f}{c50:>10.2f}"
                      f"{c99:>8.2f}{cpu.max():>8.2f}   wall {'yes' if w99 < 20 else 'NO'}, cpu "
                      f"{'yes' if c99 < 20 else 'NO'}  ({time.perf_counter() - t:.0f} s)", flush=True)
        for peer in ("dqn, one by one", "dqn, state recomputed"):
            if peer in p99 and "dqn + memory journal" in p99:
                (w_new, c_new), (w_old, c_old) = p99["dqn + memory journal"], p99[peer]
                print(f"{pairs:>5} dqn p99, batched vs {peer.split(', ')[1]}: wall {w_new:.2f} vs {w_old:.2f} ms "
                      f"({w_old / w_new:.1f}x), cpu {c_new:.2f} vs {c_old:.2f} ms ({c_old / c_new:.1f}x)")
    with tempfile.TemporaryDirectory() as d:
        streamed, full, forward = state_cost(Path(d))
    print(f"DQNStrategy.state_for per candle (500 consecutive 2,000-candle frames): streamed {streamed:.0f} us, "
          f"recomputed {full:.0f} us ({full / streamed:.0f}x); one forward pass (batch of 1) {forward:.0f} us")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
