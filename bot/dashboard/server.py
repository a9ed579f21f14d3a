"""The web dashboard: FastAPI over the engine's `RemoteControl` (the snapshot, trade book, journal
and event bus the window reads), served by uvicorn on a thread of its own.

    GET  /                   the page (static HTML + JS; charts by the vendored lightweight-charts)
    GET  /api/state          status, positions, equity vs buy-and-hold, trades, events, promotion gate
    GET  /api/chart?symbol=  candles, trade markers, stop and take-profit of one pair
    GET  /api/stream         server-sent events: `state` every second, `event` as the bus publishes
    POST /api/control/{pause|resume|close-all}   only with DASHBOARD_ALLOW_CONTROL=true (403 otherwise)
    GET/POST /login, /logout when DASHBOARD_TOKEN is set (auth.py); 401 without it

No answer carries a setting, let alone a secret: the payloads are built from the snapshot only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from bot.dashboard.auth import COOKIE, LOOPBACK, TokenCheck, check_bind
from bot.engine.remote import CommandOutcome
from bot.log_setup import add_secrets, redact

if TYPE_CHECKING:
    from bot.engine.app import App
    from bot.engine.remote import RemoteControl
    from bot.events import Event

__all__ = ["create_app", "DashboardServer", "start_dashboard", "state_payload"]

log = logging.getLogger("bot.dashboard")

STATIC = Path(__file__).resolve().parent / "static"
STREAM_EVERY_S = 1.0
CONTROLS = ("pause", "resume", "close-all")
CONTROL_HEADER = "X-Requested-By"
REFUSED = CommandOutcome(False, "refused: the dashboard is read-only (DASHBOARD_ALLOW_CONTROL=false)")


def _event(e: Event) -> dict[str, Any]:
    return {"time": e.time_ms, "kind": e.kind, "level": e.level, "message": redact(e.message)}


def state_payload(control: RemoteControl, *, allow_control: bool, events: int = 50) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able data."""
    st = control.status()
    trades = control.trades(30)
    return {
        **st,
        "control": allow_control,
        "equity_curve": [{"time": t // 1000, "equity": e, "buy_hold": bh} for t, e, bh in control.equity_curve()],
        "trades": [{"symbol": t.symbol, "side": str(t.side), "qty": t.qty, "entry_price": t.entry_price,
                    "exit_price": t.exit_price, "entry_ms": t.entry_ms, "exit_ms": t.exit_ms, "pnl": t.pnl,
                    "fees": t.fees, "reason": t.reason} for t in reversed(trades)],
        "events": [_event(e) for e in control.events(events)],
    }


def create_app(control: RemoteControl, *, token: str = "", allow_control: bool = False) -> FastAPI:
    auth = TokenCheck(token)
    api = FastAPI(title="AI Trading Terminal", docs_url=None, redoc_url=None, openapi_url=None)

    @api.middleware("http")
    async def _guard(request: Request, call_next: Any) -> Any:
        path = request.url.path
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if not auth.required and host not in LOOPBACK:
            # open on loopback only for loopback names: a page elsewhere that rebinds its own name
            # to 127.0.0.1 (DNS rebinding) must not read or order anything
            return JSONResponse({"detail": f"host {host!r} refused: open without a token on loopback only"},
                                status_code=403)
        if path in ("/login", "/healthz", "/static/dashboard.css") or auth.allows(
                request.headers.get("authorization"), request.cookies.get(COOKIE)):
            response = await call_next(request)
        elif path.startswith("/api/") or request.headers.get("authorization"):
            response = JSONResponse({"detail": "missing or wrong dashboard token"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        else:
            response = RedirectResponse("/login", status_code=303)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        return response

    @api.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @api.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @api.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise HTTPException(404)
        types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
        return FileResponse(path, media_type=types.get(path.suffix, "text/plain"))

    @api.get("/login")
    async def login_form(bad: int = 0) -> HTMLResponse:
        page = (STATIC / "login.html").read_text(encoding="utf-8")
        return HTMLResponse(page.replace("<!--error-->", "<p class=error>Wrong token.</p>" if bad else ""),
                            status_code=401 if bad else 200)

    @api.post("/login")
    async def login(request: Request) -> Any:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        if not auth.required:
            return RedirectResponse("/", status_code=303)
        if not auth.token_ok(given):
            log.warning("dashboard: a login with a wrong token from %s", request.client.host if request.client else "?")
            return RedirectResponse("/login?bad=1", status_code=303)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, auth.session_value(), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https")
        return resp

    @api.get("/logout")
    async def logout() -> Any:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @api.get("/api/state")
    async def state() -> Response:
        return _json(await asyncio.to_thread(state_payload, control, allow_control=allow_control))

    @api.get("/api/chart")
    async def chart(symbol: str, n: int = 300) -> Response:
        data = await asyncio.to_thread(control.chart, symbol.upper(), max(10, min(n, 2000)))
        if data is None:
            raise HTTPException(404, f"no candles for {symbol.upper()} yet")
        return _json(data)

    @api.post("/api/control/{action}")
    async def act(action: str, request: Request) -> dict[str, Any]:
        if request.headers.get(CONTROL_HEADER) != "dashboard":
            # a plain cross-site form post cannot set this header: only the page's own script can
            raise HTTPException(403, f"a control request needs the header {CONTROL_HEADER}: dashboard")
        if action not in CONTROLS:
            raise HTTPException(404, f"unknown action {action!r}; known: {', '.join(CONTROLS)}")
        if not allow_control:
            await asyncio.to_thread(control.record, "dashboard", action, REFUSED)
            raise HTTPException(403, "the dashboard is read-only; set DASHBOARD_ALLOW_CONTROL=true to allow "
                                     "pause, resume and close-all")
        fn = {"pause": control.pause, "resume": control.resume, "close-all": control.close_all}[action]
        out = await asyncio.to_thread(fn)
        await asyncio.to_thread(control.record, "dashboard", action, out)
        return {"ok": out.ok, "text": out.text}

    @api.get("/api/stream")
    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(_sse(control, request, allow_control), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    return api


def _json(payload: Any) -> Response:
    """JSON with every registered secret masked, the last line of defence (the payloads hold none)."""
    return Response(redact(json.dumps(payload)), media_type="application/json")


async def _sse(control: RemoteControl, request: Any, allow_control: bool) -> Any:
    """`state` every STREAM_EVERY_S, `event` for each bus event, until the browser goes away."""
    bus = control.engine.bus
    q = bus.subscribe(maxsize=1000)
    try:
        next_state = 0.0
        while not await request.is_disconnected():
            now = time.monotonic()
            if now >= next_state:
                next_state = now + STREAM_EVERY_S
                payload = await asyncio.to_thread(state_payload, control, allow_control=allow_control, events=0)
                yield f"event: state\ndata: {redact(json.dumps(payload))}\n\n"
            try:
                while True:
                    yield f"event: event\ndata: {json.dumps(_event(q.get_nowait()))}\n\n"
            except queue.Empty:
                pass
            await asyncio.sleep(0.2)
    finally:
        bus.unsubscribe(q)


class DashboardServer:
    """uvicorn on a daemon thread. `start()` returns once it listens; `url` says where."""

    def __init__(self, control: RemoteControl, *, host: str = "127.0.0.1", port: int = 8765, token: str = "",
                 allow_control: bool = False) -> None:
        check_bind(host, token)
        self.host, self.port = host, port
        self.allow_control = allow_control
        self.app = create_app(control, token=token, allow_control=allow_control)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> DashboardServer:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            from bot.errors import ConfigError
            raise ConfigError(f"the dashboard cannot listen on {self.host}:{self.port} ({exc.strerror}); "
                              "choose another DASHBOARD_PORT") from exc
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                                lifespan="off", proxy_headers=False)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None   # not the main thread: signals stay the CLI's
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="dashboard",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            raise RuntimeError(f"the dashboard did not start on {self.url}")
        log.info("dashboard on %s (%s)", self.url, "pause/resume/close-all allowed" if self.allow_control
                 else "read-only")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def start_dashboard(app: App, *, port: int | None = None) -> DashboardServer:
    """The dashboard of `app` as its settings say (DASHBOARD_HOST/PORT/TOKEN/ALLOW_CONTROL).
    Raises ConfigError when it must not start (off loopback without a token, port taken)."""
    s = app.settings
    add_secrets(s.secret_values())   # redact() masks them in every answer
    server = DashboardServer(app.remote, host=s.DASHBOARD_HOST, port=s.DASHBOARD_PORT if port is None else port,
                             token=s.DASHBOARD_TOKEN, allow_control=s.DASHBOARD_ALLOW_CONTROL)
    server.start()
    app.companions.append(server)   # the app's shutdown stops it
    return server
