"""The engine over history at full speed: two paths to the same trades, and their results.

- **Engine path** (`engine_backtest`): the very `TradingEngine` that paper and live trading run
  (strategy -> risk manager -> executor -> `SimExchange`), fed recorded candles one by one
  through its synchronous `process_candle` step, with no order delay. One code path with paper
  and live: a bug fixed in one is fixed in all. Any strategy works here.
- **Fast path** (`fast_backtest`): for strategies that can say what they would do on every
  candle at once (`strategy.signals(frame)`, an (n, 3) array of targets per position state), a
  lean sequential loop applies the *same* fill, fee, slippage, sizing and stop rules as
  `SimExchange` and `TradeExecutor`, and asks the bot's own `RiskManager` about every entry
  (`bot.research.risk_gate.RiskGate`: regime sizing, volatility cut, risk caps, default stops, loss
  halts). A test checks that it produces the same trades and equity as the engine path on real
  candles with the default settings. Trailing stops are only modelled by the engine path.

The fill rules both paths follow (those of `SimExchange`, with SIMULATION_ORDER_DELAY = 0):
a decision taken when candle i closes fills at candle i's close, moved against us by
SLIPPAGE_BPS; each fill pays FEE_RATE x its notional. Stops are watched from the next candle
on: a long's stop-loss fills when the low touches it (at the open if the candle gaps through
it), a take-profit when the high touches it; a stop and a take-profit in one candle count as the
stop (the pessimistic reading of a candle we cannot see inside). Stop fills slip like any
market order. No decision is taken on the last candle (an entry there would pay two fees for
nothing); what is still open is closed at the last close ("end-of-data") so every P&L is final.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace as _replace
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import ConfigError, StrategyError
from bot.research.backtest_dqn import dqn_fast_backtest
from bot.research.fast_path import (
    BacktestResult,
    costs_for,
    params_of,
    rules_for,
    run_fast,
    strategy_has_fast_path,
)
from bot.types import interval_ms, ms_to_iso

__all__ = ["engine_backtest", "run_backtest", "check_runnable", "chosen_path"]


@contextmanager
def older_objects_frozen() -> Iterator[None]:
    """The objects that exist before a run (the modules, torch, pandas, the candles) left out of
    the garbage collector's passes while it runs (`gc.freeze`), then handed back. A backtest
    makes many small objects per candle, so the collector runs often, and each full pass walked
    the whole heap: a sixth of an SMA run over the 20,111 seed candles. Nothing is leaked: what
    the run makes is collected as usual, and the frozen objects are unfrozen after the run."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def engine_backtest(settings: Any, strategy: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT",
                    interval: str = "60", start: int = 0, training: bool = False,
                    progress: Callable[[int], None] | None = None) -> BacktestResult:
    """The engine path: `TradingEngine.process_candle` over a `SimExchange`, candle by candle.

    Candles before `start` are fed too (the engine needs them to warm its indicators up) while
    the engine is paused, so it decides nothing before `start`. `training`: let a learning
    agent learn online during the run (off by default: a backtest judges the agent as it is).
    """
    from bot.engine.trading_engine import TradingEngine
    from bot.exchange.sim import SimExchange
    from bot.journal.base import MemoryJournal
    from bot.types import Candle

    t0 = time.perf_counter()
    settings = settings.replace(SIMULATION_ORDER_DELAY=0.0, CANDLE_INTERVAL=str(interval),
                                TRAINING_ENABLED=bool(training))
    step_ms = interval_ms(interval)
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731  (the exchange's time is the replayed candle's close)
    sim = SimExchange(settings, clock=clock, instrument_source=rules_for(settings, symbol, frame), keep_closed=None)
    engine = TradingEngine(settings, strategy=strategy, exchange=sim, journal=MemoryJournal(), clock=clock)
    engine.prepare("BACKTEST")
    step = engine.step
    assert step is not None
    idx = np.asarray(frame.index, dtype=np.int64)
    vals = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy(dtype=np.float64)
    n = len(idx)
    if start > 0:
        engine.pause()   # warm-up candles: the engine takes them in but decides nothing
    interval = str(interval)
    step.known_candles(symbol, idx, vals)   # the indicators carried ahead in one pass (same values)
    process = step.process_candle
    errors = engine.state.errors_seen
    mark = sim.equity_and_direction
    equities: list[float] = []
    directions: list[int] = []
    with older_objects_frozen():   # the collector passes over what the run makes only
        # plain Python numbers (a numpy scalar per field would cost more than the conversion); made
        # here, not before: in a fresh process their 140,000 objects set off full passes over the
        # whole heap (torch, pandas), 0.2 s for the 20,111 seed candles
        times, rows = idx.tolist(), vals.tolist()
        try:
            if start > 0:   # the warm-up candles, taken in at once (the same state as one by one)
                now[0] = (times[min(start, n) - 1] + step_ms) / 1000.0
                step.take_history(symbol, interval, idx[:start], vals[:start])
                if errors:
                    raise StrategyError(f"backtest stopped in the warm-up: {errors[0]}")
                engine.resume()
            coast_told, direction = step.coast_told, sim.direction
            i = start
            while i < n:
                taken = coast_told(symbol, i, n - 1)   # a stretch the strategy keeps its position through
                if taken:
                    k = len(taken)
                    equities += taken
                    directions += [direction(symbol)] * k
                    i += k
                    now[0] = (times[i - 1] + step_ms) / 1000.0
                    if progress is not None:
                        progress(k)
                    continue
                o, h, lo, c, v, t = rows[i]
                open_ms = times[i]
                now[0] = (open_ms + step_ms) / 1000.0
                if i == n - 1:
                    engine.pause()   # no decision on the last candle: what is open closes at end of data below
                process(Candle(symbol, interval, open_ms, o, h, lo, c, v, t))
                if errors:   # the strategy failed on this candle: the run cannot mean anything
                    raise StrategyError(f"backtest stopped at {ms_to_iso(open_ms)}: {errors[0]}")
                eq, held_now = mark(symbol)
                equities.append(eq)
                directions.append(held_now)
                i += 1
                if progress is not None:
                    progress(1)
        finally:   # the strategy and the step forget the candles (the object may trade on afterwards)
            step.known_candles(symbol, idx[:0], vals[:0])
    equity, held = np.array(equities, dtype=np.float64), np.array(directions, dtype=np.int8)
    trades = list(sim.closed_trades())
    if held[-1] != 0:
        engine.c.broker.close(symbol, reason="end-of-data")
        last = sim.closed_trades()[-1]
        trades.append(_replace(last, reason="end-of-data"))
        equity[-1] = sim.get_balance().equity
    fees = sum(t.fees for t in trades)
    return BacktestResult(symbol, str(interval), getattr(strategy, "name", str(strategy)), idx[start:],
                          vals[start:, 3].copy(), equity, held,
                          tuple(_replace(t, mode="BACKTEST") for t in trades), float(fees),
                          float(settings.PAPER_START_BALANCE), "engine", time.perf_counter() - t0,
                          params_of(strategy))


