"""A fake Bybit V5 REST server on 127.0.0.1 for tests: the real pybit client talks to it.

It follows the real protocol where the client can tell: the response envelope
(`retCode`, `retMsg`, `result`, `retExtInfo`, `time`), string numbers, newest-first klines, and for
private endpoints the HMAC-SHA256 signature over `timestamp + key + recv_window + payload`
checked against the raw query string or body, with the recv_window rule (10002) and a wrong
signature answered with 10004, as Bybit does (../shared/bybit_v5_reference.md, sections 1-2).

Routes are a table `(METHOD, path) -> handler(params) -> result`; a handler raises `BybitReject`
for a business error. Faults can be injected per path (see `inject`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import pandas as pd

from self_test.fakes.loopback import LoopbackServer

__all__ = ["FakeBybit", "BybitReject", "Fault"]

_INSTRUMENTS_FIXTURE = (Path(__file__).resolve().parent.parent / "fixtures" / "bybit"
                        / "market_instruments_info_rows.json")

Handler = Callable[[dict[str, Any]], Any]


class BybitReject(Exception):
    """A business error the fake answers with HTTP 200 and a non-zero retCode."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Fault:
    """An injected failure for the next `count` requests to `path`.

    kind: "retcode" (answer `code`/`message`), "http" (HTTP `status`, non-JSON body),
    "slow" (sleep `delay` s before answering normally), "lost" (do the work, then drop the
    connection without an answer), "rate_limit" (retCode 10006 with a reset header in the future).
    """

    kind: str
    count: int = 1
    code: int = 10016
    message: str = "Server error"
    status: int = 502
    delay: float = 0.0


