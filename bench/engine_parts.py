"""Where an engine-path candle's time goes: the step's parts timed one by one, per fed candle.

Runs `engine_backtest` over 2018-07-01 .. 2019-10-01 of the hourly BTC seed candles (1,000 warm-up
candles before, all counted) with timers around each part of `CandleStep.process_candle` (taking
the candle in, reading the account, building the context, the decision, acting on it, and the
stretches a strategy keeps its position through: asking it ahead, taking them in) and prints
the best of --repeat runs in microseconds per fed candle, next to the whole run's time. A
do-nothing strategy ("hold", which says nothing ahead) shows the engine's floor candle by
candle. The timers cost ~0.1 us each, so the parts add up to a little less than the whole. The
DQN's feature replay runs as in a fresh process (the update loop: COMPILE_AFTER).

    .venv/bin/python bench/engine_parts.py [--strategies hold,sma,analyst,dqn] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PARTS = ("take", "account", "context", "decide", "act", "coast")


def timed_step(acc: list[int]):
    """`CandleStep.process_candle` and `coast_told` with a timer around each part (the same calls
    in order). "coast": the stretches the strategy keeps its position through (bot/engine/coast.py):
    asking it ahead, then taking them (at once, or one by one)."""
    from time import perf_counter_ns as ns

    from bot.engine.step import CandleStep

    coast_told = CandleStep.coast_told

    def timed_coast_told(self, symbol, first, limit):
        t0 = ns()
        out = coast_told(self, symbol, first, limit)
        acc[5] += ns() - t0
        return out

    def process_candle(self, candle):
        t0 = ns()
        ps = self._take(candle)
        t1 = ns()
        acc[0] += t1 - t0
        if ps is None:
            return
        balance = self._get_balance()
        if self._coasts and self._coasting(ps, candle, balance):
            acc[5] += ns() - t1
            return
        positions = self._positions_of(candle.symbol)
        t2 = ns()
        ready = self._context(ps, candle, balance, positions)
        t3 = ns()
        acc[1] += t2 - t1
        acc[2] += t3 - t2
        if ready is None:
            return
        decision = self.parts.strategy.decide(ready)
        t4 = ns()
        self._finish(ps, ready, decision, balance)
        t5 = ns()
        acc[3] += t4 - t3
        acc[4] += t5 - t4
        if self._holds_ahead is not None and decision.target == ready.position_target and self._known:
            self._start_coast(candle, ready, decision)
            acc[5] += ns() - t5
    return process_candle, timed_coast_told


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", default="hold,sma,analyst,dqn", help="comma-separated (default: all four)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each; the best of each part counts (default 5)")
    args = ap.parse_args()

    from bot.engine import step as step_module
    from bot.market.seed import load_seed
    from bot.research.backtest import engine_backtest
    from bot.strategies import get_strategy
    from bot.strategies.base import FLAT, Decision
    from bot.strategies.dqn import DQNStrategy
    from config import load_settings

    settings = load_settings(None, environ={}, SIMULATION_ORDER_DELAY=0.0,
                             HISTORICAL_DATA_PATH=tempfile.mkdtemp(prefix="bench-parts-"))
    seed = load_seed("BTCUSDT", "60")
    s_ms, e_ms = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in ("2018-07-01", "2019-10-01"))
    first = int(np.searchsorted(np.asarray(seed.index), s_ms))
    frame = seed[seed.index < e_ms].iloc[first - 1000:]
    model = ROOT / "historical_data" / "models" / "dqn-default.pt"
    hold = Decision(FLAT)

    class Hold:
        name = "hold"

        def decide(self, context):
            return hold

    def make(name: str):
        if name == "hold":
            return Hold()
        if name == "dqn":
            return DQNStrategy(settings, model_path=model)
        return get_strategy(name, settings)

    acc = [0] * len(PARTS)
    step_module.CandleStep.process_candle, step_module.CandleStep.coast_told = timed_step(acc)
    logging.disable(logging.WARNING)
    fed = len(frame)
    print(f"engine path, {fed} fed candles (1,000 of warm-up), best of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}; us per fed candle")
    print(f"  {'strategy':<8} " + " ".join(f"{p:>8}" for p in PARTS) + f" {'whole':>8} {'candles/s':>10}")
    for name in args.strategies.split(","):
        if name == "dqn" and not model.exists():
            print(f"  dqn: no checkpoint at {model}")
            continue
        engine_backtest(settings, make(name), frame, start=1000)     # warm: imports, caches
        best = [float("inf")] * (len(PARTS) + 1)
        for _ in range(args.repeat):
            acc[:] = [0] * len(PARTS)
            t = time.perf_counter()
            engine_backtest(settings, make(name), frame, start=1000)
            row = [a / fed / 1000 for a in acc] + [(time.perf_counter() - t) / fed * 1e6]
            best = [min(x, y) for x, y in zip(best, row, strict=True)]
        print(f"  {name:<8} " + " ".join(f"{v:>8.2f}" for v in best) + f" {(fed - 1000) / fed * 1e6 / best[-1]:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
