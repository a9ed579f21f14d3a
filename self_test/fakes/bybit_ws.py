"""A fake Bybit V5 WebSocket server on 127.0.0.1 for tests: the real pybit `WebSocket` talks to it.

It speaks the protocol as ../shared/bybit_v5_reference.md (section 6) describes it and pybit needs
it: paths `/v5/public/<category>` and `/v5/private`; `{"op": "auth", "args": [key, expires,
signature]}` checked like the REST fake checks its requests (the key, HMAC-SHA256 of
"GET/realtime" + expires with the secret, expires not in the past), private topics refused before
auth; subscribe / unsubscribe acks echoing `req_id`; `{"op": "ping"}` answered with the public or
private pong shape; pushes `{"topic", "type", "ts", "data"}` (public) and `{"id", "topic",
"creationTime", "data"}` (private). WebSocket-protocol pings are answered by the server library.

Given the REST fake (`FakeBybitStream(rest)`), it shares its account and candles: an order placed
over REST is pushed on `order`, `execution`, `position` and `wallet`; `tick()` pushes the candles
of the REST fake's kline frames that closed since the last tick (`confirm: true`) and the one still
open (`confirm: false`), at the REST fake's clock.

Faults: `drop()` cuts connections without a close frame, `stall()` makes a connection go silent
(no pushes, no pongs) while staying open, `send_malformed()` sends a frame that is not Bybit's,
`refuse()` answers new handshakes with HTTP 503.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from self_test.fakes.bybit_server import FakeBybit, _fmt

__all__ = ["FakeBybitStream"]

PUBLIC_PATHS = ("/v5/public/linear", "/v5/public/spot", "/v5/public/inverse", "/v5/public/option")
PRIVATE_PATH = "/v5/private"
PRIVATE_TOPICS = ("order", "execution", "position", "wallet", "greeks", "execution.fast")
PUBLIC_PREFIXES = ("kline.", "tickers.", "orderbook.", "publicTrade.", "liquidation.")
SPOT_ARGS_MAX = 10
_STEP_MS = {"D": 86_400_000, "W": 604_800_000}


def _step_ms(interval: str) -> int:
    return _STEP_MS.get(interval) or int(interval) * 60_000


class _Conn:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.path = ws.request.path if ws.request is not None else ""
        self.id = uuid.uuid4().hex[:12]
        self.out: queue.Queue[str] = queue.Queue()
        self.topics: set[str] = set()
        self.authed = False
        self.stalled = threading.Event()

    @property
    def private(self) -> bool:
        return self.path == PRIVATE_PATH


class FakeBybitStream:
    """Start with `with FakeBybitStream(rest) as ws:`; point BYBIT_WS_URL at `ws.url`."""

    def __init__(self, rest: FakeBybit | None = None, *, api_key: str | None = None,
                 api_secret: str | None = None, clock: Callable[[], float] | None = None,
                 auth_clock: Callable[[], float] = time.time) -> None:
        self.rest = rest
        self.api_key = api_key or (rest.api_key if rest else "testkey")
        self.api_secret = api_secret or (rest.api_secret if rest else "testsecret")
        self.clock = clock or (rest.clock if rest else time.time)
        self.auth_clock = auth_clock      # the client's wall clock, for the `expires` check
        self.lock = threading.Lock()
        self.conns: list[_Conn] = []
        self.opened = 0                                   # connections accepted so far
        self.received: list[tuple[str, dict[str, Any]]] = []   # (path, client message)
        self.auth_results: list[bool] = []
        self.refused: list[str] = []                          # ret_msg of each subscribe refused
        self.refusing = False
        self._server: Server | None = None
        self._address: tuple[str, int] | None = None
        self._tick_ms: int | None = None
        if rest is not None:
            rest.book.listeners.append(self._on_book)

    # -- life ----------------------------------------------------------------------------------
    def start(self, port: int = 0) -> "FakeBybitStream":
        self._server = serve(self._handle, "127.0.0.1", port, process_request=self._process_request,
                             ping_interval=None, compression=None)
        self._address = self._server.socket.getsockname()[:2]
        self._tick_ms = self.now_ms()
        threading.Thread(target=self._server.serve_forever, name="fake-bybit-ws", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.drop()
            self._server.shutdown()
            self._server = None

    def __enter__(self) -> "FakeBybitStream":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._address is not None, "start() the fake first"
        return f"ws://{self._address[0]}:{self._address[1]}"

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- server side ---------------------------------------------------------------------------
    def _process_request(self, ws: ServerConnection, request: Any) -> Any:
        if self.refusing:
            return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "refused by the test\n")
        if request.path not in PUBLIC_PATHS + (PRIVATE_PATH,):
            return ws.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn(ws)
        with self.lock:
            self.conns.append(conn)
            self.opened += 1
        try:
            while True:
                try:
                    raw = ws.recv(timeout=0.02)
                except TimeoutError:
                    raw = None
                if conn.stalled.is_set():
                    continue                        # reads, never answers: a stalled server
                if raw is not None:
                    self._client_message(conn, raw)
                while True:
                    try:
                        ws.send(conn.out.get_nowait())
                    except queue.Empty:
                        break
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                if conn in self.conns:
                    self.conns.remove(conn)

    def _reply(self, conn: _Conn, msg: dict[str, Any]) -> None:
        conn.out.put(json.dumps(msg))

    def _client_message(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            op = msg.get("op")
        except (ValueError, AttributeError):
            self._reply(conn, {"success": False, "ret_msg": "error:invalid op", "conn_id": conn.id, "op": ""})
            return
        with self.lock:
            self.received.append((conn.path, msg))
        req_id = msg.get("req_id") or ""
        base = {"conn_id": conn.id, "req_id": req_id}
        if op == "ping":
            if conn.private:
                self._reply(conn, {**base, "op": "pong", "args": [str(self.now_ms())]})
            else:
                self._reply(conn, {"success": True, "ret_msg": "pong", **base, "op": "ping"})
        elif op == "auth":
            ok, why = self._check_auth(conn, msg.get("args"))
            conn.authed = conn.authed or ok
            with self.lock:
                self.auth_results.append(ok)
            self._reply(conn, {"success": ok, "ret_msg": why, "op": "auth", "conn_id": conn.id})
        elif op in ("subscribe", "unsubscribe"):
            args = [str(a) for a in msg.get("args") or []]
            why = self._check_topics(conn, args)
            if not why:
                with self.lock:
                    if op == "subscribe":
                        conn.topics.update(args)
                    else:
                        conn.topics.difference_update(args)
            if why:
                with self.lock:
                    self.refused.append(why)
            ret = "subscribe" if conn.path.endswith("/spot") and not why and op == "subscribe" else why
            self._reply(conn, {"success": not why, "ret_msg": ret, **base, "op": op})
        else:
            self._reply(conn, {"success": False, "ret_msg": f"error:invalid op {op!r}", **base, "op": op or ""})

    def _check_auth(self, conn: _Conn, args: Any) -> tuple[bool, str]:
        if not conn.private:
            return False, "error:auth is for the private channel"
        if not isinstance(args, list) or len(args) != 3:
            return False, "error:params error"
        key, expires, sign = args
        if key != self.api_key:
            return False, "error:Invalid apikey"
        try:
            exp = int(expires)
        except (TypeError, ValueError):
            return False, "error:params error"
        if exp <= int(self.auth_clock() * 1000):     # checked against wall time, as Bybit does
            return False, "error:request expired"
        expected = hmac.new(self.api_secret.encode(), f"GET/realtime{exp}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(sign)):
            return False, "error:signature verification failed"
        return True, ""

    def _check_topics(self, conn: _Conn, topics: list[str]) -> str:
        if conn.path.endswith("/spot") and len(topics) > SPOT_ARGS_MAX:
            return f"error:args size >{SPOT_ARGS_MAX}"    # Bybit spot: at most 10 topics per request
        for t in topics:
            if conn.private:
                if t not in PRIVATE_TOPICS:
                    return f"error:handler not found,topic:{t}"
                if not conn.authed:
                    return "error:request not authorized"
            elif not t.startswith(PUBLIC_PREFIXES):
                return f"error:handler not found,topic:{t}"
        return ""

    # -- pushes --------------------------------------------------------------------------------
    def publish(self, topic: str, data: Any, *, kind: str = "snapshot") -> int:
        """Push `data` on `topic` to every connection subscribed to it; returns how many."""
        now = self.now_ms()
        with self.lock:
            targets = [c for c in self.conns if topic in c.topics]
        for c in targets:
            if c.private:
                self._reply(c, {"id": uuid.uuid4().hex, "topic": topic, "creationTime": now, "data": data})
            else:
                self._reply(c, {"topic": topic, "type": kind, "ts": now, "data": data})
        return len(targets)

    def kline_row(self, interval: str, start: int, values: Any, *, confirm: bool) -> dict[str, Any]:
        o, h, lo, c, v, t = (float(x) for x in values)
        return {"start": int(start), "end": int(start) + _step_ms(interval) - 1, "interval": interval,
                "open": _fmt(o), "close": _fmt(c), "high": _fmt(h), "low": _fmt(lo), "volume": _fmt(v),
                "turnover": _fmt(t), "confirm": confirm, "timestamp": self.now_ms()}

    def tick(self) -> list[tuple[str, int, bool]]:
        """Push, for every kline frame of the REST fake, the candles that closed since the last tick
        (`confirm: true`) and then the one still open (`confirm: false`). Returns (topic, start,
        confirm) of each push made, whether anyone listened or not (candles nobody hears are lost)."""
        assert self.rest is not None, "tick() needs the REST fake's candles"
        now = self.now_ms()
        prev = self._tick_ms if self._tick_ms is not None else now
        self._tick_ms = now
        pushed = []
        with self.rest.lock:
            frames = dict(self.rest.klines)
        for (symbol, interval), frame in frames.items():
            step = _step_ms(interval)
            idx = np.asarray(frame.index, dtype=np.int64)
            vals = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
            topic = f"kline.{interval}.{symbol}"
            for i in np.flatnonzero((idx + step > prev) & (idx + step <= now)):
                self.publish(topic, [self.kline_row(interval, int(idx[i]), vals[i], confirm=True)])
                pushed.append((topic, int(idx[i]), True))
            for i in np.flatnonzero((idx <= now) & (idx + step > now)):
                self.publish(topic, [self.kline_row(interval, int(idx[i]), vals[i], confirm=False)])
                pushed.append((topic, int(idx[i]), False))
        return pushed

    def _on_book(self, kind: str, o: dict[str, Any]) -> None:
        """The REST fake's account changed (called under its lock): push it on the private topics."""
        book = self.rest.book if self.rest is not None else None
        if book is None:
            return
        if kind in ("order", "fill"):
            self.publish("order", [{**book.order_row(o), "category": o["category"]}])
        if kind == "fill":
            self.publish("execution", [dict(book.executions[-1])])
        if kind in ("fill", "position") and o.get("category", "linear") == "linear":
            rows = book.position_rows({"category": "linear", "symbol": o["symbol"]})["list"]
            self.publish("position", [{**r, "entryPrice": r["avgPrice"], "category": "linear"} for r in rows])
        if kind == "fill":
            self.publish("wallet", book.wallet_rows({"accountType": "UNIFIED"})["list"])

    # -- faults --------------------------------------------------------------------------------
    def _matching(self, path: str) -> list[_Conn]:
        with self.lock:
            return [c for c in self.conns if c.path.startswith(path)]

    def drop(self, path: str = "") -> int:
        """Cut every connection whose path starts with `path`, without a close frame."""
        conns = self._matching(path)
        for c in conns:
            try:
                c.ws.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return len(conns)

    def stall(self, path: str = "") -> int:
        """Those connections stay open but send nothing more (no pushes, no pongs)."""
        conns = self._matching(path)
        for c in conns:
            c.stalled.set()
        return len(conns)

    def send_malformed(self, path: str = "", text: str = '{"topic": "kline.60.BTCUSDT", "data": [') -> int:
        """Send a frame that is not a valid Bybit message."""
        conns = self._matching(path)
        for c in conns:
            c.out.put(text)
        return len(conns)

    def refuse(self, on: bool = True) -> None:
        """Answer new handshakes with HTTP 503 (True) or accept them again (False)."""
        self.refusing = on

    # -- for the tests' waits ------------------------------------------------------------------
    def subscribed(self, topic: str, path: str = "") -> bool:
        return any(topic in c.topics for c in self._matching(path))

    def wait(self, cond: Callable[[], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.01)
        return bool(cond())
