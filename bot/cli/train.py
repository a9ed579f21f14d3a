"""Train the DQN agent on candles before --train-until and evaluate it, walk-forward, after it.

The span after the date is cut into --folds windows; before each window the agent trains only on
the candles before it, then trades the window greedily. Buy-and-hold and an SMA crossover trade
the same windows with the same fees and fills. Prints a table, writes JSON + PNG under --out,
and saves the final agent as a checkpoint under <HISTORICAL_DATA_PATH>/models/.

Example:  python -m bot train --symbol BTCUSDT --train-until 2018-12-31
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from bot.cli._data import add_file_arguments, read_data_file

COMMAND = "train"
HELP = "train the DQN agent and evaluate it walk-forward against buy-and-hold and an SMA crossover"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", default=None,
                   help="symbol (default: BTCUSDT; with --data, the file's symbol or name)")
    p.add_argument("--interval", default=None,
                   help="candle interval (default: CANDLE_INTERVAL; with --data, read off the file)")
    p.add_argument("--train-until", required=True, metavar="YYYY-MM-DD",
                   help="last day of the first training span; everything after is out of sample")
    p.add_argument("--folds", type=int, default=3, help="walk-forward test windows after the date (default: 3)")
    p.add_argument("--steps", type=int, default=150_000,
                   help="environment steps of training before fold 1 (default: 150000)")
    p.add_argument("--steps-per-fold", type=int, default=None,
                   help="further training steps before each later fold (default: --steps / 4)")
    p.add_argument("--envs", type=int, default=64, help="parallel training episodes (default: 64)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: SEED)")
    p.add_argument("--min-hold", type=int, default=None,
                   help="candles a position is held before it may change (default: 24)")
    p.add_argument("--switch-margin", type=float, default=None,
                   help="Q advantage a new position needs over the current one (hysteresis; default 0.5)")
    p.add_argument("--trade-penalty", type=float, default=None,
                   help="training reward penalty per position change, on top of fees (default: 0.002)")
    p.add_argument("--validation", type=float, default=0.0,
                   help="fraction of the newest training candles held out to pick the best network (default: 0)")
    p.add_argument("--long-only", action="store_true", help="no shorts (as on spot)")
    p.add_argument("--sma", default="20,100", help="fast,slow SMA periods of the baseline (default: 20,100)")
    p.add_argument("--trials", type=int, default=None,
                   help="configurations tried, for the deflated Sharpe (default: counted in models/trials.json)")
    p.add_argument("--out", default="reports", help="folder for the JSON and PNG (default: reports)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--no-save", action="store_true", help="do not save the trained agent")
    add_file_arguments(p)


def run(args: argparse.Namespace, settings: Any) -> int:
    import pandas as pd

    from bot.agent.self_learning import DQNConfig, SelfLearningBot
    from bot.errors import DataError
    from bot.market.data_manager import DataManager
    from bot.research.walk_forward import record_trial, walk_forward
    from bot.types import interval_ms
    from config import PROJECT_ROOT

    if args.data:
        from bot.cli.backtest import symbol_of_file
        cf = read_data_file(args.data, args, symbol=args.symbol and args.symbol.upper(), interval=args.interval)
        args.symbol = args.symbol or cf.symbol or symbol_of_file(args.data)
        interval = cf.interval
    else:
        args.symbol = args.symbol or "BTCUSDT"
        interval = args.interval or settings.CANDLE_INTERVAL
    interval_ms(interval)
    try:
        fast, slow = (int(x) for x in args.sma.split(","))
    except ValueError:
        print(f"--sma {args.sma!r} is not valid; expected two periods like 20,100")
        return 2
    try:
        pd.Timestamp(args.train_until)
    except ValueError:
        print(f"--train-until {args.train_until!r} is not a date; expected YYYY-MM-DD")
        return 2
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["SEED"] = args.seed
    if args.long_only:
        overrides["EXCHANGE_CATEGORY"], overrides["LEVERAGE"] = "spot", 1.0
    if overrides:
        settings = settings.replace(**overrides)
    frame = cf.frame if args.data else DataManager(settings).candles(args.symbol.upper(), interval)
    if len(frame) == 0:
        raise DataError(f"no candles for {args.symbol}/{interval}: run `python -m bot download` first")
    cfg_changes: dict[str, Any] = {"seed": settings.SEED, "n_envs": args.envs}
    if args.min_hold is not None:
        cfg_changes["min_hold"] = args.min_hold
    if args.switch_margin is not None:
        cfg_changes["switch_margin"] = args.switch_margin
    config = DQNConfig().replace(**cfg_changes)
    if args.trade_penalty is not None:
        cfg_changes["train_trade_penalty"] = args.trade_penalty
    steps_per_fold = args.steps_per_fold if args.steps_per_fold is not None else args.steps // 4

    agents: list[SelfLearningBot] = []

    def factory() -> SelfLearningBot:
        agents.append(SelfLearningBot(settings, config=config))
        return agents[-1]

    described = {"reward_trade_penalty": settings.REWARD_TRADE_PENALTY + config.train_trade_penalty}
    trial_key = hashlib.sha256(json.dumps(
        {"config": config.__dict__, "steps": [args.steps, steps_per_fold], "env": described,
         "long_only": args.long_only, "interval": interval,
         **({"validation": args.validation} if args.validation else {})}, sort_keys=True, default=str).encode()).hexdigest()[:12]
    n_trials = args.trials or record_trial(settings.data_dir / "models", args.symbol.upper(), trial_key)
    print(f"{args.symbol.upper()}/{interval}: {len(frame)} candles; training until {args.train_until}, "
          f"{args.folds} walk-forward folds; {args.steps} + {steps_per_fold}/fold env steps; "
          f"configurations tried so far: {n_trials}")
    report = walk_forward(frame, settings=settings, symbol=args.symbol.upper(), interval=interval,
                          train_until=args.train_until, folds=args.folds, agent_factory=factory,
                          steps_first=args.steps, steps_per_fold=steps_per_fold, n_trials=n_trials,
                          sma=(fast, slow), validation=args.validation)
    report.settings["env"] = described
    report.settings["trial_key"] = trial_key
    print()
    print(report.table())
    out = Path(args.out)
    out = out if out.is_absolute() else PROJECT_ROOT / out
    paths = report.write(out, plot=not args.no_plot)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    for t in report.training:
        print(f"training before fold {t['fold']}: {t['env_steps']} env steps in {t['seconds']} s "
              f"({t['steps_per_s']} steps/s)")
    if not args.no_save and agents:
        from bot.safety.live_gate import judge, record_verdict

        checkpoint = agents[-1].save()
        passed, why = judge(report.rows)   # the walk-forward gate live trading with the DQN asks for
        record_verdict(checkpoint, passed, why, symbol=args.symbol.upper(), interval=interval)
        print(f"checkpoint: {checkpoint}")
        print(f"walk-forward gate {'PASSED' if passed else 'NOT passed'}: {why}"
              + ("" if passed else " (this agent may paper trade, not trade live)"))
    return 0
