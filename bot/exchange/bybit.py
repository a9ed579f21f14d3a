"""Live Bybit through the real `pybit.unified_trading.HTTP`: the same `Exchange` as the paper wallet.

Facts and pitfalls: ../shared/bybit_v5_reference.md. The adapter owns every retry. pybit is built
with `max_retries=1` and a dummy `retry_codes={-1}`, so it never resends on its own (its retry of
10002/10006 resends the same order body, its `force_retry` resent a slow order three times, and a
stale rate-limit reset header makes it call `time.sleep` with a negative number). Reads are
retried with bounded exponential backoff on transient failures (timeouts, 5xx, 10006, 10016).
An order is never sent twice: before any re-send of `create_order` the `orderLinkId` is looked up
(realtime, then history) and an order found there is adopted; a re-send carries the same id, so
if the first attempt landed after all Bybit answers 110072/170141, which is also resolved by a
lookup. Errors become the bot's exceptions (`bot.errors`), with secrets redacted from the text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bot.errors import (
    AuthError,
    DuplicateOrderError,
    ExchangeAPIError,
    InsufficientFundsError,
    InvalidOrderError,
    NetworkError,
    OutcomeUnknownError,
    RateLimitError,
)
from bot.exchange.base import Instrument, floor_to_step, round_to_tick
from bot.exchange.bybit_account import AccountMirror
from bot.exchange.bybit_stream import PrivateStream
from bot.exchange.instruments import check_client_order_id, parse_instrument
from bot.exchange.retry import policies
from bot.log_setup import add_secrets, redact
from bot.market.bybit_socket import LinkState, ws_base_url
from bot.types import (
    Balance,
    Connection,
    Fill,
    Mode,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    Side,
)
from config import Settings

__all__ = ["BybitExchange", "parse_instrument", "map_error"]

log = logging.getLogger(__name__)

AUTH_CODES = {10003, 10004, 10005, 10010, 33004}
RATE_CODES = {10006, 10018}
FUNDS_CODES = {110004, 110007, 110012, 110044, 110045, 170131}
INVALID_CODES = {10001, 110003, 110017, 110020, 110094, 170136, 170137, 170134, 170140, 170148}
DUPLICATE_CODES = {110072, 170141, 12141}
TRANSIENT_CODES = {10000, 10002, 10016} | RATE_CODES
NOT_FOUND_CODES = {110001, 110008, 110010, 170213}
_STATUS = {"New": OrderStatus.NEW, "Untriggered": OrderStatus.NEW, "Triggered": OrderStatus.NEW,
           "PartiallyFilled": OrderStatus.PARTIALLY_FILLED, "Filled": OrderStatus.FILLED,
           "Cancelled": OrderStatus.CANCELLED, "PartiallyFilledCanceled": OrderStatus.CANCELLED,
           "Deactivated": OrderStatus.CANCELLED, "Rejected": OrderStatus.REJECTED}


def _f(text: Any, default: float = 0.0) -> float:
    try:
        return float(text) if text not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _opt(text: Any) -> float | None:
    """Bybit writes an unset price as "", "0" or "0.00"."""
    v = _f(text)
    return v if v > 0 else None


def _num(x: float, step: float) -> str:
    """A quantity or price as the plain decimal string Bybit expects, at the step's precision."""
    decimals = max(0, -int(f"{step:e}".split("e")[1])) if step > 0 else 8
    return f"{x:.{decimals}f}"


