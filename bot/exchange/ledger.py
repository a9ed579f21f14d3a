"""The position ledger: how fills become a position, realised P&L, fees and round trips.

One source of the accounting for every place that keeps a position: the paper exchange
(`SimExchange`), the engine's trade book (`bot.engine.state.TradeBook`), the backtest fast path
(`bot.research.fast_path`) and the training environment (`bot.agent.environment`).

Model (Bybit linear perpetual, one-way mode): a position is a signed size (long > 0) at an
average entry price. A fill on the position's side adds and re-averages the entry; a fill
against it reduces it and realises `direction x (price - entry) x closed qty` (before fees);
a fill larger than the position closes it and opens the rest on the other side at the fill
price (the reversal). Every fill pays `qty x price x rate`; a fill that closes and reopens
splits its fee between the two in proportion to the quantity. A round trip (`ClosedTrade`)
reports the quantity exited, the average entry, the quantity-weighted exit price and its P&L
net of every fee paid on it.

Two layers: pure functions of numbers (`apply_fill`, `pnl`, `fee_of`, `exit_line`,
`taker_price`, `stop_exit`, `round_trip`) that the hot loops call with their own locals or
numpy arrays, and `PositionLedger`, the per-symbol book of `OpenPosition` records built on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.exchange.base import round_to_tick
from bot.records import fast_init
from bot.types import ClosedTrade, Fill, Mode, PositionSide

__all__ = ["OpenPosition", "PositionLedger", "Booked", "apply_fill", "pnl", "fee_of", "exit_line",
           "taker_price", "stop_exit", "stop_fill", "round_trip", "replay_fills", "STOP_LOSS", "TAKE_PROFIT", "EPS"]

EPS = 1e-12          # sizes are rounded to 12 decimals; a size at or below this is no position
STOP_LOSS, TAKE_PROFIT = "stop-loss", "take-profit"


# -- the arithmetic -----------------------------------------------------------------------------
def apply_fill(size: float, entry: float, qty: float, price: float) -> tuple[float, float, float, float]:
    """Book a fill of signed `qty` (buy > 0) at `price` into a position of signed `size` at
    average `entry`. Returns (size, entry, closed, realised): the new position (entry 0.0 when
    flat), the quantity taken off the old side and the P&L that realised, before fees."""
    if size == 0.0:                           # open (sizes are rounded where fills accumulate)
        return qty, price, 0.0, 0.0
    if (size > 0.0) == (qty > 0.0):           # add: the entry becomes the quantity-weighted mean
        a, q = abs(size), abs(qty)
        return round(size + qty, 12), (a * entry + q * price) / (a + q), 0.0, 0.0
    direction = 1.0 if size > 0.0 else -1.0
    closed = min(abs(qty), abs(size))
    realised = direction * (price - entry) * closed
    new = round(size + qty, 12)
    if abs(new) <= EPS:
        return 0.0, 0.0, closed, realised
    if (new > 0.0) == (size > 0.0):          # reduced
        return new, entry, closed, realised
    return new, price, closed, realised       # reversed: the rest opens at the fill price


def pnl(size: Any, entry: Any, price: Any) -> Any:
    """P&L of a signed `size` bought at `entry` and valued at `price` (numbers or numpy arrays):
    the unrealised P&L at a mark, or what a full close at `price` realises."""
    return size * (price - entry)


def fee_of(qty: Any, price: Any, rate: Any) -> Any:
    """The fee of a fill of `qty` (either sign) at `price`; `rate` is a fraction of notional."""
    return abs(qty) * price * rate


def exit_line(cash: Any, size: Any, entry: Any, rate: Any) -> tuple[Any, Any]:
    """(base, slope) such that closing the position at price X leaves `base + slope * X`
    (= cash + pnl(size, entry, X) - fee_of(size, X, rate)); marking it to market at X is
    `base + size * X`. Numbers or numpy arrays: the training environment keeps its positions in
    this linear form so a step is a few array operations."""
    return cash - size * entry, size - rate * abs(size)


def taker_price(price: Any, direction: Any, slip: Any) -> Any:
    """The fill price of a market order: `slip` (a fraction of price) against the taker,
    `direction` +1 buying, -1 selling."""
    return price + direction * price * slip


def stop_exit(direction: int, open_: float, high: float, low: float, stop: float,
              take: float) -> tuple[float, str] | None:
    """Whether a candle closes a position by its stop-loss or take-profit, and at what price.

    `direction` +1 long, -1 short; a level that is NaN is not set. A candle that opens beyond a
    level gapped through it: filled at the open. Otherwise a long is stopped when the low
    touches the stop and takes profit when the high touches the target (a short the other way
    round). When one candle touches both, the stop counts (its order inside the candle is
    unknown; assume the worst). Returns (price, "stop-loss" | "take-profit") or None."""
    if direction > 0:
        if open_ <= stop:                    # NaN compares False: an unset level never fires
            return open_, STOP_LOSS
        if open_ >= take:
            return open_, TAKE_PROFIT
        if low <= stop:
            return stop, STOP_LOSS
        if high >= take:
            return take, TAKE_PROFIT
    elif direction < 0:
        if open_ >= stop:
            return open_, STOP_LOSS
        if open_ <= take:
            return open_, TAKE_PROFIT
        if high >= stop:
            return stop, STOP_LOSS
        if low <= take:
            return take, TAKE_PROFIT
    return None


def stop_fill(level: float, direction: int, slip: float, tick: float = 0.0) -> float:
    """The fill of a triggered stop-loss or take-profit closing a `direction` position: the
    level (or the open, when the candle gapped through it) is a market order's trigger, so the
    fill slips against us by `slip` like any market order, then lands on the price tick. Every
    path fills stops this way: the paper exchange, the backtester's loops and the training env."""
    px = taker_price(level, -direction, slip)
    return round_to_tick(px, tick) if tick > 0 else px


