"""The bot as a program runs it: the engine, the Telegram notifier listening on its bus, and their
life (start, stop, shutdown) in one place. The window (bot/ui/) and `python -m bot paper|live`
both build it with `assemble`; neither wires the engine, the notifier or the journals itself.

    app = assemble(settings, strategy="sma")
    app.start("PAPER")           # the notifier first, so the session's first events reach Telegram
    ...
    app.shutdown(close_positions=False)   # engine stopped, notifier flushed, own journals closed
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.alerts.telegram import TelegramNotifier
from bot.engine.trading_engine import TradingEngine

if TYPE_CHECKING:
    from bot.market.top_pairs import PairManager
    from bot.strategies.base import Strategy
    from config import Settings

__all__ = ["App", "assemble", "fixed_pairs"]

log = logging.getLogger("bot.engine.app")


class Companion(Protocol):
    """Something started beside the engine (the web dashboard) that ends with the app."""

    def stop(self) -> None: ...


class App:
    """The engine and its notifier, with one life: `start`, `stop`, `shutdown`."""

    def __init__(self, settings: Settings, engine: TradingEngine, *, notifier: TelegramNotifier | None = None) -> None:
        """`notifier`: default one on the engine's bus, built from the TELEGRAM_* settings (off
        without a token and chat id)."""
        self.settings = settings
        self.engine = engine
        self.notifier = notifier if notifier is not None else TelegramNotifier(settings, bus=engine.bus)
        from bot.engine.remote import RemoteControl

        self.remote = RemoteControl(self)   # what Telegram commands and the web dashboard read and order
        if settings.TELEGRAM_COMMANDS and not self.notifier.serving_commands:
            self.notifier.serve_commands(self.remote)
        self.companions: list[Companion] = []   # started with the app, stopped by its shutdown (the dashboard)
        self._down = False

    @property
    def running(self) -> bool:
        return self.engine.running

    def start(self, mode: str = "PAPER") -> None:
        """Start the notifier (once), then the engine in PAPER or LIVE (LIVE needs keys and consent)."""
        if self._down:
            raise RuntimeError("this app was shut down; assemble a new one")
        self.notifier.start()
        self.engine.start(mode)

    def stop(self, *, close_positions: bool, timeout: float = 30.0) -> None:
        """Stop the engine (it can be started again); the notifier keeps listening."""
        self.engine.stop(close_positions=close_positions, timeout=timeout)

    def shutdown(self, *, close_positions: bool = False, timeout: float = 30.0) -> None:
        """For good: stop the engine if it runs, send what the notifier still holds (the stop's
        own alerts included), and close the journals the engine opened."""
        if self._down:
            return
        if self.engine.running:
            self.engine.stop(close_positions=close_positions, timeout=timeout)
        self.notifier.stop()
        for companion in self.companions:
            try:
                companion.stop()
            except Exception:
                log.exception("shutdown: %r did not stop cleanly", companion)
        if self.engine.running:
            log.error("shutdown: the engine thread is still running; its journals stay open")
        else:
            self.engine.close()
        self._down = True


def fixed_pairs(settings: Settings) -> PairManager:
    """A pair manager that always answers FALLBACK_SYMBOLS (the user chose them): no ranking, no network."""
    from bot.errors import DataError
    from bot.market.top_pairs import PairManager

    class _Fixed(PairManager):
        def fetch(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            raise DataError("pairs fixed by --symbols")

    return _Fixed(settings, cache_path=settings.data_dir / "fixed_pairs.json")


def assemble(settings: Settings, *, strategy: Strategy | str | None = None, symbols: Sequence[str] = (),
             force_replay: bool = False, engine: TradingEngine | None = None) -> App:
    """The app for `settings`: a `TradingEngine` (`strategy` name or object, default STRATEGY;
    `symbols`: trade these instead of the hot-pair ranking; `force_replay`: replay recorded
    candles without asking Bybit), or the `engine` given, and its Telegram notifier."""
    if engine is None:
        pairs = None
        chosen = tuple(s.strip().upper() for s in symbols if s.strip())
        if chosen:
            settings = settings.replace(FALLBACK_SYMBOLS=chosen, TOP_PAIRS_COUNT=len(chosen))
            pairs = fixed_pairs(settings)
        engine = TradingEngine(settings, strategy=strategy, pairs=pairs, force_replay=force_replay)
    return App(settings, engine)
