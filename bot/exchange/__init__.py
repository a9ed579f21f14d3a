"""Exchange: one interface, two worlds. The `Exchange` protocol with Bybit's rounding rules,
`SimExchange` (the paper wallet at real prices, with Bybit's fees and instrument rules),
`BybitExchange` (live, through pybit; it owns every retry), the instrument rules, and
`TradeExecutor`, which sizes and rounds orders and journals each client order id before sending.

Import rule (docs/architecture.md): exchange never imports the engine, agent or strategies; it
uses the journal (order intents), the market's WebSocket link (the private streams) and the primitives. Names load on first use (PEP 562):
`import bot.exchange` does not import pybit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import lazy_exports

if TYPE_CHECKING:
    from bot.exchange.base import Exchange, Instrument, order_qty, round_to_tick
    from bot.exchange.bybit import BybitExchange
    from bot.exchange.bybit_stream import AccountUpdate, PrivateStream
    from bot.exchange.executor import TradeExecutor
    from bot.exchange.sim import SimExchange

__all__ = [
    "Exchange", "Instrument", "round_to_tick", "order_qty", "SimExchange", "BybitExchange",
    "TradeExecutor", "PrivateStream", "AccountUpdate",
]

# public name -> the submodule that defines it (a name mapped to itself is that submodule)
_EXPORTS = {
    "Exchange": "base", "Instrument": "base", "round_to_tick": "base", "order_qty": "base",
    "SimExchange": "sim", "BybitExchange": "bybit", "TradeExecutor": "executor",
    "PrivateStream": "bybit_stream", "AccountUpdate": "bybit_stream",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