def round_trip(symbol: str, direction: int, qty: float, entry: float, exit_price: float, entry_ms: int,
               exit_ms: int, realised: float, fees: float, reason: str, mode: str) -> ClosedTrade:
    """The `ClosedTrade` of a position that went back to flat: P&L = realised - every fee paid."""
    return ClosedTrade(symbol, PositionSide.LONG if direction > 0 else PositionSide.SHORT, qty, entry, exit_price,
                       entry_ms, exit_ms, realised - fees, fees, reason, Mode(mode))


# -- the book -----------------------------------------------------------------------------------
@dataclass
class OpenPosition:
    """One open position's running totals (mutable; `bot.types.Position` is the public view).

    The field names are those of the paper wallet's saved file (SimExchange): keep them."""

    side: str                 # long / short
    size: float               # > 0
    entry: float              # average entry price
    opened_ms: int
    realised: float = 0.0     # P&L realised by reductions so far, before fees
    fees: float = 0.0         # every fee paid on this position (its share of a reversing fill)
    max_size: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0   # sum of exit qty x price: the round trip's exit price is the mean
    reason: str = "signal"    # why it was last reduced (the closed trade's reason)

    @property
    def signed(self) -> float:
        return self.size if self.side == "long" else -self.size

    def unrealised(self, mark: float) -> float:
        return float(pnl(self.signed, self.entry, mark))


@fast_init
@dataclass(frozen=True)
class Booked:
    """What one fill did: P&L realised (before fees), the round trip it completed, and the
    position it opened (a new one, or the other side after a reversal)."""

    realised: float = 0.0
    closed: ClosedTrade | None = None
    opened: OpenPosition | None = None


class PositionLedger:
    """Open positions per symbol, fed fills (`book`), giving realised P&L and round trips.

    `new_position(side=, size=, entry=, opened_ms=, max_size=, fees=)` makes the record of a
    position a fill opens (an `OpenPosition` subclass may carry more, like the paper exchange's
    stops). `mode` is written on the round trips."""

    def __init__(self, *, mode: str = Mode.PAPER, positions: dict[str, OpenPosition] | None = None,
                 new_position: Callable[..., OpenPosition] = OpenPosition) -> None:
        self.mode = Mode(mode)
        self.positions: dict[str, OpenPosition] = {} if positions is None else positions
        self._new = new_position

    def book(self, symbol: str, side: str, qty: float, price: float, fee: float, time_ms: int, *,
             reason: str = "signal", realised: float | None = None, dust: float = 0.0) -> Booked:
        """Book one fill (`side` Buy / Sell, `qty` > 0, `fee` paid on all of it).

        `realised`: the P&L the exchange reports for the fill, used instead of the computed one
        when it is given and not zero (a live position adopted at an approximate entry).
        `dust`: a reduction that leaves at most this much (spot: less than one quantity step,
        which can never be sold) closes the round trip; the dust stays in the wallet."""
        p = self.positions.get(symbol)
        signed = qty if side == "Buy" else -qty
        if p is not None and dust and (p.signed > 0) != (signed > 0) and 0 < abs(signed) - p.size <= dust:
            signed = -p.signed          # a close that also sold earlier dust: no reversal of a dust amount
        size, entry, closed, gain = apply_fill(p.signed if p is not None else 0.0,
                                               p.entry if p is not None else 0.0, signed, price)
        if closed == 0.0:                      # opened or added
            if p is None:
                p = self.positions[symbol] = self._new(side="long" if size > 0 else "short", size=abs(size),
                                                       entry=entry, opened_ms=time_ms, max_size=abs(size), fees=fee)
                return Booked(opened=p)
            p.size, p.entry = abs(size), entry
            p.max_size = max(p.max_size, p.size)
            p.fees += fee
            return Booked()
        assert p is not None                   # something closed, so there was a position
        if realised:
            gain = realised
        p.realised += gain
        p.fees += fee * closed / qty
        p.exit_qty += closed
        p.exit_value += closed * price
        p.reason = reason
        if size != 0.0 and (size > 0) == (p.side == "long"):    # reduced, still open
            if abs(size) > dust:
                p.size = abs(size)
                return Booked(gain)
            size = 0.0                                          # only dust left: the round trip is done
        del self.positions[symbol]
        trade = round_trip(symbol, 1 if p.side == "long" else -1, p.exit_qty, p.entry, p.exit_value / p.exit_qty,
                           p.opened_ms, time_ms, p.realised, p.fees, reason, self.mode)
        if size == 0.0:
            return Booked(gain, trade)
        rest = abs(size)                       # reversed: the rest opens the other side
        nb = self.positions[symbol] = self._new(side="long" if size > 0 else "short", size=rest, entry=entry,
                                                opened_ms=time_ms, max_size=rest, fees=fee * rest / qty)
        return Booked(gain, trade, nb)


def replay_fills(fills: Iterable[Fill], *, mode: str, dust: float = 0.0) -> tuple[PositionLedger, list[ClosedTrade]]:
    """Book `fills` (oldest first) into a fresh ledger: what is open after them, and the round
    trips they made, each net of both its fees (how a journal's own record is read back)."""
    ledger = PositionLedger(mode=mode)
    trades = []
    for f in sorted(fills, key=lambda f: f.time_ms):
        booked = ledger.book(f.symbol, f.side, f.qty, f.price, f.fee, f.time_ms, reason=f.reason, dust=dust)
        if booked.closed is not None:
            trades.append(booked.closed)
    return ledger, trades
