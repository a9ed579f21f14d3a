"""Place one manual market order worth USDT, e.g. `python -m bot order BTCUSDT buy 20`.

Paper (default): fills in the paper wallet (HISTORICAL_DATA_PATH/paper_wallet.json) at Bybit's
public last price, or at the last recorded candle's close when Bybit cannot be reached (said so
in the output). Live (`--live`): a real order on Bybit (or on BYBIT_BASE_URL), asked for
confirmation unless `--yes` is given.

One path with the window's manual order: the engine's risk checks (circuit breaker, size cap,
risk per trade, daily-loss and drawdown brakes; ATR from the pair's recent candles) size and may
refuse it, and the risk manager's stop-loss and take-profit go to Bybit with the order
(`--no-stop` sends it without them, and says so). On spot, `sell` sells what is free of the coin
(floored to the step). The intent is journaled (HISTORICAL_DATA_PATH/state.db) before it is sent.

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
    p.add_argument("--no-stop", action="store_true",
                   help="send without the risk manager's stop-loss / take-profit (it is still sized by them)")


class RecentCandles:
    """The market feed of a one-order session: the pair's recent closed candles for the risk
    checks' ATR, from Bybit's public klines, else the recorded ones; no candles arrive later."""

    interval: str

    def __init__(self, settings: Any) -> None:
        from bot.types import Connection, DataSource

        self.settings = settings
        self.interval = str(settings.CANDLE_INTERVAL)
        self.source = DataSource.LIVE
        self.connection = Connection.CONNECTED

    def symbols_available(self, wanted: Any) -> list[str]:
        return list(wanted)

    def history(self, symbol: str, n: int) -> Any:
        import time

        from bot.errors import BotError
        from bot.market.bybit_klines import BybitKlineSource
        from bot.market.data_manager import DataManager
        from bot.types import DataSource, interval_ms

        try:
            src = BybitKlineSource.from_settings(self.settings.replace(BYBIT_TIMEOUT=min(self.settings.BYBIT_TIMEOUT, 5.0)))
            frame = src.fetch(symbol, self.interval, int(time.time() * 1000) - (n + 2) * interval_ms(self.interval))
            if len(frame):
                return frame.iloc[-n:]
        except BotError:
            pass
        self.source = DataSource.REPLAY
        return DataManager(self.settings).candles(symbol, self.interval).iloc[-n:]

    def next_candles(self, symbols: Any, timeout: float) -> list[Any]:
        return []

    def close(self) -> None:
        pass


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
    from bot.engine.trading_engine import TradingEngine
    from bot.errors import BotError
    from bot.exchange.executor import TradeExecutor

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
    engine = TradingEngine(settings, strategy="sma", exchange=ex, market=RecentCandles(settings))
    engine.bus.add_callback(lambda ev: print(ev.message) if ev.kind == "trade" else None)
    try:
        # the user confirmed on the command line just now: no standing consent needed for one order
        parts = engine.prepare("LIVE" if args.live else "PAPER", confirmed=True)
        if side == "Sell" and not settings.allows_short:     # spot: a sell reduces what is held
            res = TradeExecutor(ex, parts.journal, settings=settings, bus=engine.bus).manual_order(
                symbol, side, args.usdt)
            ok, why, cid = res.ok, res.error, res.client_order_id
        else:
            assert engine.step is not None
            done = engine.step.manual_order(symbol, side, args.usdt, protect=not args.no_stop)
            ok, why, cid = done.ok, done.message, done.client_order_id
        fills = parts.journal.fills(client_order_id=cid) if cid else []
    finally:
        engine.close()
    if not ok:
        print(f"order not placed: {why}")
        return 1
    qty = sum(f.qty for f in fills)
    avg = sum(f.qty * f.price for f in fills) / qty if qty else 0.0
    print(f"order {cid}: filled {qty:g} {symbol} @ {avg:,.2f}, fee {sum(f.fee for f in fills):.4f} USDT")
    if args.no_stop and not (side == "Sell" and not settings.allows_short):
        print("no stop-loss or take-profit was sent with it (--no-stop): this position is unprotected")
    pos = next((p for p in ex.get_positions() if p.symbol == symbol), None) if settings.allows_short or side == "Buy" \
        else None
    if pos is not None and (pos.stop_loss or pos.take_profit):
        print(f"protected on {'Bybit' if args.live else 'the paper exchange'}: stop-loss {pos.stop_loss or 0:,.2f} · "
              f"take-profit {pos.take_profit or 0:,.2f}")
    try:
        bal = ex.get_balance()
        print(f"balance  equity {bal.equity:,.2f} · available {bal.available:,.2f}")
    except BotError as exc:   # the order stands: a failed read afterwards is a warning, not a failure
        print(f"warning: the balance could not be read after the order ({exc})")
    return 0
