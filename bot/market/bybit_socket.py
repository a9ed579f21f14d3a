"""One Bybit V5 WebSocket kept alive: pybit's `WebSocket` (the real client), watched from a thread
that reopens it with backoff when it drops, stalls or dies, and says so.

pybit has no endpoint argument: `_BybitSocket` only swaps the official host for `BYBIT_WS_URL`
(keeping pybit's path, `/v5/public/<category>` or `/v5/private`) and drops a malformed frame with
one log line instead of letting it end the link (pybit raises in its receive thread on a frame
that is not JSON or has no known topic, and closes). Reconnection is ours, not pybit's
(`restart_on_error=False`): pybit's own retries run back to back without a pause and then stop
for good, and it does not notice a stream that stays open but goes silent.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["StreamLink", "LinkState", "LinkedStream", "ws_base_url"]

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0


class _Demote(logging.Filter):
    """pybit and websocket-client log a dropped link as ERROR (twice, with the callback's repr);
    here that is expected and `StreamLink` says it once, so their lines go to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


for _name in ("websocket", "pybit._websocket_stream"):
    logging.getLogger(_name).addFilter(_Demote())


class LinkState:
    """Where a link is; plain strings, shown as they are."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DOWN = "down"
    CLOSED = "closed"


def ws_base_url(settings: Any) -> str | None:
    """The WebSocket base for these settings: BYBIT_WS_URL; "" = pybit's official hosts; None = no
    stream at all (BYBIT_BASE_URL points somewhere else, so the official streams would be the wrong
    exchange: REST polling only)."""
    url = str(getattr(settings, "BYBIT_WS_URL", "") or "")
    if url:
        return url.rstrip("/")
    if getattr(settings, "BYBIT_BASE_URL", ""):
        return None
    return ""


@functools.cache
def _socket_class() -> type:
    from pybit.unified_trading import WebSocket

    class _BybitSocket(WebSocket):  # type: ignore[misc]
        """pybit's client with the host swapped, malformed frames survived, and two of its waits bounded."""

        def __init__(self, channel_type: str, *, base_url: str, name: str, **kwargs: Any) -> None:
            self._base_url = base_url
            self._name = name
            self.last_message = time.monotonic()
            self.malformed = 0
            super().__init__(channel_type, **kwargs)

        def _connect(self, url: str) -> None:
            if self._base_url:
                url = self._base_url + urlsplit(url).path   # ".../v5/public/linear" or ".../v5/private"
            super()._connect(url)

        def is_connected(self) -> bool:
            # pybit's subscribe() waits `while not self.is_connected()` with no end: on a link already
            # closed (keys refused a moment ago) it would wait forever. Closed for good ends the wait.
            if self.exited:
                raise ConnectionAbortedError(f"Bybit {self._name} stream closed before subscribing")
            return bool(super().is_connected())

        def _on_message(self, message: str) -> None:
            self.last_message = time.monotonic()
            try:
                msg = json.loads(message)
            except ValueError:
                msg = None
            # what pybit can take: a pong, a control reply, or a push on a topic it has a callback for
            known = isinstance(msg, dict) and (
                msg.get("ret_msg") == "pong" or msg.get("op") in ("pong", "auth", "subscribe", "unsubscribe")
                or msg.get("type") in ("AUTH_RESP", "COMMAND_RESP") or msg.get("topic") in self.callback_directory)
            if not known:
                self.malformed += 1
                log.warning("Bybit %s stream: malformed message ignored (%d so far): %.120r",
                            self._name, self.malformed, message)
                return
            if msg.get("op") in ("subscribe", "unsubscribe") and msg.get("req_id"):
                # pybit records a subscription's req_id only after sending it: a near server's ack can
                # come first and would raise KeyError in pybit's receive thread (ending the link).
                end = time.monotonic() + 2.0
                while msg["req_id"] not in self.subscriptions and time.monotonic() < end:
                    time.sleep(0.001)
                if msg["req_id"] not in self.subscriptions:
                    log.warning("Bybit %s stream: ack for an unknown request ignored: %.120r", self._name, message)
                    return
            super()._on_message(message)

    return _BybitSocket


class StreamLink:
    """Opens a pybit WebSocket on `channel` ("linear", "spot" or "private"), calls `subscribe(ws)`,
    and keeps it open: reopened with backoff (0.5 s doubling to 30 s) when the link drops, when no
    message (data or pong) came for `stall_seconds`, or when pybit gave up on it.

    `on_state(state, why)` is called from the link's thread on every change (LinkState);
    `epoch` counts successful connections, so a reader can tell a reconnect happened."""

    def __init__(self, channel: str, subscribe: Callable[[Any], None], *, base_url: str, testnet: bool = False,
                 demo: bool = False, api_key: str | None = None, api_secret: str | None = None, ping_seconds: float = 20.0,
                 stall_seconds: float = 60.0, on_state: Callable[[str, str], None] | None = None,
                 name: str = "") -> None:
        self.channel = channel
        self.name = name or channel
        self._subscribe = subscribe
        self._base_url = base_url
        self._testnet = testnet
        self._demo = demo
        self._keys = (api_key, api_secret)
        self.ping_seconds = float(ping_seconds)
        self.stall_seconds = float(stall_seconds)
        self._on_state = on_state
        self.state = LinkState.CONNECTING
        self.why = ""
        self.epoch = 0
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: Any = None

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> "StreamLink":
        self._thread = threading.Thread(target=self._run, name=f"bybit-ws-{self.name}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._set(LinkState.CLOSED, "closed")

    @property
    def connected(self) -> bool:
        return self.state == LinkState.CONNECTED

    @property
    def malformed(self) -> int:
        ws = self._ws
        return int(getattr(ws, "malformed", 0)) if ws is not None else 0

    def wait_connected(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.connected:
                return True
            self._stop.wait(0.02)
        return self.connected

    # -- the watch -----------------------------------------------------------------------------
    def _set(self, state: str, why: str) -> None:
        if state == self.state and why == self.why:
            return
        if state == LinkState.DOWN:
            log.info("Bybit %s stream down: %s", self.name, why)
        elif state == LinkState.CONNECTED:
            log.info("Bybit %s stream connected (connection %d)", self.name, self.epoch)
        self.state, self.why = state, why
        if self._on_state is not None:
            try:
                self._on_state(state, why)
            except Exception:
                log.exception("Bybit %s stream: state callback failed", self.name)

    def _open(self) -> Any:
        key, secret = self._keys
        kwargs: dict[str, Any] = dict(testnet=self._testnet, demo=self._demo, ping_interval=self.ping_seconds,
                                      ping_timeout=self.ping_seconds / 2, restart_on_error=False,
                                      # pybit counts down before it checks: 2 = one attempt, raising if it fails
                                      retries=2)
        if key and secret:
            kwargs.update(api_key=key, api_secret=secret)
        ws = _socket_class()(self.channel, base_url=self._base_url, name=self.name, **kwargs)
        try:
            self._subscribe(ws)
        except Exception:
            ws.exit()
            raise
        return ws

    def _dead(self, ws: Any) -> str:
        """Why the open link `ws` is no good any more, or ""."""
        if ws.exited or not ws.is_connected():
            return "connection lost"
        silent = time.monotonic() - ws.last_message
        if silent > self.stall_seconds:
            return f"no message for {silent:.1f} s (stalled)"
        return ""

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                ws = self._open()
            except Exception as exc:   # refused, timed out, auth refused: all mean "try again later"
                failures += 1
                self._set(LinkState.DOWN, f"cannot connect: {type(exc).__name__}: {str(exc)[:160]}")
                self._stop.wait(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures - 1)))
                continue
            self._ws = ws
            opened = time.monotonic()
            self.epoch += 1
            if self.epoch > 1:
                self.reconnects += 1
            self._set(LinkState.CONNECTED, "")
            why = ""
            while not self._stop.wait(0.05):
                why = self._dead(ws)
                if why:
                    break
            try:
                ws.exit()
            except Exception:   # the socket is gone either way
                log.debug("Bybit %s stream: exit failed", self.name, exc_info=True)
            if self._stop.is_set():
                break
            self._set(LinkState.DOWN, why)
            # a link that lived a while starts the backoff afresh; one that dies at once (keys refused,
            # a server that hangs up) backs off further each time
            failures = 1 if time.monotonic() - opened > max(10.0, self.stall_seconds) else failures + 1
            self._stop.wait(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (failures - 1)))


class LinkedStream:
    """A stream over one `StreamLink` made from the settings (the kline and the private streams)."""

    link: StreamLink

    def _make_link(self, settings: Any, channel: str, *, base_url: str, on_state: Callable[[str, str], None] | None,
                   name: str, keys: bool = False) -> None:
        # Bybit demo trading has its own private stream (pybit's demo=True: stream-demo.bybit.com);
        # its market data is mainnet's (or testnet's), so the public streams never take `demo`.
        self.link = StreamLink(
            channel, self._subscribe, base_url=base_url, testnet=settings.USE_TESTNET,
            demo=bool(getattr(settings, "BYBIT_DEMO", False)) and channel == "private",
            api_key=settings.BYBIT_API_KEY if keys else None, api_secret=settings.BYBIT_API_SECRET if keys else None,
            ping_seconds=settings.BYBIT_WS_PING_SECONDS, stall_seconds=settings.BYBIT_WS_STALL_SECONDS,
            on_state=on_state, name=name)

    def _subscribe(self, ws: Any) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self.link.start()
        return self

    def close(self) -> None:
        self.link.close()

    @property
    def connected(self) -> bool:
        return self.link.connected
