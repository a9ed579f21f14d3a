"""A person's orders (`CandleStep` is a `ManualOrders`): the window's, Telegram's, the dashboard's
and `python -m bot order`'s buy, sell, close and close-all, through the same circuit breaker,
risk checks and executor as the bot's own orders (the step's `_open` and `_close`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bot.types import ClosedTrade, Fill, Position

if TYPE_CHECKING:
    from bot.engine.components import Components
    from bot.engine.engine_state import EngineState
    from bot.engine.state import PairState
    from bot.strategies.base import Decision
    from config import Settings

__all__ = ["ManualOrderResult", "ManualOrders"]


@dataclass(frozen=True)
class ManualOrderResult:
    """What became of a person's order: filled, or refused and why."""

    ok: bool
    message: str
    symbol: str
    side: str = ""
    qty: float = 0.0
    price: float = 0.0
    client_order_id: str = ""


class ManualOrders:
    """`CandleStep`'s methods for a person's orders."""

    # the step's own, set by CandleStep.__init__
    settings: Settings
    parts: Components
    state: EngineState
    clock: Callable[[], float]

    def new_pair(self, symbol: str, *, before_ms: int | None = None) -> PairState:
        raise NotImplementedError   # the step's

    def position(self, symbol: str) -> Position | None:
        raise NotImplementedError   # the step's

    def _open(self, ps: PairState, side: str, price: float, time_ms: int, *, decision: Decision | None = None,
              requested: float | None = None, source: str = "bot", protect: bool = True) -> tuple[bool, str, list[Fill]]:
        raise NotImplementedError   # the step's

    def _close(self, symbol: str, *, reason: str, why: str = "") -> tuple[bool, str, list[Fill]]:
        raise NotImplementedError   # the step's

    def manual_order(self, symbol: str, side: str, usdt: float, *, protect: bool = True) -> ManualOrderResult:
        """A person's order through the same circuit breaker, risk checks and executor as the bot's,
        with the risk manager's stop-loss and take-profit on the exchange (`protect=False`: sized
        and checked the same, sent without them). An order sent whose outcome is unknown raises
        `OutcomeUnknownError` (never a refusal: it may have filled)."""
        side_l = {"buy": "long", "long": "long", "sell": "short", "short": "short"}.get(side.lower())
        if side_l is None:
            return ManualOrderResult(False, f"side {side!r} is not known; use buy or sell", symbol)
        if usdt <= 0 or not np.isfinite(usdt):
            return ManualOrderResult(False, f"amount {usdt} USDT must be a positive number", symbol)
        if side_l == "short" and not self.settings.allows_short:
            return ManualOrderResult(False, "shorts are not possible on spot; sell closes via Close position", symbol)
        c = self.parts
        ps = self.state.pairs.get(symbol) or self.new_pair(symbol)
        price = self.state.last_prices.get(symbol) or ps.price or c.exchange.get_price(symbol)
        pos = self.position(symbol)
        if pos is not None and pos.side != side_l:
            return ManualOrderResult(False, f"{symbol} has an open {pos.side} position; close it first", symbol)
        time_ms = int(self.clock() * 1000)
        if not c.errors.allows_entries():
            return ManualOrderResult(False, f"circuit breaker {c.errors.state}: {c.errors.reason}", symbol)
        ok, msg, fills = self._open(ps, side_l, price, time_ms, requested=usdt, source="manual", protect=protect)
        qty = sum(f.qty for f in fills)
        px = fills[-1].price if fills else 0.0
        cid = fills[-1].client_order_id if fills else ""
        return ManualOrderResult(ok, msg, symbol, "Buy" if side_l == "long" else "Sell", qty, px, cid)

    def manual_close(self, symbol: str) -> ManualOrderResult:
        if self.position(symbol) is None:
            return ManualOrderResult(False, f"no open position on {symbol}", symbol)
        ok, msg, fills = self._close(symbol, reason="manual")
        return ManualOrderResult(ok, msg, symbol, fills[-1].side if fills else "", sum(f.qty for f in fills),
                                 fills[-1].price if fills else 0.0, fills[-1].client_order_id if fills else "")

    def close_all(self, reason: str = "close-all") -> list[ClosedTrade]:
        """Market-close every open position (on the calling thread); the round trips it closed."""
        before = self.state.session.trades     # a count of what was done: recent_trades is a bounded buffer
        for p in list(self.parts.exchange.get_positions()):
            if p.size > 0:
                self._close(p.symbol, reason=reason)
        done = self.state.session.trades - before
        return list(self.state.recent_trades)[-done:] if done else []
