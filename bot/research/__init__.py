"""Research: the bot over history. The backtester's two paths to the same trades (the engine
itself fed recorded candles, and a fast path with the same fills, fees, sizing and risk
manager), the report, walk-forward evaluation of the agent, and the parameter optimiser (grid,
random or genetic search; the fold objective and holdout; search spaces and best-parameter files),
and the backends its jobs run on (a local process pool, or Ray: `map_jobs`, `make_backend`).

It may import every part but the window and cli; only the cli (and bench/) import it.
Names load on first use (PEP 562): `import bot.research` imports neither torch nor matplotlib.
(`walk_forward`, the function, is not exported: the name is its module's.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.research.backend import make_backend, map_jobs
    from bot.research.backtest import engine_backtest, run_backtest
    from bot.research.fast_path import CostModel, costs_for, run_fast
    from bot.research.objective import (
        FoldObjective,
        holdout_report,
        split_holdout,
        walk_forward_search,
    )
    from bot.research.optimizer import ParameterOptimizer
    from bot.research.report import build_report, regime_labels
    from bot.research.space import finite_only, load_best_params, load_space, save_best_params
    from bot.research.walk_forward import record_trial

__all__ = [
    "run_backtest", "engine_backtest", "run_fast", "CostModel", "costs_for", "build_report",
    "regime_labels", "FoldObjective", "walk_forward_search", "split_holdout", "holdout_report",
    "ParameterOptimizer", "load_space", "load_best_params", "save_best_params", "finite_only",
    "record_trial", "map_jobs", "make_backend",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "run_backtest": "backtest", "engine_backtest": "backtest", "run_fast": "fast_path",
    "CostModel": "fast_path", "costs_for": "fast_path", "build_report": "report",
    "regime_labels": "report", "FoldObjective": "objective", "walk_forward_search": "objective",
    "split_holdout": "objective", "holdout_report": "objective", "ParameterOptimizer": "optimizer",
    "load_space": "space", "load_best_params": "space", "save_best_params": "space",
    "finite_only": "space", "record_trial": "walk_forward", "map_jobs": "backend", "make_backend": "backend",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
