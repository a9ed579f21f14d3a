"""Walk-forward evaluation: the agent against buy-and-hold and an SMA crossover, out of sample.

The span after `train_until` is cut into `folds` consecutive test windows. For fold k the agent
trains only on candles before the window opens (an expanding window: the same agent keeps
learning fold after fold, never on anything it is later tested on), then trades the window
greedily (epsilon 0, flat at the start). The two baselines trade the same window through the
same simulator, so every curve pays the same fees, slippage and next-open fills.

Metrics (bot/analysis/metrics.py): net return, annualised Sharpe and Sortino (365-day year), max
drawdown, trades, win rate, profit factor, fees, and the deflated Sharpe ratio: the chance the
Sharpe beats the best of `n_trials` skill-less configurations (Bailey & Lopez de Prado). The
agent's `n_trials` counts every distinct configuration trained on this symbol (a registry in
models/trials.json) -- tuning on the test span is exactly what this number punishes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bot.agent.environment import LONG_ACTION, MarketData, TradingEnv
from bot.analysis.metrics import deflated_sharpe, log_returns, performance
from bot.atomic import atomic_write_png, atomic_write_text

__all__ = ["Fold", "Curve", "WalkForwardReport", "make_folds", "evaluate_window", "walk_forward", "greedy_return",
           "sma_actions", "record_trial", "STRATEGY_NAMES", "play_curve"]

STRATEGY_NAMES = ("agent", "buy_and_hold", "sma_cross")


@dataclass(frozen=True)
class Fold:
    """One test window [test_start, test_end] (row numbers); training uses rows < test_start."""

    index: int
    test_start: int
    test_end: int
    start_ms: int
    end_ms: int


@dataclass
class Curve:
    """One strategy's equity over a test window (equity 1.0 at the start)."""

    name: str
    equity: np.ndarray
    time_ms: np.ndarray
    trade_pnls: list[float] = field(default_factory=list)
    fees: float = 0.0
    exposure: np.ndarray | None = None


def make_folds(time_ms: np.ndarray, train_until_ms: int, n_folds: int) -> list[Fold]:
    """Equal test windows covering every candle after `train_until_ms`."""
    first = int(np.searchsorted(time_ms, train_until_ms, side="right"))
    if first < 2:
        raise ValueError("no candles before --train-until: nothing to train on")
    n_test = len(time_ms) - first
    if n_test < 2 * n_folds:
        raise ValueError(f"only {n_test} candles after --train-until; too few for {n_folds} folds")
    edges = np.linspace(first, len(time_ms), n_folds + 1).astype(int)
    return [Fold(k + 1, int(a), int(b) - 1, int(time_ms[a]), int(time_ms[b - 1]))
            for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))]


