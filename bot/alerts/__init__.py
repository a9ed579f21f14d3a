"""Alerts: Telegram. `TelegramNotifier` runs python-telegram-bot on a thread of its own with
its own asyncio loop, fed by a queue from the event bus: the trading loop never waits for it,
and an alert it gives up on is logged, never dropped silently.

It imports only the primitives (events, log_setup). Names load on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.alerts.telegram import TelegramNotifier

__all__ = [
    "TelegramNotifier",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "TelegramNotifier": "telegram",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
