"""Fill the candle cache from Bybit's public kline endpoint (no keys needed), incrementally:
only candles the cache lacks are fetched. Shows a progress bar; reports gaps."""

from __future__ import annotations

import argparse
from typing import Any

COMMAND = "download"
HELP = "fill the Parquet candle cache from Bybit (incremental, with a progress bar)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbols", default="BTCUSDT", help="comma-separated symbols (default: BTCUSDT)")
    p.add_argument("--interval", default=None, help="Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W M "
                                                   "(default: CANDLE_INTERVAL)")
    p.add_argument("--days", type=float, default=365, help="how far back to start an empty cache (default: 365)")


def run(args: argparse.Namespace, settings: Any) -> int:
    from tqdm import tqdm

    from bot.errors import NetworkError
    from bot.market.data_manager import DataManager
    from bot.types import interval_ms

    interval = args.interval or settings.CANDLE_INTERVAL
    interval_ms(interval)  # validates
    dm = DataManager(settings)
    failed = 0
    for symbol in [s.strip().upper() for s in args.symbols.split(",") if s.strip()]:
        expected = int(args.days * 86_400_000 / interval_ms(interval))
        with tqdm(total=expected, desc=f"{symbol} {interval}", unit="candle") as bar:
            try:
                res = dm.update(symbol, interval, days=args.days, progress=bar.update)
            except NetworkError as exc:
                bar.close()
                print(f"{symbol}: Bybit cannot be reached ({exc})")
                failed += 1
                continue
        print(f"{symbol}/{interval}: +{res.added} new candles, {res.total} cached, {len(res.gaps)} gap(s) "
              f"-> {dm.cache.path(symbol, interval)}")
        for g in res.gaps[:5]:
            print(f"  gap: {g}")
    return 1 if failed else 0
