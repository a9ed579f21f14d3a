"""Show the account: balance, positions and open orders.

Paper (default): the paper wallet in HISTORICAL_DATA_PATH/paper_wallet.json, marked at Bybit's
public last price when Bybit can be reached, else at the close of the last recorded candle (the
source is printed next to every price). Live (`--live`): the Bybit account of BYBIT_API_KEY, at
BYBIT_BASE_URL if set (e.g. a fake started with `python -m self_test.fakes.bybit_server`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

COMMAND = "status"
HELP = "balance, positions and open orders of the paper wallet (or of Bybit with --live)"

log = logging.getLogger("bot.cli.status")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--live", action="store_true", help="show the live Bybit account (needs BYBIT_API_KEY/SECRET)")


class PriceSource:
    """Prices for the paper wallet: Bybit's public ticker, else the last recorded candle; remembers
    where each price came from so the output can say so."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.labels: dict[str, str] = {}
        self._bybit: Any = None
        self._bybit_down = False

    def __call__(self, symbol: str) -> float:
        from bot.errors import BotError

        if not self._bybit_down:
            try:
                if self._bybit is None:
                    from bot.exchange.bybit import BybitExchange

                    quick = self.settings.replace(BYBIT_TIMEOUT=min(self.settings.BYBIT_TIMEOUT, 5.0))
                    self._bybit = BybitExchange(quick, retries=1)
                price = self._bybit.get_price(symbol)
                self.labels[symbol] = "Bybit last price"
                return price
            except BotError as exc:
                log.info("Bybit ticker unavailable (%s); using the last recorded candle", exc)
                self._bybit_down = True
        from bot.errors import DataError
        from bot.market.data_manager import DataManager
        from bot.types import ms_to_iso

        frame = DataManager(self.settings).candles(symbol, self.settings.CANDLE_INTERVAL)
        if len(frame) == 0:
            raise DataError(f"no price for {symbol}: Bybit is unreachable and no candles are recorded; run "
                            f"`python -m bot download --symbols {symbol}` once online")
        self.labels[symbol] = (f"last recorded candle {ms_to_iso(int(frame.index[-1]))} "
                               f"({self.settings.CANDLE_INTERVAL}), Bybit unreachable")
        return float(frame["close"].iloc[-1])


def open_exchange(settings: Any, *, live: bool, trade: bool = True) -> tuple[Any, PriceSource | None]:
    """The live Bybit exchange, or the persisted paper wallet with its price source (claimed for
    trading unless `trade` is False: another running bot on the same wallet is then refused)."""
    if live:
        from bot.errors import AuthError
        from bot.exchange.bybit import BybitExchange

        if not settings.has_bybit_keys:
            raise AuthError("live mode needs BYBIT_API_KEY and BYBIT_API_SECRET in .env or the environment")
        return BybitExchange(settings), None
    from bot.exchange.sim import SimExchange

    prices = PriceSource(settings)
    return SimExchange(settings, state_path=paper_wallet_path(settings), price_source=prices, claim=trade), prices


def resolve_lost_orders(settings: Any, exchange: Any) -> list[str]:
    """What every command that talks to the exchange does first: look up the orders the journal
    has as LOST (sent, outcome unknown) and filled orders missing their fills, by orderLinkId
    (read-only), journal what is found and say so in one line. Returns the ids still unresolved."""
    from bot.engine.recovery import resolve_lost
    from bot.journal.store import Journal

    if not (Path(settings.data_dir) / "state.db").exists():
        return []
    with Journal.for_settings(settings) as journal:
        report = resolve_lost(settings, exchange=exchange, journal=journal)
    found = [i for i in report.items if i.kind in ("resolved", "fills")]
    if found:
        print(f"resolved {len(found)} earlier order(s) by orderLinkId: " + "; ".join(i.message for i in found))
    if report.lost:
        print(f"{len(report.lost)} order(s) sent but still unresolved (outcome unknown; do not place them again): "
              + ", ".join(report.lost))
    for why in report.errors:
        log.warning("resolving earlier orders: %s", why)
    return list(report.lost)


def print_dust(exchange: Any) -> None:
    """Spot coins left below Bybit's smallest order (a buy's fee is taken in the coin): shown as
    dust, never as an open position or a qty-0 order."""
    dust = getattr(exchange, "dust", None) or {}
    if dust:
        print("dust (below Bybit's smallest order, cannot be sold): "
              + ", ".join(f"{coin} {qty:.8f}".rstrip("0") for coin, qty in sorted(dust.items())))


def paper_wallet_path(settings: Any) -> Path:
    return Path(settings.data_dir) / "paper_wallet.json"


def where(settings: Any, live: bool) -> str:
    if not live:
        return f"PAPER wallet {paper_wallet_path(settings)}"
    url = settings.BYBIT_BASE_URL or ("Bybit testnet" if settings.USE_TESTNET else "Bybit mainnet")
    if settings.BYBIT_DEMO:
        url = f"{url} (demo trading: play money)"
    return f"LIVE {settings.EXCHANGE_CATEGORY} account at {url}"


def run(args: argparse.Namespace, settings: Any) -> int:
    ex, prices = open_exchange(settings, live=args.live, trade=False)  # looking, not trading
    print(where(settings, args.live))
    resolve_lost_orders(settings, ex)
    if prices is not None:  # paper: mark open positions at a fresh price
        for pos in ex.get_positions():
            ex.set_price(pos.symbol, prices(pos.symbol))
    bal = ex.get_balance()
    print(f"balance  equity {bal.equity:,.2f} {bal.coin} · available {bal.available:,.2f} · "
          f"wallet {bal.wallet_balance:,.2f} · unrealised {bal.unrealised_pnl:+,.2f}")
    positions = ex.get_positions()
    print(f"positions ({len(positions)})")
    for p in positions:
        src = f"  [{prices.labels.get(p.symbol, 'saved price')}]" if prices is not None else ""
        stops = "".join([f" · SL {p.stop_loss:,.2f}" if p.stop_loss else "",
                         f" · TP {p.take_profit:,.2f}" if p.take_profit else ""])
        print(f"  {p.symbol} {p.side.upper()} {p.size:g} @ {p.entry_price:,.2f} · mark {p.mark_price:,.2f} · "
              f"P&L {p.unrealised_pnl:+,.2f}{stops}{src}")
    print_dust(ex)
    orders = ex.get_open_orders()
    print(f"open orders ({len(orders)})")
    for o in orders:
        print(f"  {o.client_order_id} {o.side.upper()} {o.symbol} {o.qty:g} {o.order_type}"
              f"{f' @ {o.price:,.2f}' if o.price else ''} · {o.status}")
    from bot.exchange.sim import SimExchange

    if isinstance(ex, SimExchange):   # the paper wallet keeps its round trips
        trades = ex.closed_trades()
        if trades:
            print(f"closed trades ({len(trades)}): net P&L {sum(t.pnl for t in trades):+,.2f} USDT after fees")
    return 0
