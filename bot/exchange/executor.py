"""Turns targets ("go long BTCUSDT", "flat") into orders on any `Exchange`, paper or live alike.

Sizing: POSITION_SIZE_PCT of equity, at least MIN_ORDER_USDT (seed rule: equity 2,000 -> 100 USDT,
equity 150 -> 10 USDT), floored to the instrument's qty step; an order below the exchange's
minimum is refused here with the reason, never sent. Prices (stop-loss, take-profit) are rounded
to the tick size.

Money safety: every order gets a fresh client order id (<= 36 chars, [A-Za-z0-9_-]) that is
journaled with the intent *before* the exchange is called, then updated with the outcome
(filled / rejected / failed / lost). Every execution publishes a TRADE event; every failure an
ORDER_FAILED event, and the result says `ok=False` with the reason. Errors that must stop trading
(auth, rate limit, network after the adapter's retries, unknown exchange errors) are re-raised
after they are journaled and published, so the error handler sees them.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import (
    BotError,
    DuplicateOrderError,
    ExchangeAPIError,
    InsufficientFundsError,
    InvalidOrderError,
    NetworkError,
    OrderExecutionError,
    OutcomeUnknownError,
)
from bot.events import EventBus, EventKind
from bot.exchange.base import (
    Exchange,
    Instrument,
    ceil_to_step,
    floor_to_step,
    order_qty,
    round_to_tick,
)
from bot.journal.base import OrderJournal
from bot.records import fast_init
from bot.types import Fill, Order, OrderIntent, OrderStatus, Position, PositionSide, Side
from config import Settings

__all__ = ["TradeExecutor", "ExecutionResult", "new_client_order_id"]

log = logging.getLogger(__name__)


def new_client_order_id(prefix: str = "ord") -> str:
    """A unique Bybit-valid orderLinkId: `<prefix>-<24 hex>` (prefix cut to 11 characters), the
    hex 96 random bits from the OS (uuid4 gave 92 of its 24 digits, at five times the cost)."""
    return f"{_id_prefix(prefix)}-{os.urandom(12).hex()}"


@functools.lru_cache(maxsize=64)   # the bot's own few prefixes ("open", "close", "manual"), every order
def _id_prefix(prefix: str) -> str:
    return "".join(ch for ch in prefix if ch.isalnum() or ch in "-_")[:11] or "ord"


@fast_init
@dataclass(frozen=True)
class ExecutionResult:
    """What became of one order. `ok` is True when the exchange accepted it (filled or resting)."""

    ok: bool
    client_order_id: str
    order: Order | None = None
    fills: tuple[Fill, ...] = ()
    error: str = ""


def not_sent(why: str) -> str:
    """An instrument check's reason as the refusal a person reads: "order too large, not sent: ..."."""
    for word in ("too small", "too large"):
        if why.startswith(f"{word}: "):
            return f"order {word}, not sent: {why.removeprefix(f'{word}: ')}"
    return f"order not sent: {why}"


def _qty_text(qty: float) -> str:
    return f"{qty:.10f}".rstrip("0").rstrip(".")


def _price_text(price: float) -> str:
    decimals = 2 if price >= 10 else 4 if price >= 0.1 else 6
    return f"{price:,.{decimals}f}"


