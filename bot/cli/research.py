"""The research protocol from the command line: learning designs x seeds x walk-forward folds on
every shipped candle set (or a file), next to buy-and-hold, the SMA cross and the analyst.

Prints one table per data set (mean, spread and worst over seeds), writes research.json,
research.md and research.png under --out, and names the default chosen on validation spans.
With --make-model it instead trains that default on all shipped BTC hourly candles and writes
the checkpoint the bot starts from (historical_data/models/dqn-default.pt; `make model`).

Example:  python -m bot research --seeds 8 --folds 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.cli._data import add_file_arguments, read_data_file

COMMAND = "research"
HELP = "compare agent designs over seeds and walk-forward folds against buy-and-hold, SMA and the analyst"

SEED_SETS = {"btc1h": ("BTCUSDT", "60"), "btcd": ("BTCUSDT", "D"), "ethd": ("ETHUSDT", "D"), "ltcd": ("LTCUSDT", "D")}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sets", default="all",
                   help=f"shipped candle sets: all or a list of {', '.join(SEED_SETS)} (default: all; "
                        "ignored with --data)")
    p.add_argument("--symbol", default=None, help="with --data: the file's symbol (default: read off the file)")
    p.add_argument("--interval", default=None, help="with --data: its interval (default: read off the file)")
    p.add_argument("--variants", default="baseline,long_only,dsr,mtf",
                   help="learning designs to compare (default: baseline,long_only,dsr,mtf; mtf runs on hourly sets)")
    p.add_argument("--ensembles", default="baseline,long_only,dsr",
                   help="variants also judged as rotating 5-seed ensembles of averaged Q-values ('' for none)")
    p.add_argument("--seeds", type=int, default=8, help="seeds per variant, 1..N (default: 8)")
    p.add_argument("--folds", type=int, default=3, help="walk-forward test windows (default: 3)")
    p.add_argument("--train-until", default="2018-12-31", metavar="YYYY-MM-DD",
                   help="last day before the first validation + test span (default: 2018-12-31)")
    p.add_argument("--steps", type=int, default=None,
                   help="env steps of training before fold 1 (default: 150000 hourly, 30000 daily)")
    p.add_argument("--steps-per-fold", type=int, default=None, help="further steps before each later fold (default: --steps / 4)")
    p.add_argument("--envs", type=int, default=64, help="parallel training episodes (default: 64)")
    p.add_argument("--evals", type=int, default=10, help="validation checks per fold for early stopping (default: 10)")
    p.add_argument("--no-pool", action="store_true", help="daily sets train on their own candles only "
                   "(default: on the other shipped daily sets' candles too, cut at the same time)")
    p.add_argument("--no-analyst", action="store_true", help="skip the analyst baseline (hourly sets)")
    p.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")
    p.add_argument("--learner", choices=("numpy", "autograd"), default="numpy",
                   help="gradient step: numpy (the fast path, tested equal to autograd) or plain torch autograd "
                        "(default: numpy)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a DQN setting for every variant, e.g. --option min_hold=12 (repeatable)")
    p.add_argument("--out", default="reports/research", help="folder for JSON, tables and PNG (default: reports/research)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--merge-into", default=None, metavar="RESEARCH_JSON",
                   help="also add this run's designs to an earlier record (same seeds, folds and splits; a design "
                        "in both is replaced), choose the default again on the merged validation spans and rewrite "
                        "that record's JSON and tables (its PNG is left as it is)")
    p.add_argument("--make-model", action="store_true",
                   help="train the default named in --record on all shipped BTC hourly candles and save it to --model")
    p.add_argument("--record", default="docs/research/research.json",
                   help="with --make-model: the research JSON whose default and record to use")
    p.add_argument("--model", default="historical_data/models/dqn-default.pt",
                   help="with --make-model: where the checkpoint is written")
    add_file_arguments(p)


def _options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--option {item!r} is not KEY=VALUE")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _datasets(args: argparse.Namespace, settings: Any) -> list[Any]:
    from bot.market.seed import load_seed
    from bot.research.protocol import DataSet

    if args.data:
        from bot.cli.backtest import symbol_of_file
        cf = read_data_file(args.data, args, symbol=args.symbol and args.symbol.upper(), interval=args.interval)
        sym = (args.symbol or cf.symbol or symbol_of_file(args.data)).upper()
        return [DataSet(f"{sym} {cf.interval} ({Path(args.data).name})", sym, str(cf.interval), cf.frame,
                        args.train_until)]
    names = list(SEED_SETS) if args.sets.strip().lower() == "all" else [s.strip().lower() for s in args.sets.split(",")]
    bad = [n for n in names if n not in SEED_SETS]
    if bad:
        raise ValueError(f"unknown set(s) {bad}; shipped: {', '.join(SEED_SETS)}")
    frames = {n: load_seed(*SEED_SETS[n]) for n in SEED_SETS}
    out = []
    for n in names:
        sym, interval = SEED_SETS[n]
        pool = () if args.no_pool or interval == "60" else tuple(
            frames[m] for m in SEED_SETS if m != n and SEED_SETS[m][1] == interval)
        out.append(DataSet(f"{sym} {'1h' if interval == '60' else 'daily'}", sym, interval, frames[n],
                           args.train_until, pool))
    return out


def run(args: argparse.Namespace, settings: Any) -> int:
    from config import PROJECT_ROOT

    if args.make_model:
        from bot.research.default_model import make_default_model
        record = Path(args.record)
        model = Path(args.model)
        path = make_default_model(settings, record if record.is_absolute() else PROJECT_ROOT / record,
                                  model if model.is_absolute() else PROJECT_ROOT / model, progress=True)
        print(f"checkpoint: {path}")
        return 0
    from bot.research.study import run_research

    try:
        opts = {"learner": args.learner, **_options(args.option)}
        from bot.agent.self_learning import DQNConfig
        DQNConfig().replace(**opts)      # an unknown or bad setting is refused before any work
        datasets = _datasets(args, settings)
    except ValueError as exc:
        print(exc)
        return 2
    if args.seeds < 1 or args.folds < 1:
        print("--seeds and --folds must be at least 1")
        return 2
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    ensembles = [v.strip() for v in args.ensembles.split(",") if v.strip()]

    def steps(ds: Any) -> tuple[int, int]:
        first = args.steps if args.steps is not None else (150_000 if ds.hourly else 30_000)
        return first, args.steps_per_fold if args.steps_per_fold is not None else first // 4

    for ds in datasets:
        s1, s2 = steps(ds)
        print(f"{ds.name}: {len(ds.frame)} candles" + (f" (+ {len(ds.pool)} pooled sets)" if ds.pool else "")
              + f"; {args.folds} folds after {ds.train_until}; {s1} + {s2}/fold env steps")
    print(f"variants {', '.join(variants)}; seeds 1..{args.seeds}; {args.workers} worker process(es)")
    try:
        report = run_research(datasets, settings=settings, variants=variants, seeds=list(range(1, args.seeds + 1)),
                              folds=args.folds, steps=steps, ensembles=ensembles, n_envs=args.envs,
                              evals_per_fold=args.evals, workers=args.workers, with_analyst=not args.no_analyst,
                              config=opts)
    except ValueError as exc:
        print(exc)
        return 2
    print()
    print(report.tables())
    out = Path(args.out)
    out = out if out.is_absolute() else PROJECT_ROOT / out
    for kind, path in report.write(out, plot=not args.no_plot).items():
        print(f"{kind}: {path}")
    if args.merge_into:
        return _merge(report, Path(args.merge_into))
    return 0


def _merge(report: Any, target: Path) -> int:
    import sys

    from bot.atomic import atomic_write_text
    from bot.research.protocol_report import _plain, from_json, merge_records
    from bot.research.walk_forward import _finite
    from config import PROJECT_ROOT

    target = target if target.is_absolute() else PROJECT_ROOT / target
    if not target.is_file():
        print(f"--merge-into {target}: no research record there")
        return 2
    new = json.loads(json.dumps(_finite(report.to_json()), default=_plain))
    command = "python -m bot " + " ".join(sys.argv[1:])
    try:
        merged = merge_records(json.loads(target.read_text()), new, command)
    except ValueError as exc:
        print(f"--merge-into {target}: {exc}")
        return 2
    atomic_write_text(target, json.dumps(merged, indent=1))
    rep = from_json(merged)
    atomic_write_text(target.with_suffix(".md"), rep.tables() + "\n")
    print(f"merged into {target} (default now {merged['default']})")
    return 0
