"""The paper wallet: `SimExchange` fills orders at the real market price it is fed, with Bybit's rules.

Model (Bybit linear USDT perpetual, one-way mode): margin = notional / leverage; the position
accounting is `bot.exchange.ledger` (adds average the entry price; reduces realise P&L against
that average; an order larger than the position flips it). Every fill pays the taker fee (resting limit orders the maker fee); market orders slip
SLIPPAGE_BPS against the taker. Stop-loss / take-profit live on the position and trigger from each
candle's low/high (`on_candle`, by `ledger.stop_exit`): when both are inside one candle the stop
is assumed first (worst case); the fill is at the stop/TP price, or at the candle's open when the
candle gapped through it.
Spot: the same book with leverage 1 and no shorts (a sell can only reduce a holding).

Instrument rules (tick, qty step, min qty, min notional) are Bybit's recorded values for the
common pairs (`KNOWN_INSTRUMENTS`), or come from a live `instrument_source` (a `BybitExchange`);
an unknown symbol gets a generic rule derived from its price, with a warning.

State (wallet, positions, orders, fills, closed trades, equity history) is saved atomically to
`state_path` after every fill and reloaded on construction, so paper trading survives restarts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bot.atomic import atomic_write_text
from bot.errors import (
    DataError,
    DuplicateOrderError,
    InsufficientFundsError,
    InvalidOrderError,
    WalletInUseError,
)
from bot.exchange.base import Instrument, round_to_tick
from bot.exchange.instruments import (
    KNOWN_INSTRUMENTS,
    check_client_order_id,
    generic_instrument,
    known_instrument,
)
from bot.exchange.ledger import (
    EPS,
    OpenPosition,
    PositionLedger,
    fee_of,
    pnl,
    stop_exit,
    stop_fill,
    taker_price,
)
from bot.types import Balance, ClosedTrade, Fill, Mode, Order, OrderStatus, Position, Side

__all__ = ["SimExchange", "KNOWN_INSTRUMENTS", "generic_instrument", "check_client_order_id"]  # last 3: re-exported

log = logging.getLogger(__name__)

# the journal keeps the full record; the wallet file keeps what it needs, so it stays small
_KEEP_ORDERS, _KEEP_FILLS, _KEEP_EQUITY, _KEEP_CLOSED = 500, 500, 2000, 500

@dataclass
class _Book(OpenPosition):
    """One open position of the paper wallet: the ledger's record plus what Bybit keeps on it."""

    leverage: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass
