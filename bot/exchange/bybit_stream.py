"""The account as Bybit pushes it: the private `order`, `execution`, `position` and `wallet`
streams through pybit's WebSocket (auth with the API key: expires + HMAC signature, done by pybit).

A fill or an outside change (a stop-loss hit on Bybit, an order cancelled on the website) arrives
here within a second, as an `AccountUpdate`: given to `on_update` (called in pybit's receive
thread: keep it quick) and put on a queue (`get`, `drain`). While the stream is down nothing
arrives: the exchange adapter's REST calls stay the truth, and `connected` / `on_state` say so.
Rows are Bybit's own dicts (strings for numbers), untouched: the adapter reads them as it reads REST.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.market.bybit_socket import LinkedStream, ws_base_url

__all__ = ["AccountUpdate", "PrivateStream", "PRIVATE_TOPICS"]

log = logging.getLogger(__name__)

PRIVATE_TOPICS = ("order", "execution", "position", "wallet")


@dataclass(frozen=True)
class AccountUpdate:
    """One push of a private topic: `rows` as Bybit sent them, `creation_ms` Bybit's time of the
    push, `received` the local monotonic time it arrived."""

    topic: str
    rows: tuple[dict[str, Any], ...]
    creation_ms: int
    received: float


class PrivateStream(LinkedStream):
    """Order, execution, position and wallet pushes for the account of the settings' API key."""

    def __init__(self, settings: Any, *, on_update: Callable[[AccountUpdate], None] | None = None,
                 on_state: Callable[[str, str], None] | None = None, base_url: str | None = None,
                 maxsize: int = 10_000, keep: bool = True) -> None:
        """`keep`: also queue every update for `get` / `drain` (False: `on_update` alone takes them)."""
        url = ws_base_url(settings) if base_url is None else base_url
        if url is None:
            raise ValueError("no private stream: BYBIT_BASE_URL is set without BYBIT_WS_URL")
        if not (settings.BYBIT_API_KEY and settings.BYBIT_API_SECRET):
            raise ValueError("the private stream needs BYBIT_API_KEY and BYBIT_API_SECRET")
        self._on_update = on_update
        self._keep = keep
        self._queue: queue.Queue[AccountUpdate] = queue.Queue(maxsize=maxsize)
        self.bad_messages = 0
        self.dropped = 0
        self._make_link(settings, "private", base_url=url, on_state=on_state, name="private", keys=True)

    def _subscribe(self, ws: Any) -> None:
        ws.order_stream(callback=self._on_message)
        ws.execution_stream(callback=self._on_message)
        ws.position_stream(callback=self._on_message)
        ws.wallet_stream(callback=self._on_message)

    def _on_message(self, msg: dict[str, Any]) -> None:
        # Runs in pybit's receive thread: anything raised here would end the link, so nothing is.
        try:
            topic = str(msg["topic"])
            rows = tuple(dict(r) for r in msg["data"])
            update = AccountUpdate(topic, rows, int(msg.get("creationTime") or 0), time.monotonic())
        except (KeyError, TypeError, ValueError) as exc:
            self.bad_messages += 1
            log.warning("Bybit private stream: malformed %s message ignored (%s)", msg.get("topic", "?")
                        if isinstance(msg, dict) else "?", exc)
            return
        try:
            if self._keep:
                self._queue.put_nowait(update)
        except queue.Full:
            self.dropped += 1
            log.warning("Bybit private stream: queue full, %s update dropped (%d so far); REST stays the truth",
                        topic, self.dropped)
        if self._on_update is not None:
            try:
                self._on_update(update)
            except Exception:
                log.exception("Bybit private stream: on_update failed on a %s update", topic)

    def get(self, timeout: float) -> AccountUpdate | None:
        """The next update, waiting up to `timeout` seconds; None when none came."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def drain(self) -> list[AccountUpdate]:
        """Every update waiting, oldest first, without waiting."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