def check_runnable(settings: Any, strategy: Any, interval: str, path: str = "auto") -> None:
    """Refuse, in one line and before any candle, a run that cannot mean anything: a path that does
    not exist or does not fit the strategy, or candles the strategy cannot work on."""
    from bot.strategies.base import LearningStrategy, interval_refusal

    if path not in ("auto", "fast", "engine"):
        raise ConfigError(f"backtest path {path!r} is not known; allowed: auto, fast, engine")
    name = getattr(strategy, "name", strategy)
    why = interval_refusal(strategy, interval)
    if why is not None:
        raise ConfigError(f"strategy {name!r} cannot run on these candles: {why}")
    trailing = bool(getattr(settings, "TRAILING_STOP", False))
    batched = isinstance(strategy, LearningStrategy) or strategy_has_fast_path(strategy)
    if path == "fast" and (trailing or not batched):
        why = "trailing stops are on" if trailing else "it decides candle by candle, with no batched signals"
        raise ConfigError(f"strategy {name!r} cannot take the fast path ({why}); use --path engine or auto")


def chosen_path(settings: Any, strategy: Any, path: str = "auto") -> str:
    """The path a backtest of `strategy` takes: "fast" when asked for or, with "auto", when the
    strategy has a batched pass (the agent's policy or `signals()`) and no trailing stop is set."""
    from bot.strategies.base import LearningStrategy

    if path != "auto":
        return path
    trailing = bool(getattr(settings, "TRAILING_STOP", False))
    batched = isinstance(strategy, LearningStrategy) or strategy_has_fast_path(strategy)
    return "fast" if batched and not trailing else "engine"


def run_backtest(settings: Any, strategy: Any, frame: pd.DataFrame, *, symbol: str = "BTCUSDT",
                 interval: str = "60", path: str = "auto", start: int = 0,
                 progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Backtest `strategy` over `frame`: `path` "engine", "fast", or "auto" (see `chosen_path`)."""
    check_runnable(settings, strategy, interval, path)
    from bot.strategies.base import LearningStrategy

    if chosen_path(settings, strategy, path) == "engine":
        return engine_backtest(settings, strategy, frame, symbol=symbol, interval=interval, start=start,
                               progress=progress)
    if isinstance(strategy, LearningStrategy):   # the agent has a batched fast path of its own
        return dqn_fast_backtest(settings, strategy, frame, symbol=symbol, interval=interval, start=start)
    return run_fast(strategy, frame, costs_for(settings, symbol, frame), symbol=symbol, interval=interval,
                    start=start, settings=settings)
