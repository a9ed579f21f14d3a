"""Optimiser speed: a DEAP GA, population 50 x 20 generations, over the SMA/ATR-stop strategy on
two years of real BTC hourly candles (2017-10-01 .. 2019-10-01), each trial scored by the
4-fold backtest objective. Target: under 3 minutes on 2 cores with the local pool.

The same GA (same seed, same result) runs on each backend asked for: the local process pool
(`local`, --jobs workers), and Ray started on this machine with 1 and 2 worker CPUs (`ray1`,
`ray2`; needs requirements-ray.txt). For each: wall-clock, candles/s (distinct backtests x
candles / wall), and the overhead per trial: worker-seconds not spent inside the objective
(wall x workers - the trials' own compute time) per distinct trial -- shipping parameters and
results, scheduling, idle workers at the end of a generation. Ray's start-up is timed apart.
As peer, the same backtests in one process with no pool at all, and each backend's wall-clock
as a ratio to the local pool's.

    .venv/bin/python bench/optimize.py [--jobs 2] [--population 50] [--generations 20] [--backends local,ray1,ray2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from bot.market.seed import load_seed  # noqa: E402
from bot.research.backend import Backend, LocalBackend  # noqa: E402
from bot.research.jobs import JobResult  # noqa: E402
from bot.research.objective import FoldObjective  # noqa: E402
from bot.research.optimizer import ParameterOptimizer, load_space  # noqa: E402
from config import load_settings  # noqa: E402


class Timed:
    """A backend that adds up the seconds its jobs spent computing (inside the objective)."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.name, self.compute = inner, inner.name, 0.0

    @property
    def workers(self) -> int:
        return self.inner.workers

    def open(self, fn: Callable[[Any], Any]) -> None:
        self.inner.open(fn)

    def map(self, items: Sequence[Any], seeds: Sequence[int]) -> Iterator[JobResult]:
        for r in self.inner.map(items, seeds):
            self.compute += r.seconds
            yield r

    def done(self) -> None:
        self.inner.done()

    def close(self) -> None:
        self.inner.close()


def make(name: str, jobs: int) -> tuple[Backend, float]:
    t0 = time.perf_counter()
    if name == "local":
        return LocalBackend(jobs), 0.0
    from bot.research.ray_backend import RayBackend
    b = RayBackend(num_cpus=int(name.removeprefix("ray")))
    b.connect()
    return b, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2, help="local pool workers")
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--backends", default="local,ray1,ray2", help="comma-separated: local, ray1, ray2, ...")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    settings = load_settings(None, environ={})
    space = load_space(ROOT / "examples" / "space_sma.yaml")
    frame = load_seed("BTCUSDT", "60")
    lo, hi = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in ("2017-10-01", "2019-10-01"))
    frame = frame[(frame.index >= lo) & (frame.index < hi)]
    objective = FoldObjective(settings, "sma", frame, folds=4, min_trades=space.min_trades)
    print(f"data: {len(frame)} real BTC hourly candles 2017-10-01 .. 2019-10-01; {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"command: .venv/bin/python bench/optimize.py --jobs {args.jobs} --population {args.population} "
          f"--generations {args.generations} --backends {args.backends}")
    runs: dict[str, tuple[float, Any]] = {}
    for name in args.backends.split(","):
        backend, startup = make(name.strip(), args.jobs)
        timed = Timed(backend)
        opt = ParameterOptimizer(space.params, objective, method="ga", jobs=args.jobs, seed=7, progress=False,
                                 population=args.population, generations=args.generations, backend=timed)
        try:
            t0 = time.perf_counter()
            res = opt.run()
            dt = time.perf_counter() - t0
            workers = timed.workers
        finally:
            backend.close()
        runs[name] = (dt, res)
        n = res.evaluations
        overhead = (dt * workers - timed.compute) / n
        ratio = f", {runs['local'][0] / dt:.2f}x the local pool's speed" if "local" in runs and name != "local" else ""
        print(f"{name:>6}: {workers} worker(s), GA pop {args.population} x {args.generations}: {dt:6.1f} s "
              f"({n} distinct backtests, {n * len(frame) / dt:,.0f} candles/s); {timed.compute / n * 1000:.1f} ms "
              f"computing per trial, overhead {overhead * 1000:.1f} ms per trial"
              f"{f'; Ray start-up {startup:.1f} s' if startup else ''}{ratio}; load average {os.getloadavg()[0]:.1f}")
    results = [r for _, r in runs.values()]
    same = all([(t.params, t.score) for t in r.trials] == [(t.params, t.score) for t in results[0].trials]
               for r in results)
    print(f"same result on every backend: {'yes' if same else 'NO'}")
    best = results[0]
    sample = [t.params for t in best.trials[:40]]
    t1 = time.perf_counter()
    for p in sample:
        objective(p)
    one = (time.perf_counter() - t1) / len(sample)
    print(f"one process, no pool: {one * 1000:.1f} ms per backtest -> {one * best.evaluations:.1f} s for the same "
          f"{best.evaluations} backtests")
    print(f"best: {best.best.params} fold-mean Sharpe {best.best.score:.3f}")
    local = runs.get("local")
    return 0 if same and (local is None or local[0] < 180) else 1


if __name__ == "__main__":
    raise SystemExit(main())