def sma_actions(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """Long (1) while the fast SMA of closes <= t is above the slow one, else flat (0)."""
    c = pd.Series(close)
    f, s = c.rolling(fast).mean().to_numpy(), c.rolling(slow).mean().to_numpy()
    return np.where(np.isfinite(s) & (f > s), LONG_ACTION, 0).astype(np.int64)


def evaluate_window(data: MarketData, fold: Fold, *, settings: Any, agent: Any | None,
                    sma: tuple[int, int] = (20, 100), min_hold: int = 0) -> dict[str, Curve]:
    """Trade one test window with the agent (greedy), buy-and-hold and the SMA crossover.

    The three run side by side as three episodes of one environment: same fills, same fees.
    An agent whose actions mean something else (`agent.trade_env`: position levels, a trade
    filter) trades its own environment over the same candles, with the same fills and fees."""
    env_class = getattr(agent, "trade_env", TradingEnv)
    if agent is not None and env_class is not TradingEnv:
        curves = evaluate_window(data, fold, settings=settings, agent=None, sma=sma)
        curves["agent"] = _agent_alone(env_class, data, fold, settings, agent, min_hold)
        return curves
    # the agent's min_hold binds the agent only; the baselines trade on their own signals
    env = TradingEnv(data, settings=settings, n_envs=3, use_stops=False, min_hold=np.array([min_hold, 0, 0]),
                     allow_short=None if agent is None else agent.n_actions == 3)
    start, end = fold.test_start - 1, fold.test_end     # decide at the close before the window
    state = env.reset(starts=np.full(3, start), ends=np.full(3, end))
    sma_a = sma_actions(data.close, *sma)
    n = end - start
    eq = np.ones((n + 1, 3))
    pos = np.zeros((n, 3), bool)
    fees = np.zeros(3)
    pnls: list[list[float]] = [[], [], []]
    for k in range(n):
        t = start + k
        a_agent = agent.act(state[0], epsilon=0.0) if agent is not None else 0
        state, _, term, trunc, info = env.step(np.array([a_agent, LONG_ACTION, sma_a[t]]))
        eq[k + 1] = info["equity"]
        pos[k] = info["position"] != 0
        fees += info["fee"]
        for j in np.flatnonzero(np.isfinite(info["closed_pnl"])):
            pnls[j].append(float(info["closed_pnl"][j]))
        if (term | trunc).any():
            # a trade still open at the end counts at its marked value (no exit fee charged)
            for j in np.flatnonzero(info["position"] != 0):
                pnls[j].append(float(info["equity"][j] - info["trade_equity"][j]))
            eq = eq[: k + 2]
            pos = pos[: k + 1]
            break
    times = data.time_ms[start: start + len(eq)]
    return {name: Curve(name, eq[:, j], times, pnls[j], float(fees[j]), pos[:, j])
            for j, name in enumerate(STRATEGY_NAMES)}


def play_curve(env: TradingEnv, fold: Fold, choose: Callable[[np.ndarray, int], Any], name: str) -> Curve:
    """One episode of `env` (n_envs=1) over a fold, `choose(state, t)` giving the action decided at
    candle t's close (filled at the next open); its equity curve, trade P&Ls and fees."""
    start, end = fold.test_start - 1, fold.test_end
    state = env.reset(starts=np.array([start]), ends=np.array([end]))
    eq, pos, pnls, fees = [1.0], [], [], 0.0
    for t in range(start, end):
        state, _, term, trunc, info = env.step(np.atleast_1d(choose(state, t)))
        eq.append(float(info["equity"][0]))
        pos.append(bool(info["position"][0] != 0))
        fees += float(info["fee"][0])
        if np.isfinite(info["closed_pnl"][0]):
            pnls.append(float(info["closed_pnl"][0]))
        if term[0] or trunc[0]:
            if info["position"][0] != 0:
                pnls.append(float(info["equity"][0] - info["trade_equity"][0]))
            break
    return Curve(name, np.asarray(eq), env.data.time_ms[start: start + len(eq)], pnls, fees, np.asarray(pos))


def _agent_alone(env_class: Any, data: MarketData, fold: Fold, settings: Any, agent: Any, min_hold: int) -> Curve:
    """The agent's curve over a fold in its own environment."""
    env = env_class(data, settings=settings, n_envs=1, use_stops=False, min_hold=min_hold)
    return play_curve(env, fold, lambda state, t: agent.act(state[0], epsilon=0.0), "agent")


def greedy_return(agent: Any, data: MarketData, *, candles: int = 2_048, chunks: int = 16) -> float:
    """Mean growth of the greedy agent over the last `candles` of `data`, cut into `chunks`
    episodes run side by side: the "eval" figure of the training progress bar (in sample)."""
    first, last = data.segments[-1]
    length = max(min(candles, last - first) // chunks, 1)
    starts = np.maximum(last - length * (np.arange(chunks)[::-1] + 1), first)
    env = getattr(agent, "trade_env", TradingEnv)(data, settings=agent.settings, n_envs=chunks,
                                                  min_hold=agent.config.min_hold, allow_short=agent.n_actions == 3)
    state = env.reset(starts=starts, ends=starts + length)
    for _ in range(length):
        state, _, term, trunc, info = env.step(agent.act(state, epsilon=0.0))
        if (term | trunc).all():
            return float(np.mean(info["equity"]) - 1.0)
    return float(np.mean(env.equity) - 1.0)


def _chain(curves: list[Curve]) -> Curve:
    """Fold curves glued end to end (each fold starts where the last one ended)."""
    eq, times, pnls, exp, fees, level = [], [], [], [], 0.0, 1.0
    for i, c in enumerate(curves):
        part = c.equity * level
        eq.append(part if i == 0 else part[1:])
        times.append(c.time_ms if i == 0 else c.time_ms[1:])
        pnls += [p * level for p in c.trade_pnls]
        exp.append(c.exposure)
        fees += c.fees * level
        level = part[-1]
    return Curve(curves[0].name, np.concatenate(eq), np.concatenate(times), pnls, fees, np.concatenate(exp))


def summarize(curve: Curve, *, interval: str, balance: float, n_trials: int) -> dict[str, float]:
    """The report row of one curve, money in the quote coin from `balance`."""
    p = performance(curve.equity * balance, np.asarray(curve.trade_pnls) * balance, interval=interval,
                    fees=curve.fees * balance, exposure=curve.exposure, times_ms=curve.time_ms)
    row = {k: v for k, v in p.as_dict().items() if k not in ("avg_win", "avg_loss", "calmar")}
    row["deflated_sharpe"] = deflated_sharpe(log_returns(curve.equity), n_trials)
    row["n_trials"] = n_trials
    return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in row.items()}


@dataclass
class WalkForwardReport:
    """Per-fold and overall rows of every strategy, and the glued equity curves."""

    symbol: str
    interval: str
    train_until: str
    folds: list[Fold]
    rows: dict[str, dict[str, dict[str, float]]]        # "fold 1" / "overall" -> strategy -> metrics
    curves: dict[str, Curve]
    settings: dict[str, Any]
    training: list[dict[str, float]] = field(default_factory=list)

    def table(self) -> str:
        cols = [("return %", "return_pct", "{:+.1f}"), ("Sharpe", "sharpe", "{:.2f}"),
                ("Sortino", "sortino", "{:.2f}"), ("max DD %", "max_drawdown_pct", "{:.1f}"),
                ("trades", "trades", "{:d}"), ("win %", "win_rate_pct", "{:.0f}"),
                ("PF", "profit_factor", "{:.2f}"), ("fees", "fees", "{:.2f}"),
                ("DSR", "deflated_sharpe", "{:.2f}")]
        head = "| period | strategy | " + " | ".join(c[0] for c in cols) + " |"
        lines = [head, "|" + "---|" * (len(cols) + 2)]
        for period, by_name in self.rows.items():
            for name, row in by_name.items():
                cells = [fmt.format(row[key]) if isinstance(row[key], (int, float)) else str(row[key])
                         for _, key, fmt in cols]
                lines.append(f"| {period} | {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "interval": self.interval, "train_until": self.train_until,
                "folds": [asdict(f) | {"start": _iso(f.start_ms), "end": _iso(f.end_ms)} for f in self.folds],
                "results": self.rows, "settings": self.settings, "training": self.training}

    def write(self, out_dir: Path, *, plot: bool = True) -> dict[str, Path]:
        """JSON (+ PNG of the equity curves) into `out_dir`, atomically."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"walk_forward_{self.symbol}_{self.interval}"
        paths = {"json": out_dir / f"{stem}.json"}
        atomic_write_text(paths["json"], json.dumps(_finite(self.to_json()), indent=2, default=_jsonable))
        if plot:
            paths["png"] = out_dir / f"{stem}.png"
            self._plot(paths["png"])
        return paths

    def _plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(11, 5.5))
        for name, c in self.curves.items():
            ax.plot(pd.to_datetime(c.time_ms, unit="ms"), (c.equity - 1) * 100, label=name, lw=1.2)
        for f in self.folds[1:]:
            ax.axvline(pd.to_datetime(f.start_ms, unit="ms"), color="grey", ls=":", lw=0.8)
        ax.set_title(f"{self.symbol} {self.interval}: walk-forward out of sample after {self.train_until}, "
                     f"net of fees ({len(self.folds)} folds)")
        ax.set_ylabel("net return %")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_write_png(fig, path, dpi=110)


def walk_forward(frame: pd.DataFrame, *, settings: Any, symbol: str, interval: str, train_until: str,
                 folds: int = 3, agent_factory: Callable[[], Any], steps_first: int, steps_per_fold: int,
                 n_trials: int = 1, sma: tuple[int, int] = (20, 100), progress: bool = True,
                 env_options: dict[str, Any] | None = None, validation: float = 0.0) -> WalkForwardReport:
    """Train before each window, trade the window, report agent vs buy-and-hold vs SMA.

    `validation` > 0 holds out that fraction of the newest candles before each window: the agent
    does not train on them, and the network that trades them best (greedy) is the one kept."""
    until_ms = int(pd.Timestamp(train_until, tz="UTC").value // 1_000_000) + 86_400_000 - 1  # whole day
    times = frame.index.to_numpy(np.int64)
    fold_list = make_folds(times, until_ms, folds)
    agent = agent_factory()
    full = MarketData.from_frames(frame, settings=settings)
    per_fold: dict[str, list[Curve]] = {n: [] for n in STRATEGY_NAMES}
    rows: dict[str, dict[str, dict[str, float]]] = {}
    training: list[dict[str, float]] = []
    balance = float(settings.PAPER_START_BALANCE)
    trials = {"agent": n_trials, "buy_and_hold": 1, "sma_cross": 1}
    for fold in fold_list:
        steps = steps_first if fold.index == 1 else steps_per_fold
        held_out = int(validation * fold.test_start)
        train_data = MarketData.from_frames(frame.iloc[: fold.test_start - held_out], settings=settings)
        if held_out:
            val_data = MarketData.from_frames(frame.iloc[: fold.test_start], settings=settings)
            evaluate = lambda a, d=val_data, n=held_out: greedy_return(a, d, candles=n)  # noqa: E731
        else:
            evaluate = lambda a, d=train_data: greedy_return(a, d)  # noqa: E731
        res = agent.train(train_data, steps, progress=progress, evaluate=evaluate, eval_every=max(steps // 10, 1),
                          keep_best=bool(held_out), **(env_options or {}))
        training.append({"fold": fold.index, "env_steps": res.env_steps, "seconds": round(res.seconds, 1),
                         "steps_per_s": round(res.steps_per_second), "train_episode_return": res.mean_episode_return})
        curves = evaluate_window(full, fold, settings=settings, agent=agent, sma=sma,
                                 min_hold=agent.config.min_hold)
        rows[f"fold {fold.index}"] = {n: summarize(c, interval=interval, balance=balance, n_trials=trials[n])
                                      for n, c in curves.items()}
        for n, c in curves.items():
            per_fold[n].append(c)
    glued = {n: _chain(cs) for n, cs in per_fold.items()}
    rows["overall"] = {n: summarize(c, interval=interval, balance=balance, n_trials=trials[n])
                       for n, c in glued.items()}
    cfg = asdict(agent.config)
    return WalkForwardReport(symbol, interval, train_until, fold_list, rows, glued,
                             {"agent": cfg, "fee_rate": settings.FEE_RATE, "slippage_bps": settings.SLIPPAGE_BPS,
                              "steps_first": steps_first, "steps_per_fold": steps_per_fold, "sma": list(sma),
                              "allow_short": agent.n_actions == 3, "env": env_options or {},
                              "validation": validation}, training)


def record_trial(models_dir: Path, symbol: str, config_hash: str) -> int:
    """Remember that this configuration was tried on `symbol`; return how many distinct ones were."""
    path = Path(models_dir) / "trials.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    seen = set(data.get(symbol, []))
    seen.add(config_hash)
    data[symbol] = sorted(seen)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return len(seen)


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


def _finite(x: Any) -> Any:
    """JSON has no infinity: a profit factor with no losing trade is written as the string "inf"."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
