"""One exchange interface, two worlds: the `Exchange` protocol and its plain records.

Paper (`SimExchange`) and live (`BybitExchange`) implement the same protocol, so everything
above this layer (executor, risk manager, engine) is one code path. Records are frozen
dataclasses because they cross threads (engine -> UI).

Conventions: order sides are Bybit's "Buy" / "Sell"; position sides are "long" / "short";
quantities are in the base coin, prices and money in the quote coin (USDT); times are UTC
milliseconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Side", "PositionSide", "OrderType", "Mode",
    "Instrument", "Order", "Fill", "Position", "Balance", "OrderIntent", "OrderStatus", "ClosedTrade",
    "Exchange", "OrderJournal", "MemoryJournal",
    "floor_to_step", "ceil_to_step", "order_qty", "round_to_tick", "opposite", "now_ms",
]

Side = Literal["Buy", "Sell"]
PositionSide = Literal["long", "short"]
OrderType = Literal["Market", "Limit"]
Mode = Literal["PAPER", "LIVE", "BACKTEST"]


def now_ms() -> int:
    return int(time.time() * 1000)


def opposite(side: str) -> str:
    """Buy <-> Sell."""
    return "Sell" if side == "Buy" else "Buy"


def floor_to_step(value: float, step: float) -> float:
    """Largest multiple of `step` not above `value` (exact in decimal, no float drift)."""
    if step <= 0:
        return value
    d_step = Decimal(str(step))
    return float((Decimal(str(value)) / d_step).to_integral_value(rounding=ROUND_DOWN) * d_step)


def ceil_to_step(value: float, step: float) -> float:
    """Smallest multiple of `step` not below `value` (exact in decimal)."""
    if step <= 0:
        return value
    d_step = Decimal(str(step))
    return float((Decimal(str(value)) / d_step).to_integral_value(rounding=ROUND_UP) * d_step)


def order_qty(notional: float, price: float, step: float, min_usdt: float) -> float:
    """The bot's order quantity for `notional` USDT: floored to the qty step, but when flooring
    would fall under the `min_usdt` minimum (and the notional itself meets it), the smallest step
    that meets it. Shared by the executor and the backtester's fast path."""
    qty = floor_to_step(notional / price, step)
    if qty * price < min_usdt - 1e-9 <= notional:
        qty = ceil_to_step(min_usdt / price, step)
    return qty


def round_to_tick(price: float, tick: float) -> float:
    """Nearest multiple of `tick` (half up), exact in decimal."""
    if tick <= 0:
        return price
    d_tick = Decimal(str(tick))
    return float((Decimal(str(price)) / d_tick).to_integral_value(rounding=ROUND_HALF_UP) * d_tick)


class OrderStatus:
    """Order and intent states. Intents start PENDING (journaled, not yet sent)."""

    PENDING = "pending"            # journaled, not sent yet
    SENT = "sent"                  # handed to the exchange, no answer yet
    NEW = "new"                    # acknowledged, resting (limit) or about to fill
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"          # the exchange (or our pre-check) refused it
    FAILED = "failed"              # we could not send it; it never reached the exchange
    LOST = "lost"                  # sent but fate unknown: polled until it is known

    OPEN = frozenset({NEW, PARTIALLY_FILLED})
    FINAL = frozenset({FILLED, CANCELLED, REJECTED, FAILED})
    UNRESOLVED = frozenset({PENDING, SENT, LOST})


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

    def check_order(self, qty: float, price: float, *, reduce_only: bool = False) -> str | None:
        """Why Bybit would reject this order, or None if it would accept it."""
        if qty <= 0:
            return f"{self.symbol}: quantity {qty} is not positive"
        if abs(floor_to_step(qty, self.qty_step) - qty) > self.qty_step * 1e-6:
            return f"{self.symbol}: quantity {qty} is not a multiple of the step {self.qty_step}"
        if qty < self.min_qty - 1e-12:
            return f"{self.symbol}: quantity {qty} is below the minimum {self.min_qty}"
        if qty > self.max_qty:
            return f"{self.symbol}: quantity {qty} is above the maximum {self.max_qty}"
        if not reduce_only and qty * price < self.min_notional - 1e-9:
            return (f"{self.symbol}: order value {qty * price:.4f} {self.quote_coin} is below the minimum "
                    f"{self.min_notional}")
        return None


@dataclass(frozen=True)
class Order:
    """An order as the exchange knows it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = "Market"
    status: str = OrderStatus.NEW
    price: float | None = None           # limit price
    avg_price: float = 0.0               # average fill price, 0 when nothing filled
    filled_qty: float = 0.0
    fee: float = 0.0                     # fees paid so far, quote coin
    reduce_only: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None
    exchange_order_id: str = ""
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    reject_reason: str = ""


@dataclass(frozen=True)
class Fill:
    """One execution (trade) of an order."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    fee: float
    time_ms: int
    exchange_order_id: str = ""
    exec_id: str = ""
    is_maker: bool = False
    realised_pnl: float = 0.0            # P&L this fill realised (reduces/closes), before its fee
    reason: str = "signal"               # signal / stop-loss / take-profit / manual / reconcile / liquidation