class _State:
    wallet: float
    ledger: PositionLedger
    orders: dict[str, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    closed: list[ClosedTrade] = field(default_factory=list)
    equity: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=_KEEP_EQUITY))
    prices: dict[str, float] = field(default_factory=dict)
    # the orders still open (resting limits, a market order during its delay): what the margin and
    # the candle's limit check look at, so neither walks the whole order history; not saved (rebuilt)
    open: dict[str, Order] = field(default_factory=dict)
    # each order's fills, oldest first (the fills above, by order): an order's fills are read after
    # every order, and walking the last 500 fills for them was most of a backtest order's cost
    fills_of: dict[str, list[Fill]] = field(default_factory=dict)
    # the account as it stands (`SimExchange._balance`), until the wallet, a position, a position's
    # price or an open order changes (None: work it out again); read several times per candle
    balance: Balance | None = None

    def put(self, order: Order) -> None:
        """Record `order` (new or changed) and keep the open-order index in step."""
        self.orders[order.client_order_id] = order
        if order.status in OrderStatus.OPEN:
            self.open[order.client_order_id] = order
        elif self.open:
            self.open.pop(order.client_order_id, None)
        self.balance = None   # an open order's margin is part of the balance

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.fills_of.setdefault(fill.client_order_id, []).append(fill)

    def trim_fills(self, keep: int) -> None:
        """Forget all but the last `keep` fills (the journal has the full record)."""
        extra = len(self.fills) - keep
        if extra <= 0:
            return
        for f in self.fills[:extra]:
            mine = self.fills_of[f.client_order_id]
            del mine[0]          # the oldest of its order's fills: they are kept oldest first
            if not mine:
                del self.fills_of[f.client_order_id]
        del self.fills[:extra]

    def set_price(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price
        if self.positions:     # the positions' marks move the balance; without one it stays
            self.balance = None

    def __post_init__(self) -> None:
        # the ledger's own dict (it books into it in place), read several times per candle
        self.positions: dict[str, _Book] = self.ledger.positions  # type: ignore[assignment]


class SimExchange:
    """Paper `Exchange`: fills at the price it is fed (candles or `set_price`), Bybit's rules and costs."""

    name = "paper"
    mode = Mode.PAPER

    def __init__(self, settings: Any, *, state_path: Path | None = None, clock: Callable[[], float] = time.time,
                 instrument_source: Any | None = None, price_source: Callable[[str], float] | None = None,
                 claim: bool = True, keep_closed: int | None = _KEEP_CLOSED) -> None:
        """`keep_closed`: closed trades kept in memory and in the wallet file (None: all of them, as
        a backtest needs; a paper wallet keeps the last 500, the journal has the full record)."""
        self.settings = settings
        self.category = settings.EXCHANGE_CATEGORY
        self.leverage = 1.0 if self.category == "spot" else float(settings.LEVERAGE)
        self.taker_fee = float(settings.FEE_RATE)
        self.maker_fee = float(settings.MAKER_FEE_RATE)
        self.slippage = float(settings.SLIPPAGE_BPS) / 10_000.0
        self.delay = float(settings.SIMULATION_ORDER_DELAY)
        self.clock = clock
        self.state_path = Path(state_path) if state_path else None
        self.instrument_source = instrument_source
        self.keep_closed = keep_closed
        self.price_source = price_source
        self._instruments: dict[str, Instrument] = {}
        self._lock = threading.RLock()
        self._state = _State(wallet=float(settings.PAPER_START_BALANCE), ledger=self._new_ledger())
        self._persist = claim  # a wallet opened only to look at it (claim=False) is never written
        if self.state_path and claim:
            self._claim()
        if self.state_path and self.state_path.exists():
            self._load()

    def _new_ledger(self, positions: dict[str, _Book] | None = None) -> PositionLedger:
        def new_book(**fields: Any) -> _Book:
            return _Book(leverage=self.leverage, **fields)
        return PositionLedger(mode=self.mode, positions=positions, new_position=new_book)  # type: ignore[arg-type]

    def _claim(self) -> None:
        """Mark the persisted wallet as traded by this process (pid in `<wallet>.owner`).

        Two processes trading one wallet would overwrite each other's saves and lose orders, so a
        wallet owned by another process that is still alive is refused. A process that died left a
        stale mark, which is taken over. `claim=False` opens it for reading only (`bot status`).
        """
        assert self.state_path is not None
        owner = self.state_path.with_name(self.state_path.name + ".owner")
        try:
            pid = int(owner.read_text().strip())
        except (FileNotFoundError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _process_alive(pid):
            raise WalletInUseError(
                f"paper wallet {self.state_path} is being traded by another running bot (pid {pid}); "
                "place the order in that bot (its window or its stop), or stop it first")
        atomic_write_text(owner, str(os.getpid()))

    # -- market ------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def set_price(self, symbol: str, price: float) -> list[Fill]:
        """Set the current price; resting limit orders that it crosses fill. Returns those fills."""
        if not price > 0:
            raise DataError(f"{symbol}: price {price!r} is not positive")
        with self._lock:
            self._state.set_price(symbol, float(price))
            fills = self._fill_resting(symbol, price, price, price)
            if fills:
                self._save()
            return fills

    def on_candle(self, candle: Any) -> list[Fill]:
        """A closed candle: trigger stops/TPs and limit orders from its range, then price = close.

        Returns the fills it produced (reason "stop-loss" / "take-profit" / "limit");
        `closed_trades()` has the round trips they completed.
        """
        sym = candle.symbol
        close_ms = getattr(candle, "close_ms", None)
        t = int(close_ms if close_ms is not None else self.now_ms())
        with self._lock:
            st = self._state
            if not st.positions and not st.open:
                # nothing open (most candles of a backtest): nothing can trigger or fill, and a
                # price alone does not change the balance
                st.prices[sym] = float(candle.close)
                st.equity.append((t, (st.balance or self._balance()).equity))
                return []
            o, h, lo = float(candle.open), float(candle.high), float(candle.low)
            fills = self._trigger_stops(sym, o, h, lo)
            if st.open:
                fills += self._fill_resting(sym, o, h, lo)
            st.set_price(sym, float(candle.close))
            st.equity.append((t, self._balance().equity))
            if fills:
                self._save()
            return fills

    def quiet_candles(self, symbol: str, values: np.ndarray) -> int:
        """How many of these candles of `symbol` (in order; `values` in CANDLE_COLUMNS order), from
        the first, `on_candle` would take without a fill: no stop-loss or take-profit of the
        position reached (`stop_exit`'s tests, on every candle at once) and no resting order to
        fill. 0 while another pair's position or any order is open (their marks and fills are
        `on_candle`'s alone)."""
        with self._lock:
            st = self._state
            if st.open or any(s != symbol for s in st.positions):
                return 0
            b = st.positions.get(symbol)
            if b is None or (b.stop_loss is None and b.take_profit is None):
                return len(values)
            nan = float("nan")
            stop = nan if b.stop_loss is None else b.stop_loss
            take = nan if b.take_profit is None else b.take_profit
            o, h, lo = values[:, 0], values[:, 1], values[:, 2]
            if b.side == "long":       # a NaN compares False, as in stop_exit: an unset level never fires
                hit = (o <= stop) | (o >= take) | (lo <= stop) | (h >= take)
            else:
                hit = (o >= stop) | (o <= take) | (h >= stop) | (lo <= take)
            first = int(hit.argmax())
            return first if hit[first] else len(values)

    def mark_quiet(self, symbol: str, close_ms: list[int], closes: list[float]) -> list[float]:
        """`on_candle` for candles `quiet_candles` counted (their close times and closes): each
        close becomes the price and the account's equity point, as one by one (the same float
        operations: `_balance`'s sum for the one position, then wallet + it); returns those
        equities."""
        with self._lock:
            st = self._state
            b = st.positions.get(symbol)
            if b is None:
                equities = [(st.balance or self._balance()).equity] * len(closes)
            else:
                upl = 0.0 + pnl(b.signed, b.entry, np.asarray(closes, dtype=np.float64))
                equities = (st.wallet + upl).tolist()
                st.balance = None
            st.prices[symbol] = closes[-1]
            st.equity.extend(zip(close_ms, equities, strict=True))
            return equities

    def get_price(self, symbol: str) -> float:
        with self._lock:
            price = self._state.prices.get(symbol)
        if price is None and self.price_source is not None:
            price = float(self.price_source(symbol))
            with self._lock:
                self._state.set_price(symbol, price)
        if price is None:
            raise DataError(f"paper exchange has no price for {symbol} yet: feed it a candle or set_price first")
        return price

    def get_instrument(self, symbol: str) -> Instrument:
        inst = self._instruments.get(symbol)
        if inst is not None:
            return inst
        if self.instrument_source is not None:
            inst = self.instrument_source.get_instrument(symbol)
        else:
            inst = known_instrument(symbol, self.category)
            if inst is None:
                inst = generic_instrument(symbol, self.get_price(symbol), self.category)
                log.warning("paper: no recorded Bybit rules for %s; using a generic rule (tick %s, qty step %s, "
                            "min order 5 USDT)", symbol, inst.tick_size, inst.qty_step)
        self._instruments[symbol] = inst
        return inst

    # -- account -----------------------------------------------------------------------------
    def _position_view(self, symbol: str, b: _Book) -> Position:
        """The public record of one book. Built every candle a position is open: every field is
        named here, in `Position`'s order (a test checks both), so `_record` can skip __init__."""
        mark = self._state.prices.get(symbol, b.entry)
        return _record(Position, {
            "symbol": symbol, "side": b.side, "size": b.size, "entry_price": b.entry, "mark_price": mark,
            "unrealised_pnl": b.unrealised(mark), "realised_pnl": b.realised, "stop_loss": b.stop_loss,
            "take_profit": b.take_profit, "trailing_stop": None, "leverage": b.leverage,
            "opened_ms": b.opened_ms, "fees": b.fees})

    def equity(self) -> float:
        """The account's equity now (wallet + unrealised P&L), for a caller that reads it every
        candle (the backtester)."""
        with self._lock:
            return self._balance().equity

    def equity_and_direction(self, symbol: str) -> tuple[float, int]:
        """`equity()` and `direction(symbol)` under one lock: what the backtester records at every close."""
        with self._lock:
            return self._balance().equity, self._direction(symbol)

    def direction(self, symbol: str) -> int:
        """+1 long, -1 short, 0 no position on `symbol`; without building the position record."""
        with self._lock:
            return self._direction(symbol)

    def _direction(self, symbol: str) -> int:
        b = self._state.positions.get(symbol)
        return 0 if b is None or not b.size > 0 else (1 if b.side == "long" else -1)

    def _balance(self) -> Balance:
        """The account now; worked out once per change (`_State.balance`): the engine, the candle's
        equity point and the backtester all read it on every candle."""
        st = self._state
        if st.balance is not None:
            return st.balance
        prices = st.prices
        upl: float = 0   # summed one by one, as sum() did
        margin: float = 0
        for s, b in st.positions.items():
            upl += b.unrealised(prices.get(s, b.entry))   # as its view reports it, without the view
            margin += b.size * b.entry / b.leverage
        if st.open:
            margin += sum((o.qty - o.filled_qty) * (o.price or 0) / self.leverage for o in st.open.values()
                          if not o.reduce_only)
        equity = st.wallet + upl
        st.balance = _record(Balance, {"equity": equity, "available": max(0.0, equity - margin),
                                       "wallet_balance": st.wallet, "unrealised_pnl": upl, "coin": "USDT"})
        return st.balance

    def get_balance(self) -> Balance:
        with self._lock:
            return self._balance()

    def get_position(self, symbol: str) -> Position | None:
        """The open position on `symbol` (None when flat): one record, not every pair's (the
        engine asks per pair; `get_positions` builds them all)."""
        with self._lock:
            b = self._state.positions.get(symbol)
            return None if b is None else self._position_view(symbol, b)

    def get_positions(self) -> list[Position]:
        with self._lock:
            books = self._state.positions
            if not books:
                return []
            return [self._position_view(s, b) for s, b in sorted(books.items())]

    def get_open_orders(self, symbol: str | None = None) -> list[Order]:
        with self._lock:
            return [o for o in self._state.open.values() if symbol is None or o.symbol == symbol]

    def get_order(self, client_order_id: str, symbol: str | None = None) -> Order | None:
        with self._lock:
            return self._state.orders.get(client_order_id)

    def get_fills(self, client_order_id: str, symbol: str | None = None) -> list[Fill]:
        with self._lock:
            return list(self._state.fills_of.get(client_order_id, ()))

    def get_executions(self, symbol: str, *, since_ms: int | None = None) -> list[Fill]:
        """Every fill of `symbol` (stops and limits included), oldest first, since `since_ms`."""
        with self._lock:
            return [f for f in self._state.fills if f.symbol == symbol and (since_ms is None or f.time_ms >= since_ms)]

    def closed_trades(self) -> list[ClosedTrade]:
        with self._lock:
            return list(self._state.closed)

    def equity_history(self) -> list[tuple[int, float]]:
        """(time ms, equity) after each candle fed to `on_candle`."""
        with self._lock:
            return list(self._state.equity)

    # -- orders ------------------------------------------------------------------------------
    def create_order(self, symbol: str, side: str, qty: float, order_type: str = "Market",
                     price: float | None = None, reduce_only: bool = False, stop_loss: float | None = None,
                     take_profit: float | None = None, *, client_order_id: str) -> Order:
        """Check the order as Bybit would, wait SIMULATION_ORDER_DELAY, then fill it (or rest a limit)."""
        check_client_order_id(client_order_id)
        if side not in ("Buy", "Sell") or order_type not in ("Market", "Limit"):
            raise InvalidOrderError(f"{symbol}: side {side!r} / order type {order_type!r} not allowed; "
                                    "use Buy/Sell and Market/Limit", client_order_id=client_order_id)
        if order_type == "Limit" and not (price and price > 0):
            raise InvalidOrderError(f"{symbol}: a limit order needs a positive price", client_order_id=client_order_id)
        inst = self.get_instrument(symbol)
        last = self.get_price(symbol)
        with self._lock:
            if client_order_id in self._state.orders:
                raise DuplicateOrderError(f"client order id {client_order_id} was already used",
                                          client_order_id=client_order_id)
            qty = self._precheck(symbol, side, qty, order_type, price, reduce_only, inst, last, client_order_id)
            now = self.now_ms()
            order = Order(client_order_id=client_order_id, symbol=symbol, side=side, qty=qty,  # type: ignore[arg-type]
                          order_type=order_type, status=OrderStatus.NEW,  # type: ignore[arg-type]
                          price=round_to_tick(price, inst.tick_size) if price else None,
                          reduce_only=reduce_only, stop_loss=stop_loss, take_profit=take_profit,
                          exchange_order_id=f"paper-{client_order_id}", created_ms=now,
                          updated_ms=now)
            # Not saved yet: a crash during the delay means the order never reached the "exchange",
            # which is what the journal's recovery will conclude from its absence.
            self._state.put(order)
        if self.delay > 0:
            time.sleep(self.delay)  # mimic the exchange's latency, outside the lock
        with self._lock:
            last = self._state.prices.get(symbol, last)
            limit = order.price if order.price is not None else last
            marketable = order_type == "Market" or (side == "Buy" and limit >= last) or (
                side == "Sell" and limit <= last)
            if marketable:
                fill_px = round_to_tick(taker_price(last, 1 if side == "Buy" else -1, self.slippage), inst.tick_size)
                if order_type == "Limit":
                    fill_px = min(fill_px, limit) if side == "Buy" else max(fill_px, limit)
                self._execute(order, fill_px, maker=False, reason="signal")
            self._save()
            return self._state.orders[client_order_id]

    def _precheck(self, symbol: str, side: str, qty: float, order_type: str, price: float | None,
                  reduce_only: bool, inst: Instrument, last: float, cid: str) -> float:
        ref = price if order_type == "Limit" and price is not None else last
        b = self._state.positions.get(symbol)
        against = b is not None and ((b.side == "long") == (side == "Sell"))
        if reduce_only:
            if not against:
                raise InvalidOrderError(f"{symbol}: reduce-only {side} with no {'long' if side == 'Sell' else 'short'} "
                                        "position to reduce (Bybit 110017)", client_order_id=cid)
            qty = min(qty, b.size)  # type: ignore[union-attr]
        why = inst.check_order(qty, ref, reduce_only=reduce_only, market=order_type == "Market")
        if why:
            raise InvalidOrderError(why, client_order_id=cid)
        if self.category == "spot" and side == "Sell" and not reduce_only:
            held = b.size if b is not None and b.side == "long" else 0.0
            if qty > held + EPS:
                raise InsufficientFundsError(f"{symbol}: spot sell of {qty} but only {held} held (spot cannot short)",
                                             code=170131)
        if not reduce_only:
            opening = max(0.0, qty - b.size) if against else qty  # type: ignore[union-attr]
            need = opening * ref / self.leverage + qty * ref * self.taker_fee
            avail = self._balance().available
            if need > avail + 1e-9:
                raise InsufficientFundsError(f"{symbol}: order needs {need:.2f} USDT margin+fee but only "
                                             f"{avail:.2f} USDT is available", code=110007)
        return qty

    def cancel_order(self, symbol: str, client_order_id: str) -> None:
        with self._lock:
            o = self._state.orders.get(client_order_id)
            if o is None or o.status not in OrderStatus.OPEN:
                return  # like Bybit's 110001 "order does not exist": nothing left to cancel
            self._state.put(_replace(o, status=OrderStatus.CANCELLED, updated_ms=self.now_ms()))
            self._save()

    def set_trading_stop(self, symbol: str, stop_loss: float | None = None,
                         take_profit: float | None = None) -> None:
        with self._lock:
            b = self._state.positions.get(symbol)
            if b is None:
                raise InvalidOrderError(f"{symbol}: no position to set a stop-loss / take-profit on")
            tick = self.get_instrument(symbol).tick_size
            if stop_loss is not None:
                b.stop_loss = round_to_tick(stop_loss, tick) if stop_loss > 0 else None
            if take_profit is not None:
                b.take_profit = round_to_tick(take_profit, tick) if take_profit > 0 else None
            self._save()

    def close_position(self, symbol: str, *, client_order_id: str) -> Order | None:
        with self._lock:
            b = self._state.positions.get(symbol)
            if b is None:
                return None
            side, size = ("Sell" if b.side == "long" else "Buy"), b.size
        return self.create_order(symbol, side, size, reduce_only=True, client_order_id=client_order_id)

    # -- fills and accounting ----------------------------------------------------------------
    def _execute(self, order: Order, price: float, *, maker: bool, reason: str) -> Fill:
        qty = order.qty - order.filled_qty
        fee = fee_of(qty, price, self.maker_fee if maker else self.taker_fee)
        now = self.now_ms()
        realised = self._apply(order.symbol, order.side, qty, price, fee, order, reason, now)
        fill = Fill(client_order_id=order.client_order_id, symbol=order.symbol, side=order.side, qty=qty, price=price,
                    fee=fee, time_ms=now, exchange_order_id=order.exchange_order_id,
                    exec_id=f"paper-{order.client_order_id}-{len(self._state.fills)}", is_maker=maker,
                    realised_pnl=realised, reason=reason)
        self._state.add_fill(fill)
        filled = order.filled_qty + qty
        avg = price if order.filled_qty == 0 else (order.avg_price * order.filled_qty + price * qty) / filled
        self._state.put(_replace(order, status=OrderStatus.FILLED, filled_qty=filled, avg_price=avg,
                                 fee=order.fee + fee, updated_ms=now))
        return fill

    def _apply(self, symbol: str, side: str, qty: float, price: float, fee: float, order: Order | None,
               reason: str, now: int) -> float:
        """Book one fill into the position (`PositionLedger`) and the wallet; returns the P&L it
        realised (before fees)."""
        st = self._state
        booked = st.ledger.book(symbol, side, qty, price, fee, now, reason=reason)
        st.balance = None
        st.wallet -= fee
        st.wallet += booked.realised
        if booked.closed is not None:
            st.closed.append(booked.closed)
            if booked.opened is not None and self.category == "spot":
                raise AssertionError("spot flip slipped past the pre-check")
        b = st.positions.get(symbol)
        if order is not None and b is not None and (b.side == "long") == (side == "Buy"):
            # the position this order opened or added to carries the order's stops
            tick = self.get_instrument(symbol).tick_size
            if order.stop_loss:
                b.stop_loss = round_to_tick(order.stop_loss, tick)
            if order.take_profit:
                b.take_profit = round_to_tick(order.take_profit, tick)
        return booked.realised

    def _trigger_stops(self, symbol: str, o: float, h: float, lo: float) -> list[Fill]:
        b = self._state.positions.get(symbol)
        if b is None or (b.stop_loss is None and b.take_profit is None):
            return []
        long = b.side == "long"
        nan = float("nan")
        hit = stop_exit(1 if long else -1, o, h, lo, nan if b.stop_loss is None else b.stop_loss,
                        nan if b.take_profit is None else b.take_profit)
        if hit is None:
            return []
        level, reason = hit
        # the triggered stop is a market order: it slips against us like any other (ledger.stop_fill)
        price = stop_fill(level, 1 if long else -1, self.slippage, self.get_instrument(symbol).tick_size)
        now = self.now_ms()
        cid = f"{'sl' if reason == 'stop-loss' else 'tp'}-{symbol}-{now}-{len(self._state.fills)}"[:36]
        order = Order(client_order_id=cid, symbol=symbol, side=Side.SELL if long else Side.BUY, qty=b.size,
                      reduce_only=True, exchange_order_id=f"paper-{cid}", created_ms=now)
        self._state.put(order)
        return [self._execute(order, price, maker=False, reason=reason)]

    def _fill_resting(self, symbol: str, o: float, h: float, lo: float) -> list[Fill]:
        fills: list[Fill] = []
        if not self._state.open:
            return fills
        for order in list(self._state.open.values()):
            if order.symbol != symbol or order.price is None:
                continue
            lim = order.price
            if order.side == "Buy" and lo <= lim:
                fills.append(self._execute(order, min(o, lim), maker=o > lim, reason="limit"))
            elif order.side == "Sell" and h >= lim:
                fills.append(self._execute(order, max(o, lim), maker=o < lim, reason="limit"))
        return fills

    # -- persistence -------------------------------------------------------------------------
    def _trim(self) -> None:
        st = self._state
        if len(st.orders) > _KEEP_ORDERS:
            extra = len(st.orders) - _KEEP_ORDERS
            old = []
            for c, o in st.orders.items():      # oldest first: stop as soon as enough are found
                if o.status in OrderStatus.FINAL:
                    old.append(c)
                    if len(old) == extra:
                        break
            for cid in old:
                del st.orders[cid]
        st.trim_fills(_KEEP_FILLS)
        if self.keep_closed is not None:
            del st.closed[:-self.keep_closed]

    def save(self) -> None:
        """Write the state now (it is also written after every fill)."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        self._trim()
        if self.state_path is None or not self._persist:
            return
        st = self._state
        data = {"version": 1, "category": self.category, "wallet": st.wallet, "prices": st.prices,
                "positions": {s: dict(vars(b)) for s, b in st.positions.items()},  # flat records: no asdict
                "orders": [vars(o) for o in st.orders.values()], "fills": [vars(f) for f in st.fills],
                "closed": [vars(t) for t in st.closed], "equity": list(st.equity)}
        text = json.dumps(data)  # one string, one write: json.dump's many small writes are slow
        atomic_write_text(self.state_path, text)

    def _load(self) -> None:
        assert self.state_path is not None
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            st = _State(wallet=float(data["wallet"]), ledger=self._new_ledger(
                {s: _Book(**b) for s, b in data.get("positions", {}).items()}))
            st.prices = {k: float(v) for k, v in data.get("prices", {}).items()}
            for o in data.get("orders", []):
                st.put(Order(**o))
            for f in data.get("fills", []):
                st.add_fill(Fill(**f))
            st.closed = [ClosedTrade(**t) for t in data.get("closed", [])]
            st.equity.extend((int(t), float(e)) for t, e in data.get("equity", []))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"paper wallet file {self.state_path} is unreadable ({exc}); move it away to start a "
                            "fresh wallet, or restore it from a backup") from exc
        if data.get("category", self.category) != self.category:
            raise DataError(f"paper wallet file {self.state_path} is for category {data.get('category')!r} but "
                            f"EXCHANGE_CATEGORY is {self.category!r}; use another HISTORICAL_DATA_PATH or move it away")
        self._state = st


_R = TypeVar("_R")


def _record(cls: type[_R], fields: dict[str, Any]) -> _R:
    """A frozen record of `cls` holding `fields` (every one of its fields), without the dataclass
    __init__, which sets each field through object.__setattr__: 3 us for a `Position`, paid on
    every candle a position is open, and several times per order. The records of `bot.types` have
    no __post_init__ or validation that this would skip."""
    rec = object.__new__(cls)
    rec.__dict__.update(fields)
    return rec


def _replace(order: Order, **changes: Any) -> Order:
    """`dataclasses.replace(order, **changes)` at a fifth of its cost (see `_record`)."""
    fields = {**order.__dict__, **changes}
    if len(fields) != len(order.__dict__):
        raise TypeError(f"Order has no field {sorted(fields.keys() - order.__dict__.keys())}")
    return _record(Order, fields)


def _process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without touching it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
