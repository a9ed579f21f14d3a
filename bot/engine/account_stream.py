"""The live session's private streams: started on the exchange when it has them (Bybit), their
state changes told on the bus (an alert when they come back after a drop), and the outside changes
they saw handed to the session so it reconciles at once.

While the streams are up, fills and the account view come pushed (bot/exchange/bybit_account.py);
while they are down the exchange reads over REST every ACCOUNT_REFRESH_SECONDS and the snapshot's
`account_stream` says Polling-REST, like the market feed's `connection`.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.events import EventBus, EventKind
from bot.market.bybit_socket import LinkState

__all__ = ["AccountStream"]

log = logging.getLogger("bot.engine")


class AccountStream:
    """Starts `exchange.start_stream` (if the exchange has one) and tells its changes on `bus`."""

    def __init__(self, exchange: Any, bus: EventBus, *, refresh_seconds: float) -> None:
        self.exchange = exchange
        self.bus = bus
        self.refresh_seconds = refresh_seconds
        self._told = ""
        self._connections = 0
        start = getattr(exchange, "start_stream", None)
        self.on = bool(callable(start) and start(on_state=self._on_state))

    def _on_state(self, state: str, why: str) -> None:
        told, self._told = self._told, state
        if state == told:
            return                  # each failed attempt while down is logged by the link, not re-announced
        if state == LinkState.CONNECTED:
            self._connections += 1
            again = self._connections > 1
            self.bus.emit(EventKind.DATA, f"LIVE account: Bybit private stream {'back' if again else 'connected'}: "
                          "fills and account changes pushed", account_stream=state, alert=again)
        elif state == LinkState.DOWN:
            self.bus.emit(EventKind.DATA, f"LIVE account: Bybit private stream down ({why}); balance, positions and "
                          f"fills read over REST (every {self.refresh_seconds:g} s) until it is back",
                          level="WARNING", account_stream=state)

    def outside_changes(self) -> set[str]:
        """Symbols changed from outside the bot since the last call (see BybitExchange)."""
        take = getattr(self.exchange, "take_outside_changes", None)
        return set(take()) if callable(take) else set()

    def close(self) -> None:
        close = getattr(self.exchange, "close_stream", None)
        if callable(close):
            close()
