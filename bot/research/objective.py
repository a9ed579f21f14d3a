"""The optimiser's default objective: a backtest scored on consecutive folds of history.

The search span is cut into `folds` consecutive stretches. Each parameter set is backtested on
every fold (at least `min_trades` trades in all, else it scores -inf) -- the fast path with the bot's own risk manager judging every entry, or the engine
path for strategies without batched signals -- (indicators warmed up on the candles before it, so each fold trades from its first
candle) and scored by the mean of the folds' annualised Sharpe ratios. A setting that only fits
one stretch of history scores poorly on the others. The candles after the search span (the
holdout, see `split_holdout`) are never seen by the search; `holdout_report` judges the winner
there, next to buy-and-hold, and computes its deflated Sharpe ratio given the number of trials.

`walk_forward_search` judges the whole procedure instead of one winner: K searches on growing
windows, each winner traded on the next block no search of its split has seen; the chained test
blocks are the out-of-sample record (`python -m bot optimize ... --walk-forward K`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bot.analysis.metrics import (
    deflated_sharpe,
    log_returns,
    max_drawdown,
    periods_per_year,
    sharpe,
    total_return_pct,
)
from bot.research.backtest import run_backtest
from bot.research.fast_path import (
    CostModel,
    buy_and_hold,
    costs_for,
    fast_backtest,
    strategy_has_fast_path,
)

__all__ = ["FoldObjective", "split_holdout", "holdout_report", "out_of_sample", "walk_forward_search"]


def split_holdout(frame: pd.DataFrame, holdout: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(search span, holdout span): the last `holdout` fraction is kept out of the search."""
    cut = int(round(len(frame) * (1.0 - holdout)))
    return frame.iloc[:cut], frame.iloc[cut:]