def _fmt(x: float) -> str:
    """A float as Bybit writes numbers: a plain decimal string, no exponent, no trailing zeros."""
    x = float(x)
    if x != x:
        return ""
    text = format(Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class FakeBybit(LoopbackServer):
    """Start with `with FakeBybit() as fake:`; point pybit at `fake.url`."""

    thread_name = "fake-bybit"

    def __init__(self, *, api_key: str = "testkey", api_secret: str = "testsecret",
                 clock: Callable[[], float] = time.time, auth_clock: Callable[[], float] = time.time,
                 follow_klines: bool = False) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_secret = api_secret
        self.clock = clock
        self.auth_clock = auth_clock      # the client's wall clock, for the recv_window check
        # True: the last price of each symbol with klines is the close of its last closed candle
        # at `clock()` (a fake whose time runs fills at the candles' prices without a test's help)
        self.follow_klines = follow_klines
        self._priced_to: dict[str, int] = {}
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, params)
        # (path, retCode; the HTTP status for an injected HTTP error; None when the answer was dropped)
        self.answered: list[tuple[str, int | None]] = []
        self.klines: dict[tuple[str, str], pd.DataFrame] = {}
        self.tickers: dict[str, list[dict[str, str]]] = {"linear": [], "spot": []}
        self.instruments: dict[str, list[dict[str, Any]]] = {"linear": [], "spot": []}
        self.faults: dict[str, list[Fault]] = {}
        self.routes: dict[tuple[str, str], tuple[Handler, bool]] = {}
        self.route("GET", "/v5/market/time", self._time, auth=False)
        self.route("GET", "/v5/market/kline", self._kline, auth=False)
        self.route("GET", "/v5/market/tickers", self._tickers, auth=False)
        self.route("GET", "/v5/market/instruments-info", self._instruments, auth=False)
        self._load_recorded_instruments()
        from self_test.fakes.bybit_book import FakeBook  # the account behind the private endpoints

        self.book = FakeBook(self, clock=clock)
        b = self.book
        self.route("POST", "/v5/order/create", b.create)
        self.route("POST", "/v5/order/cancel", b.cancel)
        self.route("GET", "/v5/order/realtime", lambda p: b.query_orders(p, history=False))
        self.route("GET", "/v5/order/history", lambda p: b.query_orders(p, history=True))
        self.route("GET", "/v5/execution/list", b.query_executions)
        self.route("GET", "/v5/position/list", b.position_rows)
        self.route("POST", "/v5/position/trading-stop", b.trading_stop)
        self.route("POST", "/v5/position/set-leverage", b.set_leverage)
        self.route("GET", "/v5/account/wallet-balance", b.wallet_rows)
        self.route("GET", "/v5/account/fee-rate", b.fee_rates)

    # -- life ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

            def log_message(self, *a: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        return _H

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- configuration -------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes[(method, path)] = (handler, auth)

    def inject(self, path: str, fault: Fault) -> None:
        with self.lock:
            self.faults.setdefault(path, []).append(fault)

    def set_klines(self, symbol: str, interval: str, frame: pd.DataFrame) -> None:
        """Serve these candles (canonical frame) for symbol/interval."""
        self.klines[(symbol.upper(), str(interval))] = frame

    def _load_recorded_instruments(self) -> None:
        """Serve the real instruments-info rows recorded by ccxt (BTCUSDT tick 0.10, step 0.001 ...)."""
        if _INSTRUMENTS_FIXTURE.exists():
            rows = json.loads(_INSTRUMENTS_FIXTURE.read_text())["rows"]
            self.instruments = {"linear": list(rows.get("linear", [])), "spot": list(rows.get("spot", []))}

    def set_price(self, symbol: str, price: float) -> None:
        """Set the last price of `symbol` (tickers, order fills) and let resting orders and stops react."""
        with self.lock:
            for category in ("linear", "spot"):
                rows = [r for r in self.tickers.setdefault(category, []) if r.get("symbol") != symbol]
                px = _fmt(price)
                rows.append({"symbol": symbol, "lastPrice": px, "markPrice": px, "indexPrice": px,
                             "bid1Price": px, "ask1Price": px, "bid1Size": "1", "ask1Size": "1",
                             "prevPrice24h": px, "price24hPcnt": "0", "highPrice24h": px, "lowPrice24h": px,
                             "turnover24h": "0", "volume24h": "0"})
                self.tickers[category] = rows
            self.book.set_price(symbol, float(price))

    def _price_from_klines(self) -> None:
        """follow_klines: move each symbol's price to the close of its newest closed candle."""
        from bot.types import interval_ms

        now = self.now_ms()
        with self.lock:
            for (symbol, interval), frame in self.klines.items():
                idx = np.asarray(frame.index, dtype=np.int64)
                i = int(np.searchsorted(idx, now - interval_ms(interval), side="right")) - 1
                if i < 0 or self._priced_to.get(symbol) == int(idx[i]):
                    continue
                self._priced_to[symbol] = int(idx[i])
                self.set_price(symbol, float(frame["close"].iloc[i]))

    def orders_with_link(self, order_link_id: str) -> list[dict[str, Any]]:
        """Every order the fake holds with this orderLinkId (the tests' "exactly one" check)."""
        with self.lock:
            return [o for o in self.book.orders.values() if o["orderLinkId"] == order_link_id]

    def answers(self, path: str) -> list[int | None]:
        """How each finished request to `path` was answered: retCode, HTTP status of an injected
        HTTP error, or None (processed, answer dropped). A slow request counts once it is done."""
        with self.lock:
            return [code for (pth, code) in self.answered if pth == path]

    def calls(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for (_, pth, p) in self.requests if pth == path]

    # -- HTTP ----------------------------------------------------------------------------------
    def chaos(self, rate: float, *, lost: float = 0.0, seed: int = 0) -> None:
        """Random faults on every private request: with probability `rate` a rate limit (10006 with
        its reset header), a 10016 or an HTTP 502 (one third each); an order that got through has
        its answer dropped with probability `lost` (done, never answered). `rate=0` turns it off."""
        import random

        with self.lock:
            self._chaos = (float(rate), float(lost), random.Random(seed))

    def _random_fault(self, path: str) -> Fault | None:
        chaos = getattr(self, "_chaos", None)
        if chaos is None or path.startswith("/v5/market/"):
            return None
        rate, lost, rng = chaos
        if rng.random() < rate:
            return rng.choice([Fault(kind="rate_limit"), Fault(kind="retcode", code=10016),
                               Fault(kind="http", status=502)])
        if path == "/v5/order/create" and rng.random() < lost:
            return Fault(kind="lost")
        return None

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            lst = self.faults.get(path) or []
            if not lst:
                return self._random_fault(path)
            f = lst[0]
            f.count -= 1
            if f.count <= 0:
                lst.pop(0)
            return f

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None,
              ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    def envelope(self, code: int = 0, msg: str = "OK", result: Any = None) -> bytes:
        return json.dumps({"retCode": code, "retMsg": msg, "result": {} if result is None else result,
                           "retExtInfo": {}, "time": self.now_ms()}).encode()

    def _check_auth(self, h: BaseHTTPRequestHandler, payload: str) -> BybitReject | None:
        key = h.headers.get("X-BAPI-API-KEY")
        ts = h.headers.get("X-BAPI-TIMESTAMP")
        sign = h.headers.get("X-BAPI-SIGN")
        recv = h.headers.get("X-BAPI-RECV-WINDOW") or "5000"
        if not key or not ts or not sign:
            return BybitReject(10003, "API key is invalid.")  # missing headers
        if key != self.api_key:
            return BybitReject(10003, "API key is invalid.")
        expected = hmac.new(self.api_secret.encode(), f"{ts}{key}{recv}{payload}".encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sign):
            return BybitReject(10004, f"error sign! origin_string[{ts}{key}{recv}{payload}]")
        server = int(self.auth_clock() * 1000)  # recv_window is checked against wall time, as Bybit does
        try:
            t, w = int(ts), int(recv)
        except ValueError:
            return BybitReject(10002, "invalid timestamp")
        if not (server - w <= t < server + 1000):
            return BybitReject(10002, "invalid request, please check your server timestamp or recv_window param. "
                                      f"req_timestamp[{t}],server_timestamp[{server}],recv_window[{w}]")
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path, _, query = h.path.partition("?")
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        if method == "GET":
            params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
            payload = query
        else:
            try:
                params = json.loads(body) if body else {}
            except json.JSONDecodeError:
                self._send(h, 200, self.envelope(10001, "params error: body is not JSON"))
                return
            payload = body
        with self.lock:
            self.requests.append((method, path, params))
        entry = self.routes.get((method, path))
        if entry is None:
            self._send(h, 404, b"Not Found", ctype="text/plain")
            return
        handler, auth = entry
        if auth:
            rej = self._check_auth(h, payload)
            if rej is not None:
                self._send(h, 200, self.envelope(rej.code, rej.message))
                return
        if self.follow_klines:
            self._price_from_klines()
        fault = self._take_fault(path)
        if fault is not None:
            if fault.kind in ("http", "retcode", "rate_limit"):
                with self.lock:
                    self.answered.append((path, {"http": fault.status, "retcode": fault.code}.get(fault.kind, 10006)))
            if fault.kind == "http":
                self._send(h, fault.status, b"<html>Bad Gateway</html>", ctype="text/html")
                return
            if fault.kind == "retcode":
                self._send(h, 200, self.envelope(fault.code, fault.message))
                return
            if fault.kind == "rate_limit":
                reset = self.now_ms() + 200
                self._send(h, 200, self.envelope(10006, "Too many visits!"),
                           {"X-Bapi-Limit-Reset-Timestamp": str(reset), "X-Bapi-Limit-Status": "0",
                            "X-Bapi-Limit": "10"})
                return
            if fault.kind == "slow":
                time.sleep(fault.delay)
        try:
            with self.lock:
                result = handler(params)
            reply = self.envelope(0, "OK", result)
        except BybitReject as rej:
            reply = self.envelope(rej.code, rej.message)
        except Exception as exc:  # a bug in the fake: answer like Bybit's generic server error
            import traceback

            traceback.print_exc()
            reply = self.envelope(10016, f"fake server error: {type(exc).__name__}: {exc}")
        with self.lock:
            self.answered.append((path, None if fault is not None and fault.kind == "lost"
                                  else json.loads(reply)["retCode"]))
        if fault is not None and fault.kind == "lost":
            # The work is done (order placed ...) but the answer never reaches the client.
            h.close_connection = True
            try:
                h.connection.shutdown(2)
            except OSError:
                pass
            return
        self._send(h, 200, reply, {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9",
                                   "X-Bapi-Limit-Reset-Timestamp": str(self.now_ms())})

    # -- market endpoints ----------------------------------------------------------------------
    def _time(self, params: dict[str, Any]) -> dict[str, str]:
        ms = self.now_ms()
        return {"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)}

    def _kline(self, params: dict[str, Any]) -> dict[str, Any]:
        symbol = str(params.get("symbol", "")).upper()
        interval = str(params.get("interval", ""))
        if not symbol or not interval:
            raise BybitReject(10001, "params error: symbol and interval are required")
        category = params.get("category", "linear")
        try:
            limit = int(params.get("limit", 200))
        except ValueError:
            raise BybitReject(10001, "params error: limit") from None
        if not 1 <= limit <= 1000:
            raise BybitReject(10001, "params error: limit must be 1..1000")
        frame = self.klines.get((symbol, interval))
        if frame is None:
            raise BybitReject(10001, "Not supported symbols")
        now = self.now_ms()
        idx = np.asarray(frame.index, dtype=np.int64)
        start = int(params.get("start", 0))
        end = int(params.get("end", now))
        sel = np.flatnonzero((idx >= start) & (idx <= min(end, now)))
        sel = sel[-limit:][::-1]  # the newest `limit` candles, newest first
        vals = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
        rows = [[str(int(idx[i]))] + [_fmt(v) for v in vals[i]] for i in sel]
        return {"category": category, "symbol": symbol, "list": rows}

    def _tickers(self, params: dict[str, Any]) -> dict[str, Any]:
        category = params.get("category")
        if category not in ("linear", "spot", "inverse", "option"):
            raise BybitReject(10001, "params error: category")
        rows = self.tickers.get(category, [])
        if params.get("symbol"):
            rows = [r for r in rows if r.get("symbol") == params["symbol"]]
        return {"category": category, "list": rows}

    def _instruments(self, params: dict[str, Any]) -> dict[str, Any]:
        category = params.get("category")
        if category not in ("linear", "spot", "inverse", "option"):
            raise BybitReject(10001, "params error: category")
        rows = self.instruments.get(category, [])
        if params.get("symbol"):
            rows = [r for r in rows if r.get("symbol") == params["symbol"]]
        return {"category": category, "list": rows, "nextPageCursor": ""}


def _serve_by_hand(argv: list[str] | None = None) -> int:
    """`python -m self_test.fakes.bybit_server --port 8765`: a fake to point BYBIT_BASE_URL at by hand."""
    import argparse

    from bot.market.seed import load_seed

    ap = argparse.ArgumentParser(description="Fake Bybit V5 REST server on 127.0.0.1 (for trying the bot "
                                 "in LIVE mode without real money). Prices: the last recorded real seed candle.")
    ap.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    ap.add_argument("--key", default="testkey", help="API key the fake accepts (default testkey)")
    ap.add_argument("--secret", default="testsecret", help="API secret the fake accepts (default testsecret)")
    ap.add_argument("--balance", type=float, default=1000.0, help="USDT in the fake UNIFIED wallet")
    args = ap.parse_args(argv)
    fake = FakeBybit(api_key=args.key, api_secret=args.secret)
    fake.book.wallet = args.balance
    for symbol, interval in (("BTCUSDT", "60"), ("BTCUSDT", "D"), ("ETHUSDT", "D"), ("LTCUSDT", "D")):
        frame = load_seed(symbol, interval)
        fake.set_klines(symbol, interval, frame)
        fake.set_price(symbol, float(frame["close"].iloc[-1]))
    fake.start(args.port)
    # the same account and candles over WebSocket
    from self_test.fakes.bybit_ws import FakeBybitStream

    ws = FakeBybitStream(fake).start(args.port + 1 if args.port else 0)

    def push_candles() -> None:       # the seed candles are old: this pushes only what a clock change closes
        while True:
            time.sleep(1.0)
            ws.tick()

    threading.Thread(target=push_candles, name="fake-bybit-ws-ticks", daemon=True).start()
    print(f"fake Bybit on {fake.url} and {ws.url}  key={args.key}  (prices: last recorded seed candles)")
    print(f"try:  BYBIT_BASE_URL={fake.url} BYBIT_WS_URL={ws.url} BYBIT_API_KEY={args.key} BYBIT_API_SECRET=... "
          "python -m bot status --live")
    return fake.serve_until_interrupted()


if __name__ == "__main__":
    # Run the copy imported under its package name: the book raises *that* module's BybitReject.
    from self_test.fakes.bybit_server import _serve_by_hand as _serve

    raise SystemExit(_serve())
