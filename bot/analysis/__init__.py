"""Analysis: what the bot reads in candles. Indicators on plain numpy arrays (equal to
TA-Lib's), the agent's features, market regime and support/resistance, the streaming feature row
of the live loop, and the performance metrics (Sharpe, drawdown, deflated Sharpe) every part
judges by. `indicators` and `features` are exported as modules too: most callers use them so.

Import rule (docs/architecture.md): analysis imports nothing of the bot but the domain types
(bot/types.py). Names load on first use (PEP 562): `import bot.analysis` imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.analysis import features, indicators
    from bot.analysis.feature_stream import FeatureStream, wilder_trend_step
    from bot.analysis.features import regime, regime_codes, support_resistance, warmup_length
    from bot.analysis.indicators import adx, compute_all
    from bot.analysis.metrics import (
        deflated_sharpe,
        log_returns,
        max_drawdown,
        performance,
        periods_per_year,
        sharpe,
        trade_stats,
    )

__all__ = [
    "indicators", "compute_all", "adx", "features", "regime", "regime_codes", "support_resistance",
    "warmup_length", "FeatureStream", "wilder_trend_step", "performance", "log_returns", "sharpe",
    "deflated_sharpe", "max_drawdown", "periods_per_year", "trade_stats",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "indicators": "indicators", "compute_all": "indicators", "adx": "indicators",
    "features": "features", "regime": "features", "regime_codes": "features",
    "support_resistance": "features", "warmup_length": "features",
    "FeatureStream": "feature_stream", "wilder_trend_step": "feature_stream",
    "performance": "metrics", "log_returns": "metrics", "sharpe": "metrics",
    "deflated_sharpe": "metrics", "max_drawdown": "metrics", "periods_per_year": "metrics",
    "trade_stats": "metrics",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