def map_error(exc: BaseException, what: str, *, client_order_id: str | None = None) -> Exception:
    """pybit / requests exception -> the bot's exception, with a redacted message."""
    import requests
    from pybit.exceptions import FailedRequestError, InvalidRequestError

    if isinstance(exc, InvalidRequestError):
        code = int(exc.status_code)
        text = redact(f"Bybit {what}: {exc.message} (retCode {code})")
        if code in AUTH_CODES:
            return AuthError(text, code=code)
        if code in RATE_CODES:
            limited = RateLimitError(text, code=code)
            headers = getattr(exc, "resp_headers", None) or {}
            reset = headers.get("X-Bapi-Limit-Reset-Timestamp") if hasattr(headers, "get") else None
            limited.reset_ms = int(reset) if reset and str(reset).isdigit() else None  # type: ignore[attr-defined]
            return limited
        if code in FUNDS_CODES:
            return InsufficientFundsError(text, code=code)
        if code in DUPLICATE_CODES:
            return DuplicateOrderError(text, client_order_id=client_order_id)
        if code in INVALID_CODES:
            err = InvalidOrderError(text, client_order_id=client_order_id)
            err.code = code  # type: ignore[attr-defined]
            return err
        return ExchangeAPIError(text, code=code)
    if isinstance(exc, FailedRequestError):
        status = int(exc.status_code or 0)
        text = redact(f"Bybit {what}: HTTP {status} {exc.message}")
        if status == 401:
            return AuthError(text, code=401)
        if status in (403, 429):
            return RateLimitError(text, code=status)
        return NetworkError(text)  # 5xx, non-JSON body (409), pybit's own "retries exceeded" (400)
    if isinstance(exc, requests.exceptions.RequestException):
        return NetworkError(redact(f"Bybit {what}: {type(exc).__name__}: {exc}"))
    if isinstance(exc, ValueError):  # pybit's negative sleep on a stale rate-limit reset header
        return RateLimitError(redact(f"Bybit {what}: rate limited ({exc})"), code=10006)
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


_VIEWS = frozenset({"get_wallet_balance", "get_positions"})   # the account view a snapshot reads


def is_transient(err: BaseException) -> bool:
    """Worth retrying after a pause (the request may or may not have been processed)."""
    if isinstance(err, (NetworkError, RateLimitError)):
        return True
    return type(err) is ExchangeAPIError and err.code in TRANSIENT_CODES


