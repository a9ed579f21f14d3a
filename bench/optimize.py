"""Optimiser speed: a DEAP GA, population 50 x 20 generations, over the SMA/ATR-stop strategy on
two years of real BTC hourly candles (2017-10-01 .. 2019-10-01), each trial scored by the
4-fold backtest objective, on a process pool. Target: under 3 minutes on 2 cores.

As peer, the same trials timed one by one through backtesting.py's own optimiser would not be
the same objective; instead the script prints how long the same number of objective calls
take in one process, so the pool's speed-up is visible in the same run.

    .venv/bin/python bench/optimize.py [--jobs 2] [--population 50] [--generations 20]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from bot.market.seed import load_seed  # noqa: E402
from bot.research.objective import FoldObjective  # noqa: E402
from bot.research.optimizer import ParameterOptimizer, load_space  # noqa: E402
from config import load_settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--generations", type=int, default=20)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    settings = load_settings(None, environ={})
    space = load_space(ROOT / "examples" / "space_sma.yaml")
    frame = load_seed("BTCUSDT", "60")
    lo, hi = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in ("2017-10-01", "2019-10-01"))
    frame = frame[(frame.index >= lo) & (frame.index < hi)]
    objective = FoldObjective(settings, "sma", frame, folds=4, min_trades=space.min_trades)
    print(f"data: {len(frame)} real BTC hourly candles 2017-10-01 .. 2019-10-01; {os.cpu_count()} CPU(s)")
    print(f"command: .venv/bin/python bench/optimize.py --jobs {args.jobs} --population {args.population} "
          f"--generations {args.generations}")
    opt = ParameterOptimizer(space.params, objective, method="ga", jobs=args.jobs, seed=7, progress=False,
                             population=args.population, generations=args.generations)
    t0 = time.perf_counter()
    res = opt.run()
    dt = time.perf_counter() - t0
    print(f"GA pop {args.population} x {args.generations} generations, {args.jobs} workers: {dt:.1f} s "
          f"({res.evaluations} distinct backtests, {res.evaluations * len(frame) / dt:,.0f} candles/s) "
          f"-> {'under' if dt < 180 else 'OVER'} the 3-minute target")
    sample = [t.params for t in res.trials[:40]]
    t1 = time.perf_counter()
    for p in sample:
        objective(p)
    one = (time.perf_counter() - t1) / len(sample)
    print(f"one process, no pool: {one * 1000:.1f} ms per backtest -> {one * res.evaluations:.1f} s for the same "
          f"{res.evaluations} backtests (pool speed-up {one * res.evaluations / dt:.2f}x)")
    print(f"best: {res.best.params} fold-mean Sharpe {res.best.score:.3f}")
    return 0 if dt < 180 else 1


if __name__ == "__main__":
    raise SystemExit(main())
