"""The `--data FILE` options every research command shares (backtest, train, optimize, import),
and the one call that reads such a file and prints what was done to read it."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_file_arguments", "file_options", "read_data_file"]


def add_file_arguments(p: argparse.ArgumentParser, *, with_data: bool = True) -> None:
    """`--data` and the options that say how to read a file where it cannot tell by itself."""
    if with_data:
        p.add_argument("--data", default=None, metavar="FILE",
                       help="any OHLCV .csv / .parquet file (gzip too) instead of the candle cache")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dayfirst", dest="dayfirst", action="store_const", const=True, default=None,
                   help="dates like 03.04.2019 are day-first (default: decided from the whole column)")
    g.add_argument("--monthfirst", dest="dayfirst", action="store_const", const=False,
                   help="dates like 04/03/2019 are month-first")
    p.add_argument("--tz", default=None, help="time zone of naive timestamps in the file (default: UTC)")
    p.add_argument("--volume-column", default=None, help="the file's base-volume column (default: found by name)")
    p.add_argument("--strict", action="store_true",
                   help="refuse rows out of order, repeated timestamps and gaps instead of repairing them")


def file_options(args: argparse.Namespace, *, symbol: str | None, interval: str | None) -> Any:
    from bot.market.ohlcv_file import FileOptions
    return FileOptions(symbol=symbol, interval=interval, dayfirst=getattr(args, "dayfirst", None),
                       tz=getattr(args, "tz", None), volume_column=getattr(args, "volume_column", None),
                       strict=bool(getattr(args, "strict", False)))


def read_data_file(path: str, args: argparse.Namespace, *, symbol: str | None = None,
                   interval: str | None = None, quiet: bool = False) -> Any:
    """Read `path` (`bot.market.ohlcv_file.read_candle_file`) and print its report lines."""
    from bot.market.ohlcv_file import read_candle_file
    cf = read_candle_file(path, file_options(args, symbol=symbol, interval=interval))
    if not quiet:
        print("\n".join(cf.report()))
    return cf
