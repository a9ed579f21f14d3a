"""The bot's plain domain records, shared by every part: orders, fills, positions, money, candles.

These are frozen dataclasses (they cross threads: engine -> window, notifier) with no behaviour
beyond a few derived properties, so any part may import them without pulling in an exchange
adapter, the engine or the journal.

Conventions: order sides are Bybit's "Buy" / "Sell" (`Side`); position sides are "long" / "short"
(`PositionSide`); modes, order states, data sources and connection states are `StrEnum`s too, so
a member *is* its plain string: it equals it, hashes like it, prints, formats, JSON-encodes and
binds in SQLite as it, and everything already on disk reads back unchanged. Quantities are in the base coin, prices and money in the quote coin (USDT); times are UTC
milliseconds; candle intervals are Bybit's ("1".."720", "D", "W", "M").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import ClassVar, Literal, overload

from bot.errors import DataError
from bot.records import fast_init

__all__ = [
    "Side", "PositionSide", "OrderType", "Mode",
    "OrderStatus", "Order", "Fill", "Position", "Balance", "OrderIntent", "ClosedTrade",
    "Candle", "CANDLE_COLUMNS", "DataSource", "Connection",
    "interval_ms", "ms_to_iso", "now_ms", "opposite",
]

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume", "turnover")


class Side(StrEnum):
    """An order's side, as Bybit spells it."""

    BUY = "Buy"
    SELL = "Sell"


class PositionSide(StrEnum):
    """A position's side."""

    LONG = "long"
    SHORT = "short"


OrderType = Literal["Market", "Limit"]


class Mode(StrEnum):
    """Where orders go: the paper wallet, Bybit, or a backtest's simulated exchange."""

    PAPER = "PAPER"
    LIVE = "LIVE"
    BACKTEST = "BACKTEST"


def now_ms() -> int:
    return int(time.time() * 1000)


def opposite(side: str) -> Side:
    """Buy <-> Sell."""
    return Side.SELL if side == Side.BUY else Side.BUY


class OrderStatus(StrEnum):
    """Order and intent states. Intents start PENDING (journaled, not yet sent).

    `OrderStatus.OPEN`, `.FINAL` and `.UNRESOLVED` are frozensets of states (not states
    themselves, so they are not members: `list(OrderStatus)` is the nine states)."""

    PENDING = "pending"            # journaled, not sent yet
    SENT = "sent"                  # handed to the exchange, no answer yet
    NEW = "new"                    # acknowledged, resting (limit) or about to fill
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"          # the exchange (or our pre-check) refused it
    FAILED = "failed"              # we could not send it; it never reached the exchange
    LOST = "lost"                  # sent but fate unknown: polled until it is known

    # Annotated without a value, these are class attributes, not members; set below the class.
    OPEN: ClassVar[frozenset[OrderStatus]]          # resting on the exchange
    FINAL: ClassVar[frozenset[OrderStatus]]         # nothing more will happen to it
    UNRESOLVED: ClassVar[frozenset[OrderStatus]]    # we do not know yet what the exchange did


OrderStatus.OPEN = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
OrderStatus.FINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                               OrderStatus.FAILED})
OrderStatus.UNRESOLVED = frozenset({OrderStatus.PENDING, OrderStatus.SENT, OrderStatus.LOST})


@fast_init
@dataclass(frozen=True)
class Order:
    """An order as the exchange knows it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType = "Market"
    status: OrderStatus = OrderStatus.NEW
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


@fast_init
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
        return 1 if self.side == PositionSide.LONG else -1


@dataclass(frozen=True)
class Balance:
    """Account money in the quote coin (USDT)."""

    equity: float            # wallet balance + unrealised P&L
    available: float         # free to open new positions
    wallet_balance: float    # cash, realised P&L included, unrealised excluded
    unrealised_pnl: float = 0.0
    coin: str = "USDT"


@fast_init
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
    mode: Mode = Mode.PAPER
    reason: str = "signal"             # signal / stop-loss / take-profit / manual / reconcile / close-all
    created_ms: int = field(default_factory=now_ms)
    status: OrderStatus = OrderStatus.PENDING
    exchange_order_id: str = ""
    error: str = ""


@fast_init
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
    mode: Mode = Mode.PAPER

    @property
    def return_pct(self) -> float:
        """Net P&L as a percent of the entry notional."""
        notional = self.qty * self.entry_price
        return 100.0 * self.pnl / notional if notional else 0.0


_MIN = 60_000
_INTERVAL_MS = {"1": _MIN, "3": 3 * _MIN, "5": 5 * _MIN, "15": 15 * _MIN, "30": 30 * _MIN,
                "60": 60 * _MIN, "120": 120 * _MIN, "240": 240 * _MIN, "360": 360 * _MIN,
                "720": 720 * _MIN, "D": 1440 * _MIN, "W": 7 * 1440 * _MIN}
# Month candles have no fixed length; 28 days is the shortest, used only as a lower bound.
_MONTH_MS = 28 * 1440 * _MIN


def interval_ms(interval: str | int) -> int:
    """Length of one candle of a Bybit interval ("1".."720", "D", "W"; "M" -> 28 days, lower bound)."""
    known = _INTERVAL_MS.get(interval) if isinstance(interval, str) else None
    if known is not None:             # the usual spelling: every candle asks, keep it one lookup
        return known
    key = str(interval).upper() if str(interval).upper() in ("D", "W", "M") else str(interval)
    if key == "M":
        return _MONTH_MS
    try:
        return _INTERVAL_MS[key]
    except KeyError:
        raise DataError(f"interval {interval!r} is not a Bybit interval; allowed: "
                        f"{', '.join(list(_INTERVAL_MS) + ['M'])}") from None


def ms_to_iso(ms: int) -> str:
    """A UTC time in milliseconds as "YYYY-MM-DD HH:MM UTC"."""
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class _CloseMs:
    """`Candle.close_ms`: when the candle closed (its open time + the interval), worked out on
    first read, then kept in the instance (the step reads it several times). A plain descriptor:
    functools.cached_property takes a lock on every first read (Python 3.11), on every candle."""

    @overload
    def __get__(self, candle: None, owner: type) -> _CloseMs: ...

    @overload
    def __get__(self, candle: Candle, owner: type) -> int: ...

    def __get__(self, candle: Candle | None, owner: type) -> int | _CloseMs:
        if candle is None:
            return self
        ms: int = candle.open_ms + interval_ms(candle.interval)
        candle.__dict__["close_ms"] = ms
        return ms


@fast_init       # one per candle of every run: its fields straight into the instance's dict
@dataclass(frozen=True)
class Candle:
    """One closed candle, as handed to the live loop."""

    symbol: str
    interval: str
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    turnover: float

    close_ms = _CloseMs()   # when it closed (open time + interval): worked out on first read


class DataSource(StrEnum):
    """Where the candles come from."""

    LIVE = "LIVE"      # candles from Bybit
    REPLAY = "REPLAY"  # recorded real candles replayed (offline or backtest)


class Connection(StrEnum):
    """The market feed's link to Bybit, as the status bar shows it. POLLING: the WebSocket stream
    is down and candles come from REST polling until it is back."""

    CONNECTED = "Connected"
    POLLING = "Polling-REST"
    RECONNECTING = "Reconnecting"
    OFFLINE_REPLAY = "Offline-REPLAY"
