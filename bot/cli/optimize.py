"""Tune a strategy's parameters: grid, random or genetic search, in parallel, resumable.

The space file (YAML, see examples/space_sma.yaml) names the strategy, the data span, the
parameters and their ranges. Each parameter set is backtested on consecutive folds of the
search span and scored by the mean of their Sharpe ratios; the last part of the span (the
holdout) is never searched and judges the winner. The search checkpoints after every
generation / batch: run the same command again after an interruption and it resumes.

--walk-forward K adds a walk-forward optimisation over the whole span: K searches on growing
windows, each winner traded on the next block it never saw; the chained blocks are the
out-of-sample record of tuning itself.

--backend ray runs each trial as a task on Ray (pip install -r requirements-ray.txt): with no
--ray-address Ray starts on this machine (--jobs CPUs); `--ray-address auto` joins the cluster
started here with `ray start`, `--ray-address ray://HOST:10001` a remote one. A trial whose worker
or node is lost is retried; the result is the same as on the local pool, and a run killed on one
backend resumes on either.

Output (in --out): results.csv (every trial, best first), best_params.json (load it with
`python -m bot backtest --params ...`), checkpoint.pkl, summary.json.

Examples:
  python -m bot optimize --space examples/space_sma.yaml --method ga --generations 20 --population 50 --jobs 2
  python -m bot optimize --space examples/space_sma.yaml --method ga --generations 8 --population 20 --walk-forward 3
  python -m bot optimize --space examples/space_sma.yaml --backend ray --ray-address ray://head:10001
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from bot.cli._data import add_file_arguments, read_data_file
from bot.research.backend import BACKENDS

COMMAND = "optimize"
HELP = "search strategy parameters (grid / random / DEAP genetic), parallel, resumable, walk-forward scored"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="search space YAML (e.g. examples/space_sma.yaml)")
    p.add_argument("--method", choices=("ga", "grid", "random"), default="ga", help="search method (default: ga)")
    p.add_argument("--generations", type=int, default=20, help="GA generations (default: 20)")
    p.add_argument("--population", type=int, default=50, help="GA population (default: 50)")
    p.add_argument("--samples", type=int, default=200, help="random-search trials (default: 200)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes of the local pool, or CPUs of a Ray started here (default: OPTIMIZER_JOBS)")
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where trials run: local (a process pool, default) or ray (tasks on a Ray cluster)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --backend ray: auto (the cluster started here with `ray start`), HOST:PORT or "
                        "ray://HOST:10001; default: start Ray on this machine")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: SEED)")
    p.add_argument("--data", default=None, help="an OHLCV .csv or .parquet file instead of the space's symbol")
    p.add_argument("--out", default=None, help="output folder (default: <data dir>/optimize/<space name>-<method>)")
    add_file_arguments(p, with_data=False)
    p.add_argument("--fresh", action="store_true", help="ignore (delete) an existing checkpoint and start over")
    p.add_argument("--top", type=int, default=10, help="rows of the results table to print (default: 10)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after N generations / batches in total (resume later with the same command)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--walk-forward", type=int, default=0, metavar="K",
                   help="also run a walk-forward optimisation with K splits over the whole span: K searches on "
                        "growing windows, each winner traded on the next unseen block (default: off)")


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.research.backend import make_backend

    logging.getLogger("bot").setLevel(logging.WARNING)
    jobs = args.jobs or settings.OPTIMIZER_JOBS
    backend = make_backend(args.backend, workers=jobs, address=args.ray_address)   # ray missing: one line
    try:
        _ = backend.workers            # Ray: start or join it now, so a bad address fails before any work
        return _run(args, settings, backend, jobs)
    finally:
        backend.close()


def _run(args: argparse.Namespace, settings: Any, backend: Any, jobs: int) -> int:
    import json
    from collections import Counter

    from bot.atomic import atomic_write_bytes
    from bot.cli.backtest import load_frame
    from bot.research.objective import FoldObjective, holdout_report, split_holdout
    from bot.research.optimizer import ParameterOptimizer
    from bot.research.space import finite_only, load_space, save_best_params

    space = load_space(args.space)
    interval = space.interval
    data_file = args.data or space.data
    data = read_data_file(str(data_file), args, symbol=space.symbol, interval=interval) if data_file else None
    frame, first = load_frame(settings, space.symbol, interval, data=data, start=space.start, end=space.end)
    search, holdout = split_holdout(frame.iloc[first:], space.holdout)
    objective = FoldObjective(settings, space.strategy, search, folds=space.folds, symbol=space.symbol,
                              interval=interval, fixed=space.fixed, min_trades=space.min_trades)
    out = Path(args.out) if args.out else Path(settings.data_dir) / "optimize" / f"{Path(args.space).stem}-{args.method}"
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pkl"
    if args.fresh:
        ckpt.unlink(missing_ok=True)
    opt = ParameterOptimizer(space.params, objective, method=args.method, jobs=jobs,
                             seed=settings.SEED if args.seed is None else args.seed, checkpoint=ckpt,
                             progress=not args.no_progress, samples=args.samples, population=args.population,
                             generations=args.generations, backend=backend)
    resumed = ckpt.exists()
    where = f"{backend.workers} worker(s)" if args.backend == "local" else \
        f"Ray at {args.ray_address or 'this machine'}, {backend.workers} CPU(s)"
    print(f"{space.strategy} on {space.symbol}/{interval}: {len(search)} candles searched in {space.folds} folds, "
          f"{len(holdout)} held out; {args.method}, up to {opt.planned_evaluations()} backtests, {where}"
          f"{' (resuming)' if resumed else ''}")
    result = opt.run(stop_after=args.stop_after)
    result.to_csv(out / "results.csv")
    print(result.table(args.top))
    if not result.completed:
        print(f"stopped after {args.stop_after} generation(s)/batch(es); run the same command to resume ({ckpt})")
        return 0
    best = result.best
    judged = holdout_report(settings, space.strategy, best.params, search, holdout, n_trials=result.n_trials,
                            sharpe_variance=result.sharpe_variance(), symbol=space.symbol, interval=interval,
                            fixed=space.fixed)
    params = {**space.fixed, **best.params}
    save_best_params(out / "best_params.json", strategy=space.strategy, params=params, score=best.score,
                     n_trials=result.n_trials, deflated_sharpe=judged["deflated_sharpe"],
                     holdout=judged.get("holdout"), symbol=space.symbol, interval=interval)
    summary = {"method": args.method, "evaluations": result.evaluations, "generations": result.generations,
               "best": {"params": params, "score": best.score, "info": best.info}, **judged,
               "history": list(result.history),
               "backend": {"name": args.backend, "address": args.ray_address,
                           "trials_per_node": dict(Counter(t.node for t in result.trials))}}
    atomic_write_bytes(out / "summary.json", json.dumps(finite_only(summary), indent=2, default=str).encode())
    ins = judged["in_sample"]
    print(f"winner {params}: fold score {best.score:.3f}; search span Sharpe {ins['sharpe']:.2f}, "
          f"return {ins['return_pct']:+.2f} %, {ins['trades']} trades")
    print(f"deflated Sharpe ratio {judged['deflated_sharpe']:.3f} (probability the winner beats the best of "
          f"{result.n_trials} skill-less trials)")
    h = judged.get("holdout")
    if h:
        print(f"holdout (never searched, {h['candles']} candles): return {h['return_pct']:+.2f} % vs buy-and-hold "
              f"{h['buy_hold_return_pct']:+.2f} %, Sharpe {h['sharpe']:.2f} vs {h['buy_hold_sharpe']:.2f}, "
              f"{h['trades']} trades, max drawdown {h['max_drawdown_pct']:.2f} %")
    if args.walk_forward:
        summary["walk_forward"] = _walk_forward(args, settings, space, frame.iloc[first:], out, jobs, backend)
        atomic_write_bytes(out / "summary.json", json.dumps(finite_only(summary), indent=2, default=str).encode())
    print(f"files: {out / 'results.csv'}, {out / 'best_params.json'}, {out / 'summary.json'}")
    return 0


def _walk_forward(args: argparse.Namespace, settings: Any, space: Any, frame: Any, out: Path, jobs: int,
                  backend: Any) -> dict:
    from bot.research.objective import walk_forward_search
    from bot.research.optimizer import ParameterOptimizer
    from bot.types import ms_to_iso

    def make(objective: Any, k: int) -> ParameterOptimizer:
        ckpt = out / f"walk_forward_{k + 1}.pkl"   # each split resumes on its own
        if args.fresh:
            ckpt.unlink(missing_ok=True)
        return ParameterOptimizer(space.params, objective, method=args.method, jobs=jobs,
                                  seed=(settings.SEED if args.seed is None else args.seed) + k, checkpoint=ckpt,
                                  progress=not args.no_progress, samples=args.samples,
                                  population=args.population, generations=args.generations, backend=backend)

    print(f"walk-forward: {args.walk_forward} searches on growing windows, each winner traded on the next block")
    wf = walk_forward_search(settings, space.strategy, frame, make, splits=args.walk_forward, folds=space.folds,
                             symbol=space.symbol, interval=space.interval, fixed=space.fixed,
                             min_trades=space.min_trades)
    for r in wf["splits"]:
        print(f"  split {r['split']}: searched {r['train_candles']} candles -> {r['params']}; traded "
              f"{r['test_candles']} unseen candles from {ms_to_iso(r['test_start_ms'])}: "
              f"{r['test_return_pct']:+.2f} % (buy-and-hold {r['buy_hold_return_pct']:+.2f} %), "
              f"Sharpe {r['test_sharpe']:.2f}, {r['test_trades']} trades")
    o = wf["oos"]
    print(f"walk-forward out of sample: {o['return_pct']:+.2f} % vs buy-and-hold {o['buy_hold_return_pct']:+.2f} %, "
          f"Sharpe {o['sharpe']:.2f} vs {o['buy_hold_sharpe']:.2f}, {o['trades']} trades")
    return wf
