"""AI Trading Terminal: the bot, in parts. docs/architecture.md has the picture, the import rules
(checked by self_test/test_architecture.py), the threads and the path of one closed candle.

    market      candles in and out            analysis    indicators, features, metrics
    agent       the DQN learner               strategies  decision makers, reviews, lessons
    engine      the running bot               safety      risk manager, circuit breaker, supervisor
    exchange    paper wallet, Bybit, executor journal     the SQLite journal
    alerts      Telegram                      research    backtest, walk-forward, optimiser
    ui          the desktop window            cli         `python -m bot COMMAND`
    dashboard   the bot in a web browser

The primitives every part may import, and which import no part: errors, atomic, log_setup, types
(the domain records) and events (the event bus). Every package loads its names on first use
(PEP 562), so importing a package costs only what is then used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot import (
        agent,
        alerts,
        analysis,
        atomic,
        cli,
        dashboard,
        engine,
        errors,
        events,
        exchange,
        journal,
        log_setup,
        market,
        research,
        safety,
        strategies,
        types,
        ui,
    )

__all__ = [
    "market", "analysis", "agent", "strategies", "engine", "safety", "exchange", "journal",
    "alerts", "research", "ui", "cli", "dashboard", "errors", "atomic", "log_setup", "types", "events",
]


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` that load each public name from its submodule on
    first use (PEP 562). `exports` maps a public name to the submodule defining it; a name mapped
    to itself is that submodule."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{exports[name]}")
        value = module if exports[name] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)   # later lookups are plain attributes
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(__name__, {name: name for name in __all__})
