"""One exchange interface, two worlds: the `Exchange` protocol and the exchange's rounding rules.

Paper (`SimExchange`) and live (`BybitExchange`) implement the same protocol, so everything
above this layer (executor, risk manager, engine) is one code path. The records it trades in
(Order, Fill, Position, Balance, ...) are the bot's domain types in `bot.types`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Protocol, runtime_checkable

from bot.types import Balance, Fill, Mode, Order, OrderType, Position, Side

__all__ = [
    "Instrument", "Exchange",
    "floor_to_step", "ceil_to_step", "order_qty", "round_to_tick",
]


@functools.lru_cache(maxsize=256, typed=True)   # a handful of steps and ticks, several times per order
def _decimal(step: float) -> Decimal:
    return Decimal(str(step))


# An order rounds the same numbers several times on its way (its quantity: the executor's sizing,
# its check, the exchange's check; its stops: the executor, then the exchange): the last results
# are kept, so only the first rounding of each number pays for the Decimal arithmetic.
@functools.lru_cache(maxsize=256, typed=True)
def floor_to_step(value: float, step: float) -> float:
    """Largest multiple of `step` not above `value` (exact in decimal, no float drift)."""
    if step <= 0:
        return value
    d_step = _decimal(step)
    return float((Decimal(str(value)) / d_step).to_integral_value(rounding=ROUND_DOWN) * d_step)


def ceil_to_step(value: float, step: float) -> float:
    """Smallest multiple of `step` not below `value` (exact in decimal)."""
    if step <= 0:
        return value
    d_step = _decimal(step)
    return float((Decimal(str(value)) / d_step).to_integral_value(rounding=ROUND_UP) * d_step)


def order_qty(notional: float, price: float, step: float, min_usdt: float) -> float:
    """The bot's order quantity for `notional` USDT: floored to the qty step, but when flooring
    would fall under the `min_usdt` minimum (and the notional itself meets it), the smallest step
    that meets it. Shared by the executor and the backtester's fast path."""
    qty = floor_to_step(notional / price, step)
    if qty * price < min_usdt - 1e-9 <= notional:
        qty = ceil_to_step(min_usdt / price, step)
    return qty


@functools.lru_cache(maxsize=256, typed=True)
def round_to_tick(price: float, tick: float) -> float:
    """Nearest multiple of `tick` (half up), exact in decimal."""
    if tick <= 0:
        return price
    d_tick = _decimal(tick)
    return float((Decimal(str(price)) / d_tick).to_integral_value(rounding=ROUND_HALF_UP) * d_tick)


@dataclass(frozen=True)
class Instrument:
    """Trading rules of one symbol, as the exchange enforces them."""

    symbol: str
    tick_size: float          # price step
    qty_step: float           # quantity step (spot: basePrecision)
    min_qty: float
    min_notional: float       # smallest qty * price (linear minNotionalValue, spot minOrderAmt)
    max_qty: float = float("inf")
    max_market_qty: float = float("inf")
    max_leverage: float = 1.0
    base_coin: str = ""
    quote_coin: str = "USDT"
    category: str = "linear"
    status: str = "Trading"

    def check_order(self, qty: float, price: float, *, reduce_only: bool = False, market: bool = False) -> str | None:
        """Why Bybit would reject this order, or None if it would accept it. The reason starts
        with "too small" or "too large" when it is about the size (`market`: a market order,
        checked against the market-order maximum, which is far below the limit-order one)."""
        if qty <= 0:
            return f"too small: {self.symbol} quantity {qty} is not positive"
        if abs(floor_to_step(qty, self.qty_step) - qty) > self.qty_step * 1e-6:
            return f"{self.symbol}: quantity {qty} is not a multiple of the step {self.qty_step}"
        if qty < self.min_qty - 1e-12:
            return f"too small: {self.symbol} quantity {qty} is below the minimum {self.min_qty}"
        limit, kind = (self.max_market_qty, "market-order ") if market else (self.max_qty, "")
        if qty > limit + 1e-12:
            return (f"too large: {self.symbol} quantity {qty:g} ({qty * price:,.2f} {self.quote_coin}) is above "
                    f"the {kind}maximum {limit:g}")
        if not reduce_only and qty * price < self.min_notional - 1e-9:
            return (f"too small: {self.symbol} order value {qty * price:.4f} {self.quote_coin} is below the minimum "
                    f"{self.min_notional}")
        return None


@runtime_checkable
class Exchange(Protocol):
    """What the executor and engine need from an exchange. Paper and live implement it alike.

    Errors are raised as the bot's own exceptions (`bot.errors`): NetworkError, RateLimitError,
    AuthError, InsufficientFundsError, InvalidOrderError, DuplicateOrderError, ExchangeAPIError.
    """

    name: str          # "paper" | "bybit"
    mode: Mode         # PAPER | LIVE

    def get_price(self, symbol: str) -> float: ...
    def get_instrument(self, symbol: str) -> Instrument: ...
    def get_balance(self) -> Balance: ...
    def get_positions(self) -> list[Position]: ...
    def get_open_orders(self, symbol: str | None = None) -> list[Order]: ...
    def create_order(self, symbol: str, side: Side, qty: float, order_type: OrderType = "Market",
                     price: float | None = None, reduce_only: bool = False, stop_loss: float | None = None,
                     take_profit: float | None = None, *, client_order_id: str) -> Order: ...
    def cancel_order(self, symbol: str, client_order_id: str) -> None: ...
    def get_order(self, client_order_id: str, symbol: str | None = None) -> Order | None: ...
    def get_fills(self, client_order_id: str, symbol: str | None = None) -> list[Fill]: ...
    def set_trading_stop(self, symbol: str, stop_loss: float | None = None,
                         take_profit: float | None = None) -> None: ...
    def close_position(self, symbol: str, *, client_order_id: str) -> Order | None: ...