class FoldObjective:
    """`params -> (score, info)`: mean annualised Sharpe over consecutive folds (picklable)."""

    def __init__(self, settings: Any, strategy: str, frame: pd.DataFrame, *, folds: int = 4,
                 symbol: str = "BTCUSDT", interval: str = "60", fixed: dict[str, Any] | None = None,
                 costs: CostModel | None = None, risk: bool = True, min_trades: int = 0) -> None:
        if folds < 1:
            raise ValueError(f"folds must be >= 1, got {folds}")
        if len(frame) < folds * 50:
            raise ValueError(f"{len(frame)} candles are too few for {folds} folds (need >= {folds * 50})")
        self.settings = settings
        self.strategy = strategy
        self.frame = frame
        self.symbol, self.interval = symbol, str(interval)
        self.fixed = dict(fixed or {})
        self.min_trades = int(min_trades)
        self.costs = costs or costs_for(settings, symbol, frame)
        self.edges = np.linspace(0, len(frame), folds + 1).astype(int)
        self._gate = None
        if risk:  # the bot's risk manager judges entries, as in paper and live (indicators precomputed once)
            from bot.research.risk_gate import RiskGate
            self._gate = RiskGate(settings, frame, symbol=symbol)
        self.ppy = periods_per_year(self.interval, np.asarray(frame.index, dtype=np.int64))

    def build(self, params: dict[str, Any]) -> Any:
        from bot.strategies import get_strategy
        return get_strategy(self.strategy, self.settings, **{**self.fixed, **params})

    def fold_results(self, params: dict[str, Any]) -> list[Any]:
        strat = self.build(params)
        out = []
        if strategy_has_fast_path(strat):
            # one batched pass over all candles (causal indicators), then one lean loop per fold
            targets = strat.signals(self.frame)
            sl, tp = strat.stop_distances(self.frame)
            for a, b in zip(self.edges[:-1], self.edges[1:], strict=False):
                out.append(fast_backtest(self.frame, targets, self.costs, stop_dist=sl, tp_dist=tp,
                                         symbol=self.symbol, interval=self.interval, start=int(a), end=int(b),
                                         risk=None if self._gate is None else self._gate.fresh()))
        else:
            for a, b in zip(self.edges[:-1], self.edges[1:], strict=False):
                out.append(run_backtest(self.settings, strat, self.frame.iloc[:b], symbol=self.symbol,
                                        interval=self.interval, path="engine", start=int(a)))
        return out

    def __call__(self, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        folds = self.fold_results(params)
        sharpes = [sharpe(log_returns(r.equity), self.ppy) for r in folds]
        rets = np.concatenate([log_returns(r.equity) for r in folds])
        sd = rets.std(ddof=1) if len(rets) > 1 else 0.0
        growth = math.prod(r.equity[-1] / r.equity[0] for r in folds)
        info = {
            "fold_sharpes": [round(x, 4) for x in sharpes],
            "trades": int(sum(len(r.trades) for r in folds)),
            "return_pct": float((growth - 1) * 100),
            "max_drawdown_pct": max(max_drawdown(r.equity).max_drawdown for r in folds) * 100,
            "sharpe_pp": float(rets.mean() / sd) if sd > 1e-15 else 0.0,   # per-candle, for the DSR
        }
        if info["trades"] < self.min_trades:
            # a handful of trades makes a Sharpe ratio of luck: such a setting cannot win
            info["error"] = f"{info['trades']} trades, fewer than min_trades={self.min_trades}"
            return float("-inf"), info
        return float(np.mean(sharpes)), info


def out_of_sample(settings: Any, strategy: str, params: dict[str, Any], before: pd.DataFrame,
                  window: pd.DataFrame, *, symbol: str = "BTCUSDT", interval: str = "60",
                  fixed: dict[str, Any] | None = None) -> tuple[Any, CostModel]:
    """Backtest `params` on `window` only, its indicators warmed up on the candles `before` it."""
    both = pd.concat([before, window])
    obj = FoldObjective(settings, strategy, both, folds=1, symbol=symbol, interval=interval, fixed=fixed)
    strat = obj.build(params)
    start = len(before)
    if strategy_has_fast_path(strat):
        sl, tp = strat.stop_distances(both)
        res = fast_backtest(both, strat.signals(both), obj.costs, stop_dist=sl, tp_dist=tp, symbol=symbol,
                            interval=interval, start=start, risk=obj._gate)
    else:
        res = run_backtest(settings, strat, both, symbol=symbol, interval=interval, path="engine", start=start)
    return res, obj.costs


def walk_forward_search(settings: Any, strategy: str, frame: pd.DataFrame,
                        make_optimizer: Callable[[FoldObjective, int], Any], *, splits: int = 3, folds: int = 4,
                        symbol: str = "BTCUSDT", interval: str = "60", fixed: dict[str, Any] | None = None,
                        min_trades: int = 0) -> dict[str, Any]:
    """Walk-forward optimisation: the span is cut into `splits` + 1 blocks; for split k the search
    sees blocks 0..k (anchored, growing) and its winner trades block k+1, which no search of that
    split has seen. The test blocks chained together are the out-of-sample record of the whole
    procedure (search + pick), the number to trust over any in-sample score.

    `make_optimizer(objective, k)` builds the `ParameterOptimizer` of split k (its own checkpoint)."""
    if splits < 1:
        raise ValueError(f"walk-forward splits must be >= 1, got {splits}")
    edges = np.linspace(0, len(frame), splits + 2).astype(int)
    ppy = periods_per_year(interval, np.asarray(frame.index, dtype=np.int64))
    rows, oos_returns, bh_returns = [], [], []
    for k in range(splits):
        train, test = frame.iloc[: edges[k + 1]], frame.iloc[edges[k + 1]: edges[k + 2]]
        objective = FoldObjective(settings, strategy, train, folds=folds, symbol=symbol, interval=interval,
                                  fixed=fixed, min_trades=min_trades)
        result = make_optimizer(objective, k).run()
        best = result.best
        res, costs = out_of_sample(settings, strategy, best.params, train, test, symbol=symbol, interval=interval,
                                   fixed=fixed)
        bh = buy_and_hold(res.close, costs)
        oos_returns.append(log_returns(res.equity))
        bh_returns.append(log_returns(bh))
        rows.append({"split": k + 1, "train_candles": len(train), "test_start_ms": int(res.open_ms[0]),
                     "test_candles": res.candles, "params": best.params, "search_score": best.score,
                     "test_sharpe": sharpe(log_returns(res.equity), ppy),
                     "test_return_pct": (res.equity[-1] / res.equity[0] - 1) * 100, "test_trades": len(res.trades),
                     "buy_hold_return_pct": (bh[-1] / bh[0] - 1) * 100})
    oos, ref = np.concatenate(oos_returns), np.concatenate(bh_returns)
    return {"splits": rows,
            "oos": {"sharpe": sharpe(oos, ppy), "return_pct": total_return_pct(oos),
                    "buy_hold_sharpe": sharpe(ref, ppy), "buy_hold_return_pct": total_return_pct(ref),
                    "trades": int(sum(r["test_trades"] for r in rows))}}


def holdout_report(settings: Any, strategy: str, params: dict[str, Any], search: pd.DataFrame,
                   holdout: pd.DataFrame, *, n_trials: int, sharpe_variance: float | None,
                   symbol: str = "BTCUSDT", interval: str = "60", fixed: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The winner on the search span (with its deflated Sharpe) and on the unseen holdout."""
    obj = FoldObjective(settings, strategy, search, folds=1, symbol=symbol, interval=interval, fixed=fixed)
    ins = obj.fold_results(params)[0]
    ppy = obj.ppy
    out: dict[str, Any] = {
        "in_sample": {"sharpe": sharpe(log_returns(ins.equity), ppy),
                      "return_pct": (ins.equity[-1] / ins.equity[0] - 1) * 100, "trades": len(ins.trades)},
        "n_trials": n_trials,
        "deflated_sharpe": deflated_sharpe(log_returns(ins.equity), n_trials, sharpe_variance),
    }
    if len(holdout) >= 2:
        res, costs = out_of_sample(settings, strategy, params, search, holdout, symbol=symbol, interval=interval,
                                   fixed=fixed)
        bh = buy_and_hold(res.close, costs)
        out["holdout"] = {
            "start_ms": int(res.open_ms[0]), "candles": res.candles,
            "sharpe": sharpe(log_returns(res.equity), ppy), "return_pct": (res.equity[-1] / res.equity[0] - 1) * 100,
            "trades": len(res.trades), "max_drawdown_pct": max_drawdown(res.equity).max_drawdown * 100,
            "buy_hold_return_pct": (bh[-1] / bh[0] - 1) * 100, "buy_hold_sharpe": sharpe(log_returns(bh), ppy),
        }
    return out
