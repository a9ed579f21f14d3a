"""Engine: the bot running. `TradingEngine` (its thread; start, stop, pause; commands from other
threads; the snapshot and event queue the window reads), one session's loop over closed candles,
the per-candle step every mode shares (paper, live, backtest, a person's order button), the
wiring of its parts, per-pair state, the promotion gate, restart recovery and reconciliation,
and the records the window may read before Start.

It may import every part but the window, cli and research (they import it); exchange, journal
and market never import it (docs/architecture.md). Names load on first use (PEP 562):
`import bot.engine` imports neither torch nor pybit (the window builds its engine lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.engine.components import build_components
    from bot.engine.loop import seed_book
    from bot.engine.past import PastRecord, read_past
    from bot.engine.records import live_balance, open_record_journal, record_journal_path
    from bot.engine.recovery import recover
    from bot.engine.snapshot import EngineSnapshot, EngineStatus
    from bot.engine.trading_engine import LiveTradingRefused, TradingEngine

__all__ = [
    "TradingEngine", "LiveTradingRefused", "EngineSnapshot", "EngineStatus", "build_components",
    "seed_book", "recover", "PastRecord", "read_past", "live_balance", "open_record_journal", "record_journal_path",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "TradingEngine": "trading_engine", "LiveTradingRefused": "trading_engine",
    "EngineSnapshot": "snapshot", "EngineStatus": "snapshot", "build_components": "components",
    "seed_book": "loop", "recover": "recovery", "PastRecord": "past", "read_past": "past", "live_balance": "records",
    "open_record_journal": "records", "record_journal_path": "records",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