class BybitExchange:
    """Live `Exchange` on Bybit V5 (UNIFIED account, linear USDT perpetuals or spot)."""

    name = "bybit"
    mode = Mode.LIVE

    def __init__(self, settings: Settings, *, http: Any | None = None, retries: int = 4, retry_delay: float = 0.5,
                 max_retry_delay: float = 8.0, fill_wait: float = 2.0, lookup_budget: float | None = None,
                 view_seconds: float = 0.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.category = settings.EXCHANGE_CATEGORY
        self.leverage = float(settings.LEVERAGE)
        self.retries = max(1, retries)
        self.fill_wait = fill_wait
        # one retry policy per kind of call (bot/exchange/retry.py)
        self.policies = policies(settings, retries=retries, retry_delay=retry_delay, max_retry_delay=max_retry_delay)
        if lookup_budget is not None:
            self.policies["lookup"] = replace(self.policies["lookup"], budget_s=float(lookup_budget))
        self._sleep = sleep
        # "read"; a command whose whole job is closing (close-all) sets "close": its reads then keep at
        # it until the close deadline too
        self.read_policy = "read"
        # the account view (balance, positions) is read from Bybit at most every `view_seconds` (the
        # engine: ACCOUNT_REFRESH_SECONDS; 0 = every time); any order, cancel or stop change reads anew
        self.view_seconds = float(view_seconds)
        self._views: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.has_keys = bool(settings.has_bybit_keys)
        add_secrets(settings.secret_values())
        if http is None:
            from pybit.unified_trading import HTTP

            http = HTTP(testnet=settings.USE_TESTNET, demo=settings.BYBIT_DEMO, api_key=settings.BYBIT_API_KEY or None,
                        api_secret=settings.BYBIT_API_SECRET or None, timeout=settings.BYBIT_TIMEOUT,
                        max_retries=1, retry_codes={-1}, retry_delay=0, log_requests=False)
            if settings.BYBIT_BASE_URL:
                http.endpoint = settings.BYBIT_BASE_URL.rstrip("/")
        self.http = http
        self._instruments: dict[str, Instrument] = {}
        self._leverage_done: set[str] = set()
        self.dust: dict[str, float] = {}   # spot: coins held below the smallest sellable order (last read)
        self.hedge_mode = False
        # the private streams while the engine runs (`start_stream`): fills and the account view come
        # pushed; None = every read over REST
        self.mirror: AccountMirror | None = None
        self._stream: PrivateStream | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "BybitExchange":
        return cls(settings)

    # -- the private streams -----------------------------------------------------------------
    def start_stream(self, *, on_state: Callable[[str, str], None] | None = None) -> bool:
        """Open the private order / execution / position / wallet streams (pybit WebSocket, its own
        thread, reconnecting with backoff) and serve fills and the account view from them while they
        are up; REST while they are down. False when there can be none (no keys, or BYBIT_BASE_URL set
        without BYBIT_WS_URL). `on_state(state, why)`: the link's changes (LinkState), for alerts."""
        if self._stream is not None:
            return True
        if not self.has_keys or ws_base_url(self.settings) is None:
            return False
        mirror = AccountMirror(rest_seconds=self.settings.ACCOUNT_STREAM_REFRESH_SECONDS,
                               quote=self.settings.QUOTE_COIN)

        def state(now: str, why: str) -> None:
            stream = self._stream
            mirror.link_state(now == LinkState.CONNECTED, stream.link.epoch if stream is not None else 0)
            if on_state is not None:
                on_state(now, why)

        self.mirror = mirror
        self._stream = PrivateStream(self.settings, on_update=mirror.apply, on_state=state, keep=False)
        self._stream.start()
        return True

    def close_stream(self) -> None:
        """Close the private streams; every read goes over REST again."""
        stream, self._stream, self.mirror = self._stream, None, None
        if stream is not None:
            stream.close()

    @property
    def stream_state(self) -> str:
        """The private streams as the snapshot shows them: "" (none), Connected or Polling-REST."""
        if self._stream is None:
            return ""
        return Connection.CONNECTED if self._stream.connected else Connection.POLLING

    def take_outside_changes(self) -> set[str]:
        """Symbols the private streams saw changed from outside (a stop Bybit executed, a close by
        hand; "*" after a reconnection) since the last call: the engine reconciles them at once."""
        return self.mirror.take_outside() if self.mirror is not None else set()

    def _pushed_view(self, method: str, policy: str | None, params: dict[str, Any]) -> dict[str, Any] | None:
        """The account view from the pushes (seeded over REST once per connection and every
        ACCOUNT_STREAM_REFRESH_SECONDS); None when the stream cannot serve it."""
        mirror = self.mirror
        if mirror is None or not mirror.connected:
            return None
        if method == "get_wallet_balance":
            if params.get("accountType") != "UNIFIED":
                return None
            view = "wallet"
        elif params.get("category") == "linear" and not params.get("symbol"):
            view = "positions"
        else:
            return None
        if mirror.fresh(view):
            return {"list": mirror.wallet_rows() if view == "wallet" else mirror.position_rows()}
        started, epoch = time.monotonic(), mirror.epoch
        result = self._call_policy(method, policy, params)
        mirror.seed(view, list(result.get("list") or []), started=started, epoch=epoch)
        return result

    # -- plumbing ----------------------------------------------------------------------------
    def _once(self, method: str, **params: Any) -> dict[str, Any]:
        """One pybit call; the reply's `result`, or the mapped bot exception."""
        try:
            reply = getattr(self.http, method)(**params)
        except Exception as exc:
            mapped = map_error(exc, method, client_order_id=params.get("orderLinkId"))
            if mapped is exc:
                raise
            # `from None`: pybit's exception text can echo what Bybit echoed (a 10004 reply quotes
            # the signed string with the API key); the mapped message is redacted, the original is not.
            raise mapped from None
        return reply.get("result") or {}

    def _call(self, method: str, *, private: bool = True, policy: str | None = None, **params: Any) -> dict[str, Any]:
        """An idempotent call (read, cancel, leverage, trading-stop), retried on transient failures
        as its policy says (default: `read_policy`)."""
        if private and not self.has_keys:
            raise AuthError("Bybit API keys are not set: put BYBIT_API_KEY and BYBIT_API_SECRET in .env", code=10003)
        if method not in _VIEWS:
            if not method.startswith("get_"):
                self._views.clear()          # a change on the account: the next view is read anew
        elif (pushed := self._pushed_view(method, policy, params)) is not None:
            return pushed
        elif self.view_seconds > 0:
            key = (method, repr(sorted(params.items())))
            hit = self._views.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.view_seconds:
                return hit[1]
            result = self._call_policy(method, policy, params)
            self._views[key] = (time.monotonic(), result)
            return result
        return self._call_policy(method, policy, params)

    def _call_policy(self, method: str, policy: str | None, params: dict[str, Any]) -> dict[str, Any]:
        rule = self.policies[policy or self.read_policy]
        start = time.monotonic()
        attempt = 0
        while True:
            try:
                return self._once(method, **params)
            except Exception as err:
                pause = rule.delay(attempt, err)
                attempt += 1
                if not is_transient(err) or not rule.more(attempt, time.monotonic() - start, pause):
                    raise
                log.warning("%s (attempt %d, %s policy); retrying in %.1fs", err, attempt, rule.kind, pause)
                self._sleep(pause)

    # -- market ------------------------------------------------------------------------------
    def get_price(self, symbol: str) -> float:
        rows = self._call("get_tickers", private=False, category=self.category, symbol=symbol).get("list") or []
        if not rows or _f(rows[0].get("lastPrice")) <= 0:
            raise ExchangeAPIError(f"Bybit has no last price for {symbol} ({self.category})")
        return _f(rows[0]["lastPrice"])

    def get_instrument(self, symbol: str) -> Instrument:
        inst = self._instruments.get(symbol)
        if inst is None:
            rows = self._call("get_instruments_info", private=False, category=self.category,
                              symbol=symbol).get("list") or []
            if not rows:
                raise InvalidOrderError(f"{symbol} is not a Bybit {self.category} instrument")
            inst = self._instruments[symbol] = parse_instrument(rows[0], self.category)
        return inst

    # -- account -----------------------------------------------------------------------------
    def get_balance(self) -> Balance:
        quote = self.settings.QUOTE_COIN
        acct = (self._call("get_wallet_balance", accountType="UNIFIED").get("list") or [{}])[0]
        coin: dict[str, Any] = next((c for c in acct.get("coin", []) if c.get("coin") == quote), {})
        wallet, upl = _f(coin.get("walletBalance")), _f(coin.get("unrealisedPnl"))
        equity = _f(acct.get("totalEquity"), wallet + upl) if self.category == "spot" else _f(coin.get("equity"),
                                                                                                wallet + upl)
        return Balance(equity=equity, available=_f(acct.get("totalAvailableBalance")), wallet_balance=wallet,
                       unrealised_pnl=upl, coin=quote)

    def get_positions(self) -> list[Position]:
        return self._positions()

    def _positions(self, *, policy: str | None = None) -> list[Position]:
        if self.category == "spot":
            return self._spot_holdings(policy=policy)
        rows = self._call("get_positions", policy=policy, category="linear",
                          settleCoin=self.settings.QUOTE_COIN).get("list") or []
        out = []
        for r in rows:
            size = _f(r.get("size"))
            if size <= 0 or r.get("side") not in (Side.BUY, Side.SELL):
                continue
            side = PositionSide.LONG if r["side"] == Side.BUY else PositionSide.SHORT
            out.append(Position(symbol=r["symbol"], side=side, size=size,
                                entry_price=_f(r.get("avgPrice")), mark_price=_f(r.get("markPrice")),
                                unrealised_pnl=_f(r.get("unrealisedPnl")), realised_pnl=_f(r.get("curRealisedPnl")),
                                stop_loss=_opt(r.get("stopLoss")), take_profit=_opt(r.get("takeProfit")),
                                trailing_stop=_opt(r.get("trailingStop")), leverage=_f(r.get("leverage"), 1.0),
                                opened_ms=int(_f(r.get("createdTime")))))
            if int(r.get("positionIdx") or 0) in (1, 2):
                self.hedge_mode = True
        return out

    def _spot_holdings(self, *, policy: str | None = None) -> list[Position]:
        """Spot has no positions: non-quote coins held are shown as longs at their current value
        (Bybit does not report an entry price for spot holdings; the journal knows it)."""
        acct = (self._call("get_wallet_balance", policy=policy, accountType="UNIFIED").get("list") or [{}])[0]
        out = []
        self.dust = {}
        for c in acct.get("coin", []):
            qty = _f(c.get("walletBalance")) - _f(c.get("locked"))     # free: what can be sold
            if c.get("coin") == self.settings.QUOTE_COIN or qty <= 0:
                continue
            symbol = f"{c['coin']}{self.settings.QUOTE_COIN}"
            mark = _f(c.get("usdValue")) / _f(c.get("walletBalance"), qty)
            try:
                inst = self.get_instrument(symbol)
            except (InvalidOrderError, ExchangeAPIError):
                inst = None          # a coin with no USDT market: shown as held, never sold by the bot
            why = inst.check_order(floor_to_step(qty, inst.qty_step), mark, market=True) if inst is not None else None
            if why and why.startswith("too small"):
                self.dust[c["coin"]] = qty    # below what Bybit would buy back: dust, not a position
                continue
            out.append(Position(symbol=symbol, side=PositionSide.LONG, size=qty, entry_price=mark, mark_price=mark))
        return out

    def _base_fee(self, symbol: str, coin: str) -> bool:
        """Is a fee in `coin` taken in the base coin of `symbol` (a spot buy)?"""
        quote = self.settings.QUOTE_COIN
        return bool(coin) and coin != quote and symbol == f"{coin}{quote}"

    def _order(self, r: dict[str, Any]) -> Order:
        detail = r.get("cumFeeDetail") or {}
        fee = _f(r.get("cumExecFee")) or sum(_f(v) for v in detail.values())
        filled, avg = _f(r.get("cumExecQty")), _f(r.get("avgPrice"))
        if any(self._base_fee(r["symbol"], coin) for coin in detail):
            # a spot buy's fee is taken in the base coin: what the order left us is the fill net of
            # it, and the fee is shown (and booked) in USDT at the fill price
            filled, fee = filled - fee, fee * avg
        return Order(client_order_id=r.get("orderLinkId", ""), symbol=r["symbol"], side=Side(r["side"]), qty=_f(r.get("qty")),
                     order_type=r.get("orderType", "Market"), status=_STATUS.get(r.get("orderStatus", ""), OrderStatus.NEW),
                     price=_opt(r.get("price")) if r.get("orderType") == "Limit" else None,
                     avg_price=avg, filled_qty=filled, fee=fee,
                     reduce_only=bool(r.get("reduceOnly")), stop_loss=_opt(r.get("stopLoss")),
                     take_profit=_opt(r.get("takeProfit")), exchange_order_id=r.get("orderId", ""),
                     created_ms=int(_f(r.get("createdTime"))), updated_ms=int(_f(r.get("updatedTime"))),
                     reject_reason="" if r.get("rejectReason") in (None, "", "EC_NoError") else r["rejectReason"])

    def get_open_orders(self, symbol: str | None = None) -> list[Order]:
        where: dict[str, Any] = {"symbol": symbol} if symbol else (
            {"settleCoin": self.settings.QUOTE_COIN} if self.category == "linear" else {})
        rows = self._call("get_open_orders", category=self.category, **where).get("list") or []
        return [self._order(r) for r in rows]

    def get_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        """Find an order by its orderLinkId: realtime first (open and recent), then history."""
        where: dict[str, Any] = {"symbol": symbol} if symbol else {}
        for method in ("get_open_orders", "get_order_history"):
            rows = self._call(method, category=self.category, orderLinkId=client_order_id, **where).get("list") or []
            if rows:
                return self._order(rows[0])
        return None

    def get_fills(self, client_order_id: str, symbol: str | None = None) -> list[Fill]:
        mirror = self.mirror
        if mirror is not None:
            rows = mirror.executions(client_order_id, 1.0)   # pushed with the fill: no REST read
            if rows is not None:
                return [self._fill(r, client_order_id) for r in rows]
        where: dict[str, Any] = {"symbol": symbol} if symbol else {}
        rows = self._call("get_executions", category=self.category, orderLinkId=client_order_id,
                          **where).get("list") or []
        return [self._fill(r, client_order_id) for r in reversed(rows) if r.get("execType", "Trade") == "Trade"]

    def get_executions(self, symbol: str, *, since_ms: int | None = None) -> list[Fill]:
        """Trade executions of `symbol`, oldest first, including those with no id of ours (a
        server-side stop). Bybit serves at most 7 days from `since_ms` (default: the last 7 days)."""
        where: dict[str, Any] = {"startTime": int(since_ms)} if since_ms else {}
        rows = self._call("get_executions", category=self.category, symbol=symbol, limit=100, **where).get("list") or []
        return [self._fill(r, r.get("orderLinkId", "")) for r in reversed(rows) if r.get("execType", "Trade") == "Trade"]

    def _fill(self, r: dict[str, Any], cid: str) -> Fill:
        reason = "signal" if r.get("orderLinkId") else {"StopLoss": "stop-loss", "TakeProfit": "take-profit"}.get(
            r.get("stopOrderType", ""), "reconcile")
        qty, price, fee = _f(r.get("execQty")), _f(r.get("execPrice")), _f(r.get("execFee"))
        if self._base_fee(r["symbol"], str(r.get("feeCurrency") or "")):
            qty, fee = qty - fee, fee * price     # received net of a base-coin fee; the fee in USDT
        return Fill(client_order_id=r.get("orderLinkId") or cid, symbol=r["symbol"], side=Side(r["side"]),
                    qty=qty, price=price, fee=fee,
                    time_ms=int(_f(r.get("execTime"))), exchange_order_id=r.get("orderId", ""),
                    exec_id=r.get("execId", ""), is_maker=bool(r.get("isMaker")), reason=reason)

    # -- orders ------------------------------------------------------------------------------
    def _position_idx(self, side: Side, reduce_only: bool) -> int:
        if not self.hedge_mode:
            return 0
        if reduce_only:  # a Sell reduces the long leg (1), a Buy the short leg (2)
            return 1 if side == Side.SELL else 2
        return 1 if side == Side.BUY else 2

    def _ensure_leverage(self, symbol: str) -> None:
        """LEVERAGE on `symbol`, set once per symbol per session (this adapter). A transient
        failure does not fail the order: it goes out at the account's current leverage (the
        margin check is Bybit's) and the next order tries again."""
        if self.category != "linear" or symbol in self._leverage_done:
            return
        lev = f"{self.leverage:g}"
        try:
            self._call("set_leverage", category="linear", symbol=symbol, buyLeverage=lev, sellLeverage=lev)
        except ExchangeAPIError as err:
            if is_transient(err):
                log.warning("%s: leverage not set this time (%s); the order goes out at the current leverage",
                            symbol, err)
                return
            if err.code != 110043:  # "leverage not modified" = already what we want
                raise
        except NetworkError as err:
            log.warning("%s: leverage not set this time (%s); the order goes out at the current leverage", symbol, err)
            return
        self._leverage_done.add(symbol)

    def create_order(self, symbol: str, side: Side, qty: float, order_type: OrderType = "Market",
                     price: float | None = None, reduce_only: bool = False, stop_loss: float | None = None,
                     take_profit: float | None = None, *, client_order_id: str) -> Order:
        """Place an order at most once, whatever the network does; returns it as Bybit knows it.
        Reduce-only orders are closes (the close policy: never give up before the close deadline)."""
        return self._place(symbol, side, qty, order_type, price, reduce_only, stop_loss, take_profit,
                           client_order_id=client_order_id, closing=reduce_only)

    def _place(self, symbol: str, side: Side, qty: float, order_type: OrderType, price: float | None,
               reduce_only: bool, stop_loss: float | None, take_profit: float | None, *, client_order_id: str,
               closing: bool) -> Order:
        check_client_order_id(client_order_id)
        if not self.has_keys:
            raise AuthError("Bybit API keys are not set: put BYBIT_API_KEY and BYBIT_API_SECRET in .env", code=10003)
        inst = self.get_instrument(symbol)
        q = floor_to_step(qty, inst.qty_step)
        params: dict[str, Any] = {"category": self.category, "symbol": symbol, "side": side, "orderType": order_type,
                                  "qty": _num(q, inst.qty_step), "orderLinkId": client_order_id}
        if order_type == "Limit":
            if not price:
                raise InvalidOrderError(f"{symbol}: a limit order needs a price", client_order_id=client_order_id)
            params.update(price=_num(round_to_tick(price, inst.tick_size), inst.tick_size), timeInForce="GTC")
        if self.category == "linear":
            self._ensure_leverage(symbol)
            if reduce_only:
                params["reduceOnly"] = True
        elif order_type == "Market":
            params["marketUnit"] = "baseCoin"  # spot market buys are in quote coin unless told otherwise
        if not reduce_only:  # Bybit refuses TP/SL together with reduceOnly
            if stop_loss:
                params["stopLoss"] = _num(round_to_tick(stop_loss, inst.tick_size), inst.tick_size)
            if take_profit:
                params["takeProfit"] = _num(round_to_tick(take_profit, inst.tick_size), inst.tick_size)
        rule = self.policies["close" if closing else "entry"]
        lookup = "close_lookup" if closing else "lookup"
        start = time.monotonic()
        last_err: Exception | None = None
        attempt = 0
        while True:
            if self.category == "linear":
                params["positionIdx"] = self._position_idx(side, reduce_only)
            if attempt > 0 and last_err is not None:
                found = self._lookup(symbol, client_order_id)   # before any re-send: did it land after all?
                if found is not None:
                    log.warning("order %s was placed after all (found on Bybit after %s); adopting it",
                                client_order_id, last_err)
                    return self._settle(found, symbol, client_order_id, lookup)
            try:
                self._views.clear()
                if self.mirror is not None:
                    self.mirror.placing(client_order_id)     # its pushes are ours, not an outside change
                self._once("place_order", **params)
                return self._settle(None, symbol, client_order_id, lookup)
            except DuplicateOrderError as err:  # an earlier attempt landed
                last_err = err
                found = self._lookup(symbol, client_order_id, tries=self.retries)
                if found is not None:
                    return self._settle(found, symbol, client_order_id, lookup)
            except InvalidOrderError as err:
                if (getattr(err, "code", None) == 10001 and "position idx" in str(err).lower()
                        and self.category == "linear" and attempt == 0):
                    self.hedge_mode = not self.hedge_mode  # the account is in the other position mode
                    log.warning("Bybit account position mode differs; switching to %s mode",
                                "hedge" if self.hedge_mode else "one-way")
                    last_err = None
                    attempt += 1
                    continue
                raise
            except Exception as err:
                if not is_transient(err):
                    raise
                last_err = err
                log.warning("placing %s: %s (attempt %d, %s policy)", client_order_id, err, attempt + 1, rule.kind)
            pause = rule.delay(attempt, last_err)
            attempt += 1
            if not rule.more(attempt, time.monotonic() - start, pause):
                break
            self._sleep(pause)
        found = self._lookup(symbol, client_order_id, tries=self.retries)
        if found is not None:
            return self._settle(found, symbol, client_order_id, lookup)
        raise OutcomeUnknownError(f"order {client_order_id} ({side} {q} {symbol}) not confirmed after "
                                  f"{attempt} attempts in {time.monotonic() - start:.0f} s ({last_err}): outcome "
                                  "unknown; it is resolved by its orderLinkId later (do not place it again)",
                                  client_order_id=client_order_id)

    def _lookup(self, symbol: str, cid: str, *, tries: int = 1) -> Order | None:
        """The order with this orderLinkId, or None; lookup failures count as "not seen yet"."""
        for i in range(tries):
            try:
                return self.get_order(cid, symbol)
            except Exception as err:
                if not is_transient(err) or i == tries - 1:
                    log.warning("looking up order %s failed: %s", cid, err)
                    return None
                self._sleep(self.policies["lookup"].delay(i, err))
        return None

    def _settle(self, order: Order | None, symbol: str, cid: str, policy: str = "lookup") -> Order:
        """Bybit acknowledges orders before matching: poll a market order until it is final. An
        acknowledged order that cannot be seen (look-ups failing) is looked up for its policy's
        budget, then reported as accepted with an unknown outcome, never as failed."""
        mirror = self.mirror
        if order is None and mirror is not None:
            # the order stream says what became of it, usually within milliseconds: no REST polling
            row = mirror.wait_order(cid, min(1.0, self.fill_wait))
            if row is not None:
                return self._order(row)
        budget = self.policies[policy].budget_s
        start = time.monotonic()
        pause = 0.05
        while True:
            if order is None or (order.order_type == "Market" and order.status not in OrderStatus.FINAL):
                found = self._lookup(symbol, cid)
                order = found or order
            if order is not None and (order.order_type != "Market" or order.status in OrderStatus.FINAL):
                return order
            waited = time.monotonic() - start
            if order is not None and waited > self.fill_wait:
                return order
            if waited > budget:
                raise OutcomeUnknownError(f"order {cid} was accepted by Bybit but could not be seen for {waited:.0f} s: "
                                          "outcome unknown; it is resolved by its orderLinkId later (do not place "
                                          "it again)", client_order_id=cid)
            self._sleep(pause)
            pause = min(pause * 2, 1.0)

    def cancel_order(self, symbol: str, client_order_id: str) -> None:
        try:
            self._call("cancel_order", category=self.category, symbol=symbol, orderLinkId=client_order_id)
        except ExchangeAPIError as err:
            if err.code not in NOT_FOUND_CODES:
                raise
            log.info("cancel %s: already gone (%s)", client_order_id, err)

    def set_trading_stop(self, symbol: str, stop_loss: float | None = None,
                         take_profit: float | None = None) -> None:
        if self.category != "linear":
            raise InvalidOrderError(f"{symbol}: position stop-loss / take-profit exist only on linear perpetuals")
        pos = next((p for p in self.get_positions() if p.symbol == symbol), None)
        if pos is None:
            raise InvalidOrderError(f"{symbol}: no position to set a stop-loss / take-profit on")
        tick = self.get_instrument(symbol).tick_size
        params: dict[str, Any] = {"category": "linear", "symbol": symbol, "tpslMode": "Full",
                                  "positionIdx": (1 if pos.side == PositionSide.LONG else 2) if self.hedge_mode else 0}
        if stop_loss is not None:
            params["stopLoss"] = _num(round_to_tick(stop_loss, tick), tick) if stop_loss > 0 else "0"
        if take_profit is not None:
            params["takeProfit"] = _num(round_to_tick(take_profit, tick), tick) if take_profit > 0 else "0"
        try:
            self._call("set_trading_stop", **params)
        except ExchangeAPIError as err:
            if err.code != 34040:  # "not modified": already set to these values
                raise

    def close_position(self, symbol: str, *, client_order_id: str) -> Order | None:
        """Close the whole position at market; reads and the order keep at it until the close deadline."""
        pos = next((p for p in self._positions(policy="close") if p.symbol == symbol), None)
        if pos is None:
            return None
        side = Side.SELL if pos.side == PositionSide.LONG else Side.BUY
        return self._place(symbol, side, pos.size, "Market", None, self.category == "linear", None, None,
                           client_order_id=client_order_id, closing=True)