@dataclass(frozen=True)
class Position:
    """An open position (one-way mode: at most one per symbol)."""

    symbol: str
    side: PositionSide
    size: float                          # base coin, always positive
    entry_price: float                   # average entry
    mark_price: float = 0.0
    unrealised_pnl: float = 0.0
    realised_pnl: float = 0.0            # since the position opened, before fees
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None   # distance in price, if trailing
    leverage: float = 1.0
    opened_ms: int = 0
    fees: float = 0.0                    # fees paid on this position so far

    @property
    def notional(self) -> float:
        return self.size * (self.mark_price or self.entry_price)

    @property
    def direction(self) -> int:
        """+1 long, -1 short."""
        return 1 if self.side == "long" else -1

    def with_mark(self, mark: float) -> "Position":
        return replace(self, mark_price=mark, unrealised_pnl=self.direction * (mark - self.entry_price) * self.size)


@dataclass(frozen=True)
class Balance:
    """Account money in the quote coin (USDT)."""

    equity: float            # wallet balance + unrealised P&L
    available: float         # free to open new positions
    wallet_balance: float    # cash, realised P&L included, unrealised excluded
    unrealised_pnl: float = 0.0
    coin: str = "USDT"


@dataclass(frozen=True)
class OrderIntent:
    """What we mean to send, journaled *before* it is sent (the crash-safety contract)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = "Market"
    price: float | None = None
    reduce_only: bool = False
    stop_loss: float | None = None
    take_profit: float | None = None
    mode: str = "PAPER"
    reason: str = "signal"             # signal / stop-loss / take-profit / manual / reconcile / close-all
    created_ms: int = field(default_factory=now_ms)
    status: str = OrderStatus.PENDING
    exchange_order_id: str = ""
    error: str = ""


@runtime_checkable
class Exchange(Protocol):
    """What the executor and engine need from an exchange. Paper and live implement it alike.

    Errors are raised as the bot's own exceptions (`bot.errors`): NetworkError, RateLimitError,
    AuthError, InsufficientFundsError, InvalidOrderError, DuplicateOrderError, ExchangeAPIError.
    """

    name: str          # "paper" | "bybit"
    mode: str          # "PAPER" | "LIVE"

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


@runtime_checkable
class OrderJournal(Protocol):
    """Where the executor writes intents, orders and fills. `bot/journal/store.py` implements it on SQLite;
    `MemoryJournal` in memory (tests, backtests)."""

    def record_intent(self, intent: OrderIntent) -> None: ...
    def update_intent(self, client_order_id: str, status: str, *, exchange_order_id: str = "",
                      error: str = "") -> None: ...
    def record_fill(self, fill: Fill, *, mode: str) -> None: ...
    def get_intent(self, client_order_id: str) -> OrderIntent | None: ...
    def unresolved_intents(self) -> list[OrderIntent]: ...


class MemoryJournal:
    """An in-memory `OrderJournal` (tests, backtests). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.intents: dict[str, OrderIntent] = {}
        self.fills: list[tuple[Fill, str]] = []

    def record_intent(self, intent: OrderIntent) -> None:
        with self._lock:
            if intent.client_order_id in self.intents:
                raise ValueError(f"client order id {intent.client_order_id} is already journaled")
            self.intents[intent.client_order_id] = intent

    def update_intent(self, client_order_id: str, status: str, *, exchange_order_id: str = "",
                      error: str = "") -> None:
        with self._lock:
            old = self.intents[client_order_id]
            self.intents[client_order_id] = replace(
                old, status=status, exchange_order_id=exchange_order_id or old.exchange_order_id,
                error=error or old.error)

    def record_fill(self, fill: Fill, *, mode: str) -> None:
        with self._lock:
            self.fills.append((fill, mode))

    def get_intent(self, client_order_id: str) -> OrderIntent | None:
        with self._lock:
            return self.intents.get(client_order_id)

    def unresolved_intents(self) -> list[OrderIntent]:
        with self._lock:
            return [i for i in self.intents.values() if i.status in OrderStatus.UNRESOLVED]


@dataclass(frozen=True)
class ClosedTrade:
    """A round trip: a position opened and closed (or reduced to zero)."""

    symbol: str
    side: PositionSide
    qty: float
    entry_price: float
    exit_price: float
    entry_ms: int
    exit_ms: int
    pnl: float               # net of all fees of the round trip, quote coin
    fees: float
    reason: str = "signal"   # signal / stop-loss / take-profit / manual / reconcile / close-all
    mode: str = "PAPER"

    @property
    def return_pct(self) -> float:
        """Net P&L as a percent of the entry notional."""
        notional = self.qty * self.entry_price
        return 100.0 * self.pnl / notional if notional else 0.0