class TradeExecutor:
    """Sizes, rounds, journals and places orders; the one way the bot trades."""

    def __init__(self, exchange: Exchange, journal: OrderJournal, *, settings: Settings,
                 bus: EventBus | None = None) -> None:
        self.exchange = exchange
        self.journal = journal
        self.settings = settings
        self.bus = bus

    # -- sizing ------------------------------------------------------------------------------
    def notional_for(self, equity: float) -> float:
        """Order value in USDT for this equity: POSITION_SIZE_PCT of it, at least MIN_ORDER_USDT."""
        return max(equity * self.settings.POSITION_SIZE_PCT, self.settings.MIN_ORDER_USDT)

    def size_for(self, equity: float, price: float, instrument: Instrument) -> float:
        """Quantity for a new position, floored to the qty step; InvalidOrderError if below the minimum."""
        if price <= 0:
            raise InvalidOrderError(f"{instrument.symbol}: cannot size an order at price {price}")
        return self.qty_for_notional(self.notional_for(equity), price, instrument)

    def qty_for_notional(self, notional: float, price: float, instrument: Instrument, *,
                         at_most: bool = False) -> float:
        """Quantity for `notional` USDT, floored to the qty step, never below MIN_ORDER_USDT.

        When flooring would drop under that minimum, the bot's own orders take the smallest step
        that meets it (the per-trade risk limit is checked again on the rounded order in
        `open_position`); with `at_most` (a person named the amount) nothing above the amount is
        sent: the order is refused with the smallest amount that would do."""
        floor_usdt = self.settings.MIN_ORDER_USDT
        qty = order_qty(notional, price, instrument.qty_step, floor_usdt)
        if qty > instrument.max_market_qty:
            if at_most:   # a person named the amount: say what is too much, send nothing
                raise InvalidOrderError(not_sent(instrument.check_order(qty, price, market=True) or ""))
            qty = floor_to_step(instrument.max_market_qty, instrument.qty_step)   # the bot's own sizing: capped
        if at_most:
            floored = floor_to_step(notional / price, instrument.qty_step)
            if floored * price < floor_usdt - 1e-9:
                smallest = ceil_to_step(floor_usdt / price, instrument.qty_step)
                raise InvalidOrderError(
                    f"order too small, not sent: {notional:.2f} USDT buys {floored} {instrument.symbol} "
                    f"({floored * price:.2f} USDT) at the qty step {instrument.qty_step}, below the "
                    f"{floor_usdt:.2f} USDT minimum; the smallest order that meets it is {smallest} "
                    f"({smallest * price:.2f} USDT)")
        why = instrument.check_order(qty, price, market=True) if qty > 0 else (
            f"too small: {instrument.symbol} {notional:.2f} USDT at {_price_text(price)} is {notional / price:.8g}, "
            f"which rounds down to 0 at the qty step {instrument.qty_step}; the minimum order is "
            f"{instrument.min_qty} ({instrument.min_qty * price:.2f} USDT)")
        if why:
            raise InvalidOrderError(not_sent(why))
        return qty

    # -- targets -----------------------------------------------------------------------------
    def _position(self, symbol: str) -> Position | None:
        return next((p for p in self.exchange.get_positions() if p.symbol == symbol), None)

    def open_position(self, symbol: str, side: str, *, notional: float | None = None, qty: float | None = None,
                      stop_loss: float | None = None, take_profit: float | None = None,
                      reason: str = "signal") -> ExecutionResult:
        """Open (or add to) a long or short with a market order; size from equity unless given."""
        side = str(side).strip().lower()
        if side not in (PositionSide.LONG, PositionSide.SHORT):
            return self._refuse(symbol, f"side {side!r} is not long or short", reason)
        if side == PositionSide.SHORT and not self.settings.allows_short:
            return self._refuse(symbol, f"{symbol}: cannot open a short on {self.settings.EXCHANGE_CATEGORY} "
                                        "(spot is long only)", reason)
        try:
            inst = self.exchange.get_instrument(symbol)
            price = self.exchange.get_price(symbol)
            if qty is not None:
                q = floor_to_step(qty, inst.qty_step)
                why = inst.check_order(q, price, market=True)
                if why:
                    raise InvalidOrderError(not_sent(why))
            elif notional is not None:
                q = self.qty_for_notional(notional, price, inst)
            else:
                q = self.size_for(self.exchange.get_balance().equity, price, inst)
            if stop_loss and q > 0:
                # Rounding can add up to one qty step; the risk limit must still hold for what is sent.
                equity = self.exchange.get_balance().equity
                at_risk = q * abs(price - stop_loss)
                limit = self.settings.MAX_RISK_PER_TRADE * equity
                if at_risk > limit + 1e-9:
                    raise InvalidOrderError(
                        f"order not sent: {symbol} {q} @ {_price_text(price)} would lose {at_risk:.2f} USDT at the "
                        f"stop {_price_text(stop_loss)}, above {self.settings.MAX_RISK_PER_TRADE:.2%} of equity "
                        f"({limit:.2f} USDT)")
        except InvalidOrderError as exc:
            return self._refuse(symbol, str(exc), reason)
        sl = round_to_tick(stop_loss, inst.tick_size) if stop_loss else None
        tp = round_to_tick(take_profit, inst.tick_size) if take_profit else None
        order_side = Side.BUY if side == PositionSide.LONG else Side.SELL
        return self._send(symbol, order_side, q, reason=reason, stop_loss=sl, take_profit=tp,
                          prefix="manual" if reason == "manual" else "open")

    def close_position(self, symbol: str, *, reason: str = "signal") -> ExecutionResult | None:
        """Close the whole position in `symbol` with a reduce-only market order; None if flat."""
        pos = self._position(symbol)
        if pos is None:
            return None
        side = Side.SELL if pos.side == PositionSide.LONG else Side.BUY
        return self._send(symbol, side, pos.size, reason=reason, reduce_only=True, prefix="close",
                          closer=lambda cid: self.exchange.close_position(symbol, client_order_id=cid))

    def manual_order(self, symbol: str, side: str, usdt: float) -> ExecutionResult:
        """A market order for `usdt` worth of `symbol` (the `python -m bot order` command); the
        side in any case ("buy", "BUY", "Buy")."""
        side = str(side).strip().capitalize()
        if side not in (Side.BUY, Side.SELL):
            return self._refuse(symbol, f"side {side!r} is not Buy or Sell", "manual")
        try:
            inst = self.exchange.get_instrument(symbol)
            price = self.exchange.get_price(symbol)
            q = self.qty_for_notional(usdt, price, inst, at_most=True)
            if side == Side.SELL and not self.settings.allows_short:
                # spot sells what is free (a buy's fee was taken in the coin: 20 USDT bought is a
                # little less than 20 USDT to sell), floored to the step; never more
                pos = self._position(symbol)
                free = floor_to_step(pos.size, inst.qty_step) if pos is not None else 0.0
                if free <= 0:
                    raise InvalidOrderError(f"order not sent: no {inst.base_coin or symbol} free to sell on spot")
                if q > free:
                    log.info("%s: selling the %g free instead of %g (spot cannot sell more than it holds)",
                             symbol, free, q)
                    q = free
        except InvalidOrderError as exc:
            return self._refuse(symbol, str(exc), "manual")
        return self._send(symbol, Side(side), q, reason="manual", prefix="manual")

    # -- the one path to the exchange --------------------------------------------------------
    def _refuse(self, symbol: str, why: str, reason: str) -> ExecutionResult:
        self._emit(EventKind.ORDER_FAILED, f"⚠️ order refused · {why}", level="WARNING", symbol=symbol,
                   error=why, reason=reason, mode=self.exchange.mode, client_order_id="")
        return ExecutionResult(ok=False, client_order_id="", error=why)

    def _send(self, symbol: str, side: Side, qty: float, *, reason: str, prefix: str, reduce_only: bool = False,
              stop_loss: float | None = None, take_profit: float | None = None,
              closer: Callable[[str], Order | None] | None = None) -> ExecutionResult:
        cid = new_client_order_id(prefix)
        intent = OrderIntent(client_order_id=cid, symbol=symbol, side=side, qty=qty,
                             reduce_only=reduce_only, stop_loss=stop_loss, take_profit=take_profit,
                             mode=self.exchange.mode, reason=reason)
        self.journal.record_intent(intent)  # before the exchange hears of it: the crash-safety contract
        self.journal.update_intent(cid, OrderStatus.SENT)
        try:
            if closer is not None:
                order = closer(cid)
                if order is None:
                    self.journal.update_intent(cid, OrderStatus.CANCELLED, error="position already flat")
                    return ExecutionResult(ok=True, client_order_id=cid, error="position already flat")
            else:
                order = self.exchange.create_order(symbol, side, qty, "Market", reduce_only=reduce_only,
                                                   stop_loss=stop_loss, take_profit=take_profit,
                                                   client_order_id=cid)
        except (InvalidOrderError, InsufficientFundsError) as exc:
            return self._failed(cid, symbol, side, qty, OrderStatus.REJECTED, exc, reason)
        except DuplicateOrderError as exc:  # the adapter could not find the order it says exists
            return self._failed(cid, symbol, side, qty, OrderStatus.LOST, exc, reason)
        except (OrderExecutionError, NetworkError) as exc:
            # Sent, fate unknown: stays LOST in the journal until reconciliation finds it; never
            # reported as failed (a person reading "failed" places the order again by hand).
            self._failed(cid, symbol, side, qty, OrderStatus.LOST, exc, reason)
            if isinstance(exc, OutcomeUnknownError):
                raise
            raise OutcomeUnknownError(f"{side} {_qty_text(qty)} {symbol} ({cid}) was sent; its outcome is unknown "
                                      f"({exc}); it is resolved by its orderLinkId later", client_order_id=cid) from exc
        except BotError as exc:  # auth, rate limit, other exchange errors: the error handler decides
            status = OrderStatus.REJECTED if isinstance(exc, ExchangeAPIError) else OrderStatus.FAILED
            self._failed(cid, symbol, side, qty, status, exc, reason)
            raise
        fills: tuple[Fill, ...] = ()
        if order.filled_qty > 0:
            try:
                fills = tuple(self.exchange.get_fills(cid, symbol))
            except BotError as exc:  # the order stands; recovery journals its fills (Journal.fills_missing)
                log.warning("order %s filled, but its fills could not be read yet (%s); they are journaled at "
                            "the next reconciliation", cid, exc)
        # status, order and fills in one transaction: never "filled" without its fills
        self.journal.record_outcome(order, fills, mode=self.exchange.mode)
        if order.filled_qty > 0:
            self._trade_event(order, fills, reason)
        return ExecutionResult(ok=order.status not in (OrderStatus.REJECTED, OrderStatus.FAILED),
                               client_order_id=cid, order=order, fills=fills, error=order.reject_reason)

    def _failed(self, cid: str, symbol: str, side: Side, qty: float, status: OrderStatus, exc: Exception,
                reason: str) -> ExecutionResult:
        text = str(exc)
        self.journal.update_intent(cid, status, error=text)
        self._emit(EventKind.ORDER_FAILED, f"⚠️ {side.upper()} {symbol} {_qty_text(qty)} failed · {text}",
                   level="ERROR" if status == OrderStatus.LOST else "WARNING", symbol=symbol, side=side,
                   qty=qty, error=text, status=status, reason=reason, mode=self.exchange.mode,
                   client_order_id=cid)
        return ExecutionResult(ok=False, client_order_id=cid, error=text)

    def _trade_event(self, order: Order, fills: tuple[Fill, ...], reason: str) -> None:
        if self.bus is not None and self.bus.quiet():   # nobody would see it (a backtest): no message to build
            return
        qty = order.filled_qty
        price = order.avg_price
        fee = order.fee or sum(f.fee for f in fills)
        notional = qty * price
        icon = "🟢" if order.side == Side.BUY else "🔴"
        extra = "" if reason == "signal" else f" · {reason}"
        pnl = sum(f.realised_pnl for f in fills)
        msg = (f"{icon} {order.side.upper()} {order.symbol} {_qty_text(qty)} @ {_price_text(price)} · "
               f"{notional:,.2f} USDT · {self.exchange.mode}{extra}")
        self._emit(EventKind.TRADE, msg, symbol=order.symbol, side=order.side, qty=qty, price=price, fee=fee,
                   notional=notional, mode=self.exchange.mode, reason=reason, client_order_id=order.client_order_id,
                   reduce_only=order.reduce_only, realised_pnl=pnl)

    def _emit(self, kind: str, message: str, *, level: str = "INFO", **data: Any) -> None:
        if self.bus is not None:
            self.bus.emit(kind, message, level=level, **data)
        else:
            log.log(logging.WARNING if level != "INFO" else logging.INFO, "%s", message)
