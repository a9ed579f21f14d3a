"""A fake OpenAI-compatible chat server on 127.0.0.1: the real `openai` client talks to it.

It answers `POST /v1/chat/completions` in the shape the OpenAI API uses (`choices[0].message
.content`, `usage`, `model`), checks the `Authorization: Bearer <key>` header (401 otherwise),
and records every request body so tests can read the prompt, the schema and the attached image.

Modes (`fake.mode = ...`):
- "valid":   the assistant content is `json.dumps(fake.answer)`
- "garbage": the content is prose, not JSON
- "slow":    waits `fake.delay` seconds before answering (past the client's timeout)
- "error":   HTTP 500 with an OpenAI-style error body
- "no_schema": HTTP 400 for `response_format` json_schema (servers without structured outputs),
             a valid answer otherwise
- "down":    nothing listens on the port any more (connection refused); `stop()` does the same
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from self_test.fakes.loopback import LoopbackServer

__all__ = ["FakeOpenAI"]

MODES = ("valid", "garbage", "slow", "error", "no_schema", "down")


class FakeOpenAI(LoopbackServer):
    """Start with `with FakeOpenAI() as fake:`; point the client at `fake.base_url`."""

    thread_name = "fake-openai"

    def __init__(self, *, api_key: str = "sk-test-fake", model: str = "fake-reviewer-1") -> None:
        super().__init__()
        self.api_key = api_key
        self.model = model
        self.answer: dict[str, Any] = {"verdict": "approve", "reason": "trend and setup agree", "confidence": 70}
        self.garbage = "Sure! I think this trade looks great, go for it :)"
        self.delay = 5.0
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._mode = "valid"
        self._stopping = threading.Event()

    # -- life ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                fake._handle(self)

        return _H

    def stop(self) -> None:
        """Stop listening; the port stays reserved in `base_url` so clients get 'connection refused'."""
        self._stopping.set()
        super().stop()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"FakeOpenAI mode {value!r} is unknown; allowed: {', '.join(MODES)}")
        self._mode = value
        if value == "down":
            self.stop()

    def is_refusing(self) -> bool:
        """True when a TCP connect to the address is refused (the 'down' mode took effect)."""
        assert self._address is not None
        with socket.socket() as s:
            s.settimeout(1.0)
            return s.connect_ex(self._address) != 0

    # -- serving -------------------------------------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to tell it

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if h.path.rstrip("/") != "/v1/chat/completions":
            self._send(h, 404, {"error": {"message": f"no route {h.path}", "type": "invalid_request_error"}})
            return
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send(h, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                          "code": "invalid_api_key"}})
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(h, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        with self.lock:
            self.requests.append(request)
        mode = self._mode
        if mode == "slow":
            # Interruptible, so stop() never waits for a sleeping handler.
            if self._stopping.wait(self.delay):
                return
        if mode == "no_schema" and (request.get("response_format") or {}).get("type") == "json_schema":
            self._send(h, 400, {"error": {"message": "response_format json_schema is not supported",
                                          "type": "invalid_request_error"}})
            return
        if mode == "error":
            self._send(h, 500, {"error": {"message": "The server had an error", "type": "server_error"}})
            return
        content = self.garbage if mode == "garbage" else json.dumps(self.answer)
        self._send(h, 200, {
            "id": f"chatcmpl-fake-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })


def main(argv: list[str] | None = None) -> int:
    """Serve the fake by hand: `python -m self_test.fakes.openai_server --mode garbage`; then set
    LLM_BASE_URL to the printed URL, LLM_MODEL=fake-reviewer-1, LLM_API_KEY to the printed key."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--mode", choices=[m for m in MODES if m != "down"], default="valid")
    p.add_argument("--verdict", choices=("approve", "veto"), default="approve")
    p.add_argument("--delay", type=float, default=30.0, help="seconds the slow mode waits")
    args = p.parse_args(argv)
    fake = FakeOpenAI().start()
    fake.mode, fake.delay = args.mode, args.delay
    fake.answer = dict(fake.answer, verdict=args.verdict)
    print(f"fake OpenAI-compatible server ({args.mode}) at {fake.base_url}  key {fake.api_key}  "
          f"model {fake.model}; Ctrl-C stops it", flush=True)
    return fake.serve_until_interrupted()


if __name__ == "__main__":
    raise SystemExit(main())
