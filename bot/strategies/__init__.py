"""Pluggable decision makers, found by name: `get_strategy("dqn" | "analyst" | "sma", settings)`.

Each implementation lives in its own module and is imported only when asked for, so the
backtester can run the SMA baseline without loading PyTorch. Also here: the `Strategy` protocol
(a `StrategyContext` in, a `Decision` out), the review pipeline in front of the risk manager
(rule reviewers, an optional LLM reviewer) and the lessons drawn from vetoed proposals.

A strategy only decides; the engine acts on its Decision. It imports agent, analysis, market and
the primitives, never the engine (which imports it). Other names load on first use (PEP 562).
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.strategies.analyst import AnalystStrategy
    from bot.strategies.base import FLAT, LONG, SHORT, Decision, Strategy, StrategyContext
    from bot.strategies.dqn import DQNStrategy
    from bot.strategies.lessons import Lesson, lessons_text, parse_lessons, refresh_lessons
    from bot.strategies.review import ReviewedStrategy, ReviewPipeline
    from bot.strategies.reviewers import ReviewOutcome
    from bot.strategies.sma import SMACrossStrategy

__all__ = [
    "get_strategy", "STRATEGIES", "Strategy", "StrategyContext", "Decision", "FLAT", "LONG", "SHORT",
    "DQNStrategy", "AnalystStrategy", "SMACrossStrategy", "ReviewPipeline", "ReviewedStrategy",
    "ReviewOutcome", "Lesson", "lessons_text", "parse_lessons", "refresh_lessons",
]

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


# public name -> the submodule that defines it (get_strategy and STRATEGIES live here)
_EXPORTS = {
    "Strategy": "base", "StrategyContext": "base", "Decision": "base", "FLAT": "base",
    "LONG": "base", "SHORT": "base", "DQNStrategy": "dqn", "AnalystStrategy": "analyst",
    "SMACrossStrategy": "sma", "ReviewPipeline": "review", "ReviewedStrategy": "review",
    "ReviewOutcome": "reviewers", "Lesson": "lessons", "lessons_text": "lessons",
    "parse_lessons": "lessons", "refresh_lessons": "lessons",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
