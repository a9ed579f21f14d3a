"""A fake Telegram Bot API on 127.0.0.1: the real python-telegram-bot client talks to it.

It answers `POST /bot<token>/<method>` as the Bot API does (`{"ok": true, "result": ...}`;
errors as `{"ok": false, "error_code": ..., "description": ..., "parameters": ...}`) for the
methods the notifier uses: `getMe` and `sendMessage` (each accepted message is recorded with
its chat id, text and inline keyboard). A wrong token gets 401 Unauthorized, as the real server
answers.

For commands (python-telegram-bot's `Application` long-polling): `getUpdates` holds the request
until an update is queued or its `timeout` passes, and confirms updates below `offset` as the
Bot API does; `deleteWebhook` (drops pending updates when asked), `setMyCommands`,
`answerCallbackQuery` and `editMessageText` are recorded. A test plays the person with
`say(chat_id, "/status")` (a message with its bot_command entity) and `press(message, choice)`
(a callback query from an inline keyboard button).

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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from self_test.fakes.loopback import LoopbackServer

__all__ = ["FakeTelegram", "SentMessage", "TOKEN"]

TOKEN = "123456789:AAFakeTokenForLoopbackTestsOnly_0123"


@dataclass
class SentMessage:
    chat_id: str
    text: str
    time: float
    message_id: int = 0
    buttons: list[tuple[str, str]] = field(default_factory=list)   # (label, callback_data) of the keyboard
    edits: list[str] = field(default_factory=list)                   # texts it was edited to, in order


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
        self.updates: list[dict[str, Any]] = []       # queued for getUpdates, oldest first
        self._next_update = 1
        self._update_added = threading.Condition(self.lock)
        self.callback_answers: list[tuple[str, str]] = []   # (callback_query_id, text)
        self.menu: list[str] = []                      # commands set by setMyCommands

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
        with self._update_added:
            self._update_added.notify_all()
        super().stop()

    # -- the person on the other side ------------------------------------------------------------
    def _queue(self, kind: str, payload: dict[str, Any]) -> int:
        with self._update_added:
            uid = self._next_update
            self._next_update += 1
            self.updates.append({"update_id": uid, kind: payload})
            self._update_added.notify_all()
        return uid

    def say(self, chat_id: int | str, text: str) -> int:
        """A message from `chat_id` (a private chat with user id = chat id); its update id."""
        cid = int(chat_id)
        with self.lock:
            mid = self._next_id
            self._next_id += 1
        msg: dict[str, Any] = {"message_id": mid, "date": int(time.time()), "text": text,
                               "chat": {"id": cid, "type": "private", "first_name": "Trader"},
                               "from": {"id": cid, "is_bot": False, "first_name": "Trader"}}
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._queue("message", msg)

    def press(self, message: SentMessage, choice: str, *, from_chat: int | str | None = None) -> int:
        """Press the keyboard button of `message` whose label or callback data contains `choice`."""
        data = next(d for label, d in message.buttons if choice in label or d.endswith(":" + choice))
        cid = int(from_chat if from_chat is not None else message.chat_id)
        with self.lock:
            qid = str(self._next_id)
            self._next_id += 1
        return self._queue("callback_query", {
            "id": qid, "chat_instance": "1", "data": data,
            "from": {"id": cid, "is_bot": False, "first_name": "Trader"},
            "message": {"message_id": message.message_id, "date": int(time.time()), "text": message.text,
                        "chat": {"id": int(message.chat_id), "type": "private", "first_name": "Trader"}}})

    def to(self, chat_id: int | str) -> list[SentMessage]:
        with self.lock:
            return [m for m in self.messages if m.chat_id == str(chat_id)]

    def _get_updates(self, params: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 30.0)
        deadline = time.monotonic() + timeout
        with self._update_added:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]   # confirmed by offset
            while not self.updates and self._server is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._update_added.wait(min(left, 0.5))
            return list(self.updates)

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
            params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (json.loads(raw or "{}")).items()}
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
        if method == "getUpdates":
            self._reply(h, 200, {"ok": True, "result": self._get_updates(params)})
            return
        if method == "deleteWebhook":
            if params.get("drop_pending_updates") in ("True", "true", "1"):
                with self.lock:
                    self.updates.clear()
            self._reply(h, 200, {"ok": True, "result": True})
            return
        if method == "setMyCommands":
            with self.lock:
                self.menu = [c["command"] for c in json.loads(params.get("commands") or "[]")]
            self._reply(h, 200, {"ok": True, "result": True})
            return
        if method == "answerCallbackQuery":
            with self.lock:
                self.callback_answers.append((params.get("callback_query_id", ""), params.get("text", "")))
            self._reply(h, 200, {"ok": True, "result": True})
            return
        if method == "editMessageText":
            mid, text = int(params.get("message_id") or 0), params.get("text", "")
            with self.lock:
                found = next((m for m in self.messages if m.message_id == mid), None)
                if found is not None:
                    found.edits.append(text)
            if found is None:
                self._error(h, 400, "Bad Request: message to edit not found")
                return
            self._reply(h, 200, {"ok": True, "result": {
                "message_id": mid, "date": int(time.time()), "text": text,
                "chat": {"id": int(found.chat_id), "type": "private", "first_name": "Trader"}}})
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
            markup = json.loads(params.get("reply_markup") or "{}")
            buttons = [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", [])
                       for b in row]
            with self.lock:
                mid = self._next_id
                self._next_id += 1
                self.messages.append(SentMessage(chat_id, text, time.monotonic(), mid, buttons))
            chat = {"id": int(chat_id), "type": "private", "first_name": "Trader"}
            self._reply(h, 200, {"ok": True, "result": {
                "message_id": mid, "date": int(time.time()), "chat": chat, "text": text}})
            return
        self._error(h, 404, "Not Found: method not found")
