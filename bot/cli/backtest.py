"""Backtest a strategy over recorded candles and write its report.

`--path engine` runs the history through the bot's own engine (strategy -> risk manager ->
executor -> paper exchange, no order delay): the same code path as paper and live trading.
`--path fast` runs the batched fast path (strategies with `signals()`, e.g. sma): the same fill,
fee, sizing and stop rules and the same RiskManager verdicts, hundreds of times faster; a test
checks that both give identical trades. `auto` (default) takes the fast path when it can.

Candles come from the cache (or the shipped seed candles) for --symbols/--interval, or from any
OHLCV CSV/Parquet file with --data. Candles before --start warm the indicators up.

Examples:
  python -m bot backtest --strategy sma --symbols BTCUSDT --interval 60 --start 2019-01-01 --end 2019-10-01
  python -m bot backtest --strategy sma --option fast=20 --option slow=80 --option atr_stop=2.5
  python -m bot backtest --params historical_data/optimize/best_params.json
  python -m bot backtest --strategy sma --data my_candles.csv --path fast
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from bot.cli._data import add_file_arguments, read_data_file

COMMAND = "backtest"
WARMUP_CANDLES = 1000   # candles before --start fed to warm indicators up

HELP = "run a strategy over recorded candles and report P&L after fees, Sharpe, drawdown vs buy-and-hold"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", default=None, help="dqn | sma | analyst (default: STRATEGY setting)")
    p.add_argument("--symbols", default=None,
                   help="comma-separated symbols (default: BTCUSDT; with --data, the file's symbol or name)")
    p.add_argument("--interval", default=None,
                   help="Bybit interval, e.g. 60 or D (default: CANDLE_INTERVAL; with --data, read off the file)")
    p.add_argument("--start", default=None, help="first traded candle, UTC date/time (e.g. 2019-01-01)")
    p.add_argument("--end", default=None, help="last candle, UTC date/time (exclusive)")
    p.add_argument("--params", default=None, help="best-parameters JSON from `optimize` (strategy + options)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a strategy option, repeatable (e.g. --option fast=20)")
    p.add_argument("--path", choices=("auto", "engine", "fast"), default="auto",
                   help="auto (default: fast when the strategy has batched signals), engine (the bot's "
                        "own per-candle code path), fast")
    p.add_argument("--out", default=None, help="report folder (default: <data dir>/backtests/<strategy>-<symbol>)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--verbose", action="store_true", help="log every order and veto (default: warnings only)")
    add_file_arguments(p)


def parse_options(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> options; values parsed as JSON when they can be (numbers, null, true)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--option {item!r} is not KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _ms(text: str | None, what: str) -> int | None:
    import pandas as pd

    from bot.errors import ConfigError
    if text is None:
        return None
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"--{what} {text!r} is not a date (use e.g. 2019-01-01 or '2019-01-01 12:00')") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def load_frame(settings: Any, symbol: str, interval: str, *, data: Any, start: str | None,
               end: str | None) -> tuple[Any, int]:
    """(candles, index of the first traded candle): everything before --start is warm-up.
    `data`: a file already read (`bot.market.ohlcv_file.CandleFile`, see `read_data_file`), or None
    (the cache, or the seed candles)."""
    import numpy as np

    from bot.errors import DataError
    if data is not None:
        frame = data.frame
    else:
        from bot.market.data_manager import DataManager
        frame = DataManager(settings).replay_frame(symbol, interval)
    s_ms, e_ms = _ms(start, "start"), _ms(end, "end")
    if e_ms is not None:
        frame = frame[frame.index < e_ms]
    first = 0 if s_ms is None else int(np.searchsorted(np.asarray(frame.index), s_ms))
    if first > WARMUP_CANDLES:  # the engine keeps a bounded tail anyway: older candles only cost time
        frame = frame.iloc[first - WARMUP_CANDLES:]
        first = WARMUP_CANDLES
    if len(frame) - first < 2:
        raise DataError(f"{symbol}/{interval}: fewer than 2 candles between --start {start} and --end {end} "
                        f"(the data covers {len(frame)} candles)")
    return frame, first


def refuse_untrained(strategy: Any) -> None:
    """A backtest of an agent that never learned reports noise as a result: refuse it."""
    from bot.errors import ConfigError
    from bot.strategies.base import LearningStrategy

    if isinstance(strategy, LearningStrategy) and getattr(strategy, "model_path", None) is None:
        raise ConfigError(f"no trained DQN checkpoint in {strategy.agent.store.root}: an untrained agent's backtest "
                          "means nothing; train one first (python -m bot train --symbol BTCUSDT --train-until "
                          "2018-12-31) or pass --option model_path=FILE")


def symbol_of_file(path: str) -> str:
    """A name for candles whose file does not name their symbol: the letters its name starts with."""
    import re
    m = re.match(r"[A-Za-z0-9]+", Path(path).name)
    return (m.group(0) if m else "DATA").upper()


def data_sets(args: argparse.Namespace, settings: Any) -> list[tuple[str, str, Any]]:
    """(symbol, interval, file or None) per symbol the command runs on."""
    asked = [s.strip().upper() for s in (args.symbols or "").split(",") if s.strip()]
    if not args.data:
        interval = str(args.interval or settings.CANDLE_INTERVAL)
        return [(s, interval, None) for s in (asked or ["BTCUSDT"])]
    out = []
    for want in asked or [None]:
        cf = read_data_file(args.data, args, symbol=want, interval=args.interval)
        symbol = want or cf.symbol or symbol_of_file(args.data)
        if want is None and cf.symbol is None:
            print(f"  symbol: {symbol} (from the file name; --symbols names it)")
        out.append((symbol, cf.interval, cf))
    return out


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.research.backtest import check_runnable, chosen_path, run_backtest
    from bot.research.fast_path import costs_for, rules_for
    from bot.research.report import build_report, regime_labels
    from bot.strategies import get_strategy

    log = logging.getLogger("bot.backtest")
    if not args.verbose:  # thousands of simulated orders would drown the report
        logging.getLogger("bot").setLevel(logging.ERROR)
    name, options = (args.strategy or settings.STRATEGY), {}
    if args.params:
        from bot.research.optimizer import load_best_params
        pname, options = load_best_params(args.params)
        name = args.strategy or pname
    options.update(parse_options(args.option))
    sets = data_sets(args, settings)
    for symbol, interval, data in sets:
        frame, first = load_frame(settings, symbol, interval, data=data, start=args.start, end=args.end)
        rules = rules_for(settings, symbol, frame)
        if rules is not None:
            print(f"  {rules.describe()}")
        strategy = get_strategy(name, settings, **options)
        refuse_untrained(strategy)
        check_runnable(settings, strategy, interval, args.path)
        log.info("backtest %s %s/%s: %d candles (%d warm-up), %s path", name, symbol, interval,
                 len(frame) - first, first, args.path)
        if chosen_path(settings, strategy, args.path) == "engine":   # candle by candle: a progress bar
            from tqdm import tqdm
            with tqdm(total=len(frame) - first, desc=f"backtest {name} {symbol}", unit="candle") as bar:
                result = run_backtest(settings, strategy, frame, symbol=symbol, interval=interval,
                                      path=args.path, start=first, progress=bar.update)
        else:
            result = run_backtest(settings, strategy, frame, symbol=symbol, interval=interval, path=args.path,
                                  start=first)
        labels = regime_labels(frame, settings)
        report = build_report(result, costs_for(settings, symbol, frame),
                              regimes=None if labels is None else labels[first:])
        out = Path(args.out) if args.out else Path(settings.data_dir) / "backtests" / f"{name}-{symbol}-{interval}"
        if len(sets) > 1 and args.out:
            out = out / symbol
        paths = report.write(out, plot=not args.no_plot)
        print(report.table())
        print("files: " + ", ".join(str(p) for p in paths.values()))
    return 0
