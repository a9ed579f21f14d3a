"""Market-close every open position, with reason "close-all" in the journal.

Paper (default): the persisted paper wallet (HISTORICAL_DATA_PATH/paper_wallet.json), priced at
Bybit's public last price, or at the last recorded candle when Bybit cannot be reached. Live
(`--live`): the Bybit account of BYBIT_API_KEY. Stop a running bot first: two processes must
not trade the same wallet.

Exit codes (README, "Exit codes"): 0 every position closed (or none open), 1 some position could
not be closed, 2 bad usage or settings (--live without keys, keys refused), 4 a close was sent but
its outcome is not known yet (resolved by its orderLinkId by the next command).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config import Settings

COMMAND = "close-all"
HELP = "market-close every open position (paper wallet, or Bybit with --live)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--live", action="store_true", help="close the positions of the live Bybit account")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (live)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.status import open_exchange, print_dust, resolve_lost_orders, where
    from bot.engine.trading_engine import TradingEngine
    from bot.errors import AuthError, BotError

    if args.live and not settings.has_bybit_keys:
        print("close-all --live needs BYBIT_API_KEY and BYBIT_API_SECRET in .env or the environment")
        return 2
    try:
        exchange, prices = open_exchange(settings, live=args.live)
        if hasattr(exchange, "read_policy"):
            exchange.read_policy = "close"   # closing never gives up: reads too, until CLOSE_DEADLINE_SECONDS
        positions = [p for p in exchange.get_positions() if p.size > 0]
    except AuthError as exc:
        print(f"Bybit refused the keys: {exc}")
        return 2
    print(where(settings, args.live))
    resolve_lost_orders(settings, exchange)
    if not positions:
        print("no open positions")
        print_dust(exchange)
        return 0
    for p in positions:
        print(f"  {p.symbol} {p.side.upper()} {p.size:g} @ {p.entry_price:,.6g}")
    if args.live and not args.yes:
        answer = input(f"Close these {len(positions)} LIVE position(s) at market? Type CLOSE to confirm: ")
        if answer.strip() != "CLOSE":
            print("not confirmed; nothing was closed")
            return 1
    if prices is not None:                 # paper: fill at a current price, said where it came from
        for p in positions:
            exchange.set_price(p.symbol, prices(p.symbol))
    engine = TradingEngine(settings, strategy="sma", exchange=exchange)   # the engine's close path + journal
    # The user confirmed on the command line just now: closing needs no standing consent to trade.
    engine.prepare("LIVE" if args.live else "PAPER", confirmed=True)
    trades = engine.close_all("close-all")
    engine.close()
    try:
        left = [p for p in exchange.get_positions() if p.size > 0]
    except BotError as exc:   # the closes stand: judge by what was closed, and say the check failed
        print(f"warning: the positions could not be re-read after closing ({exc})")
        closed = {t.symbol for t in trades}
        left = [p for p in positions if p.symbol not in closed]
    for t in trades:
        src = f"  [{prices.labels.get(t.symbol, '')}]" if prices is not None else ""
        print(f"closed {t.symbol} {t.side} {t.qty:g} @ {t.exit_price:,.6g} · P&L {t.pnl:+,.2f} USDT{src}")
    from bot.exchange.sim import SimExchange

    if isinstance(exchange, SimExchange):   # the paper wallet persists
        exchange.save()
    print_dust(exchange)
    if left:
        print(f"STILL OPEN: {', '.join(p.symbol for p in left)} (see the log for why)")
        return 1
    return 0

