"""A fake Telegram Bot API on 127.0.0.1: the real python-telegram-bot client talks to it.

It answers `POST /bot<token>/<method>` as the Bot API does (`{"ok": true, "result": ...}`;
errors as `{"ok": false, "error_code": ..., "description": ..., "parameters": ...}`) for the
methods the notifier uses: `getMe` and `sendMessage` (each accepted message is recorded with
its chat id and text). A wrong token gets 401 Unauthorized, as the real server answers.

Failure modes for tests:
- `flood(n, retry_after)`: the next n sendMessage calls get 429 with `parameters.retry_after`;
- `mode = "down"`: every call gets 502 Bad Gateway (the client raises NetworkError);
- `mode = "hang"`: calls are held until `release()` (or the client's timeout);
- `stop()`: nothing listens any more (connection refused).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from self_test.fakes.loopback import LoopbackServer

__all__ = ["FakeTelegram", "SentMessage", "TOKEN"]

TOKEN = "123456789:AAFakeTokenForLoopbackTestsOnly_0123"


@dataclass(frozen=True)
class SentMessage:
    chat_id: str
    text: str
    time: float


class FakeTelegram(LoopbackServer):
    """`with FakeTelegram() as tg:` then point the notifier at `tg.url` (TELEGRAM_BASE_URL)."""

    thread_name = "fake-telegram"

    def __init__(self, *, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.lock = threading.Lock()
        self.messages: list[SentMessage] = []
        self.calls: list[tuple[str, float]] = []      # (method, time) of every request, answered or not
        self.mode = "up"
        self._floods: list[int] = []                   # retry_after values to answer with, in order
        self._released = threading.Event()
        self._next_id = 1

    # -- life ------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:
                try:
                    fake._handle(self)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up on a held call
                    pass

            do_GET = do_POST

        return _H

    def stop(self) -> None:
        self._released.set()
        super().stop()

    # -- faults ----------------------------------------------------------------------------------
    def flood(self, n: int = 1, retry_after: int = 1) -> None:
        with self.lock:
            self._floods.extend([retry_after] * n)

    def hang(self) -> None:
        self._released.clear()
        self.mode = "hang"

    def release(self) -> None:
        self.mode = "up"
        self._released.set()

    def texts(self) -> list[str]:
        with self.lock:
            return [m.text for m in self.messages]

    def send_times(self, method: str = "sendMessage") -> list[float]:
        with self.lock:
            return [t for m, t in self.calls if m == method]

    # -- HTTP ------------------------------------------------------------------------------------
    def _reply(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _error(self, h: BaseHTTPRequestHandler, code: int, description: str, **parameters: Any) -> None:
        payload: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            payload["parameters"] = parameters
        self._reply(h, code, payload)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode() if length else ""
        if "json" in (h.headers.get("Content-Type") or ""):
            params = {k: str(v) for k, v in (json.loads(raw or "{}")).items()}
        else:
            params = dict(parse_qsl(raw, keep_blank_values=True))
        parts = path.strip("/").split("/")
        method = parts[-1] if len(parts) == 2 else ""
        with self.lock:
            self.calls.append((method, time.monotonic()))
        if self.mode == "hang":
            self._released.wait(60)
        if self.mode == "down":
            self._error(h, 502, "Bad Gateway")
            return
        if len(parts) != 2 or parts[0] != f"bot{self.token}":
            self._error(h, 401, "Unauthorized")
            return
        if method == "getMe":
            self._reply(h, 200, {"ok": True, "result": {
                "id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Trading Terminal",
                "username": "trading_terminal_test_bot", "can_join_groups": False,
                "can_read_all_group_messages": False, "supports_inline_queries": False}})
            return
        if method == "sendMessage":
            with self.lock:
                retry_after = self._floods.pop(0) if self._floods else None
            if retry_after is not None:
                self._error(h, 429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
                return
            chat_id, text = params.get("chat_id", ""), params.get("text", "")
            if not chat_id or not text:
                self._error(h, 400, "Bad Request: message text is empty" if chat_id else
                            "Bad Request: chat not found")
                return
            with self.lock:
                self.messages.append(SentMessage(chat_id, text, time.monotonic()))
                mid = self._next_id
                self._next_id += 1
            chat = {"id": int(chat_id), "type": "private", "first_name": "Trader"}
            self._reply(h, 200, {"ok": True, "result": {
                "message_id": mid, "date": int(time.time()), "chat": chat, "text": text}})
            return
        self._error(h, 404, "Not Found: method not found")
