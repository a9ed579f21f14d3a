"""What the window may read when no session is running, through the engine's part of the bot:
the paper record's journal (lessons live there) and the live account's balance.

The window never opens the journal or an exchange adapter itself (the import rules in
docs/architecture.md); these two doors are all it needs before Start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.journal.base import Journal
    from config import Settings

__all__ = ["open_record_journal", "record_journal_path", "live_balance"]


def record_journal_path(settings: Settings) -> Path:
    """Where the paper/live record is kept (historical_data/state.db)."""
    return Path(settings.data_dir) / "state.db"


def open_record_journal(settings: Settings) -> Journal | None:
    """The paper/live record's journal, or None when it has not been created yet (nothing is
    created by looking)."""
    if not record_journal_path(settings).exists():
        return None
    from bot.journal import store

    return store.Journal.for_settings(settings)


def live_balance(settings: Settings) -> float:
    """The Bybit account's USDT equity. Network: call it off the Tk thread."""
    from bot.exchange.bybit import BybitExchange  # only when live is chosen

    return float(BybitExchange.from_settings(settings).get_balance().equity)
