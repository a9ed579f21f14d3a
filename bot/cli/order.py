"""Place one manual market order worth USDT, e.g. `python -m bot order BTCUSDT buy 20`.

Paper (default): fills in the paper wallet (HISTORICAL_DATA_PATH/paper_wallet.json) at Bybit's
public last price, or at the last recorded candle's close when Bybit cannot be reached (said so
in the output). Live (`--live`): a real order on Bybit (or on BYBIT_BASE_URL), asked for
confirmation unless `--yes` is given. Either way the order goes through the TradeExecutor: the
quantity is floored to the qty step, an order under Bybit's minimum is refused with the reason,
and the intent is journaled (HISTORICAL_DATA_PATH/state.db) before it is sent.
Exit codes (README, "Exit codes"): 0 the order was accepted (a failed read afterwards is a
warning), 1 refused or rejected, 2 bad usage or keys, 4 sent and accepted (or maybe) but the
outcome is not known yet: it is resolved by its orderLinkId by the next command; do not re-send.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

COMMAND = "order"
HELP = "manual market order worth USDT: `order BTCUSDT buy 20` (paper wallet; --live for Bybit)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("symbol", help="e.g. BTCUSDT")
    p.add_argument("side", type=str.lower, choices=("buy", "sell"), help="buy or sell (any case)")
    p.add_argument("usdt", type=float, help="order value in USDT (quantity = value / price, floored to the step)")
    p.add_argument("--live", action="store_true", help="send to Bybit (needs keys) instead of the paper wallet")
    p.add_argument("--yes", action="store_true", help="do not ask before sending a live order")


def _consent(args: argparse.Namespace, where: str) -> bool:
    if not args.live or args.yes:
        return True
    if not sys.stdin.isatty():
        print(f"refusing to send a LIVE order to {where} without --yes (no terminal to ask)")
        return False
    answer = input(f"Send a LIVE {args.side.upper()} {args.symbol.upper()} order for {args.usdt:g} USDT to {where}? "
                   "Type yes: ")
    return answer.strip().lower() == "yes"


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.cli.status import open_exchange, resolve_lost_orders, where
    from bot.errors import BotError
    from bot.events import EventBus
    from bot.exchange.executor import TradeExecutor
    from bot.journal.store import Journal

    symbol, side = args.symbol.upper(), args.side.capitalize()
    if not args.usdt > 0:
        print(f"order value must be a positive number of USDT, not {args.usdt:g}")
        return 2
    ex, prices = open_exchange(settings, live=args.live)
    print(where(settings, args.live))
    if not _consent(args, where(settings, args.live)):
        return 1
    resolve_lost_orders(settings, ex)
    if prices is not None:
        ex.set_price(symbol, prices(symbol))
        print(f"price {ex.get_price(symbol):,.2f} from {prices.labels.get(symbol)}")
    bus = EventBus()
    bus.add_callback(lambda ev: print(ev.message) if ev.kind == "trade" else None)  # failures: printed below
    with Journal.for_settings(settings) as journal:
        result = TradeExecutor(ex, journal, settings=settings, bus=bus).manual_order(symbol, side, args.usdt)
    if result.ok:
        o = result.order
        print(f"order {result.client_order_id}: {o.status} {o.filled_qty:g} {symbol} @ {o.avg_price:,.2f}, "
              f"fee {o.fee:.4f} USDT")
        try:
            bal = ex.get_balance()
            print(f"balance  equity {bal.equity:,.2f} · available {bal.available:,.2f}")
        except BotError as exc:   # the order stands: a failed read afterwards is a warning, not a failure
            print(f"warning: the balance could not be read after the order ({exc})")
        return 0
    print(f"order not placed: {result.error}")
    return 1
