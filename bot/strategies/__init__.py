"""Pluggable decision makers, found by name: `get_strategy("dqn" | "analyst" | "sma", settings)`.

Each implementation lives in its own module and is imported only when asked for, so the
backtester can run the SMA baseline without loading PyTorch.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from bot.strategies.base import FLAT, LONG, SHORT, Decision, Strategy, StrategyContext

__all__ = ["get_strategy", "STRATEGIES", "Decision", "Strategy", "StrategyContext", "FLAT", "LONG", "SHORT"]

# name -> "module:Class"; every class takes (settings, **options).
STRATEGIES: dict[str, str] = {
    "dqn": "bot.strategies.dqn:DQNStrategy",
    "analyst": "bot.strategies.analyst:AnalystStrategy",
    "sma": "bot.strategies.sma:SMACrossStrategy",
}


def get_strategy(name: str, settings: Any, **options: Any) -> Strategy:
    """Build the strategy called `name`; unknown names get a "did you mean" hint."""
    key = name.strip().lower()
    if key not in STRATEGIES:
        close = difflib.get_close_matches(key, list(STRATEGIES), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}{hint}")
    module, cls = STRATEGIES[key].split(":")
    return getattr(importlib.import_module(module), cls)(settings, **options)
