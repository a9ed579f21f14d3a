"""Put any OHLCV file (CSV or Parquet, gzip or not; CryptoDataDownload, Binance, exchange exports,
stock data) into the Parquet candle cache, so paper replay, the window and every command can use it.

Columns are found by name; the interval is read off the timestamps (a different --interval is
refused); rows out of order, repeated timestamps and gaps are repaired with a printed report
(--strict refuses instead); rows that break OHLC rules are refused with their line and field.
Candles already in the cache for that symbol and interval are kept: the file's candles are merged
in, and the cache file is replaced atomically.

Example:  python -m bot import Coinbase_BTCUSD_1h.csv --symbol BTCUSDT --interval 60
"""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli._data import add_file_arguments, read_data_file

COMMAND = "import"
HELP = "put any OHLCV .csv/.parquet file (gzip too) into the candle cache, with a repair report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the OHLCV file")
    p.add_argument("--symbol", default=None,
                   help="symbol to file the candles under (default: the file's symbol column or name)")
    p.add_argument("--interval", default=None, help="the interval you expect (default: read off the timestamps)")
    add_file_arguments(p, with_data=False)


def run(args: argparse.Namespace, settings: Any) -> int:
    from bot.cli.backtest import symbol_of_file
    from bot.market.data_manager import DataManager

    want = args.symbol.strip().upper() if args.symbol else None
    cf = read_data_file(args.file, args, symbol=want, interval=args.interval)
    symbol = want or cf.symbol or symbol_of_file(args.file)
    cache = DataManager(settings).cache    # where every command looks for candles
    before = len(cache.read(symbol, cf.interval))
    added = cache.append(symbol, cf.interval, cf.frame)
    total = before + added
    print(f"{symbol}/{cf.interval}: +{added} new candles ({len(cf.frame) - added} already cached), {total} in the "
          f"cache -> {cache.path(symbol, cf.interval)}")
    print(f"use it: python -m bot backtest --symbols {symbol} --interval {cf.interval}   "
          f"(or paper replay with CANDLE_INTERVAL={cf.interval} and the pair {symbol})")
    return 0
