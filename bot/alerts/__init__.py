"""Alerts: Telegram. `TelegramNotifier` runs python-telegram-bot on a thread of its own with
its own asyncio loop, fed by a queue from the event bus: the trading loop never waits for it,
and an alert it gives up on is logged, never dropped silently.

It imports only the primitives (events, log_setup). Names load on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.alerts.telegram import TelegramNotifier

__all__ = [
    "TelegramNotifier",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "TelegramNotifier": "telegram",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    value = module if _EXPORTS[name] == name else getattr(module, name)
    globals()[name] = value   # later lookups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
