"""The life every fake server shares: HTTP on 127.0.0.1 (a free port unless one is given), served
from a daemon thread, stopped promptly, usable as a with-block. Subclasses only say how to answer
(`_handler_class`)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Base of the fake Bybit, Telegram and OpenAI servers used by the tests."""

    thread_name = "fake-server"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._address: tuple[str, int] | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self, port: int = 0) -> Any:
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._address = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},  # quick stop()
                         name=self.thread_name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (kept after stop(), so a client then meets a closed port)."""
        assert self._address is not None, "start() the fake first"
        return f"http://{self._address[0]}:{self._address[1]}"

    def serve_until_interrupted(self) -> int:
        """For a fake started by hand: serve until Ctrl-C, then stop; returns the exit code 0."""
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        return 0
