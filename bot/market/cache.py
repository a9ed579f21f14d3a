"""The Parquet candle cache: one zstd Parquet file per symbol and interval, written atomically.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bot.atomic import atomic_file
from bot.errors import DataError
from bot.market.candles import make_frame, merge_frames, validate_candles
from bot.types import CANDLE_COLUMNS

__all__ = ['CandleCache', 'write_parquet_atomic', 'read_parquet']

log = logging.getLogger(__name__)


_SCHEMA = pa.schema([("open_time", pa.int64())] + [(c, pa.float64()) for c in CANDLE_COLUMNS])


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write a canonical frame to `path` atomically (see bot/atomic.py)."""
    table = pa.Table.from_arrays(
        [pa.array(np.asarray(df.index, dtype=np.int64))] +
        [pa.array(df[c].to_numpy(dtype=np.float64)) for c in CANDLE_COLUMNS], schema=_SCHEMA)
    with atomic_file(path) as fh:
        pq.write_table(table, fh, compression="zstd")


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a canonical frame; raise `DataError` naming the file if it is corrupt or malformed."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError ... for a damaged file
        raise DataError(f"candle file {path} is unreadable ({type(exc).__name__}: {exc})") from exc
    names = set(table.column_names)
    need = {"open_time", *CANDLE_COLUMNS}
    if not need <= names:
        raise DataError(f"candle file {path} lacks column(s) {', '.join(sorted(need - names))}")
    df = make_frame(table.column("open_time").to_numpy(), *(table.column(c).to_numpy() for c in CANDLE_COLUMNS))
    return df


class CandleCache:
    """Parquet cache: <root>/<exchange>/<SYMBOL>/<interval>.parquet, one canonical frame per file."""

    def __init__(self, root: Path, exchange: str = "bybit") -> None:
        self.root = Path(root)
        self.exchange = exchange
        self._lock = threading.Lock()

    def path(self, symbol: str, interval: str) -> Path:
        return self.root / self.exchange / symbol.upper() / f"{interval}.parquet"

    def exists(self, symbol: str, interval: str) -> bool:
        return self.path(symbol, interval).exists()

    def read(self, symbol: str, interval: str) -> pd.DataFrame:
        """The cached frame (empty if none). Raises `DataError` if the file is corrupt."""
        p = self.path(symbol, interval)
        if not p.exists():
            return make_frame([], [], [], [], [], [])
        df = read_parquet(p)
        validate_candles(df, symbol)
        return df

    def write(self, symbol: str, interval: str, df: pd.DataFrame) -> None:
        validate_candles(df, symbol)
        with self._lock:
            write_parquet_atomic(df, self.path(symbol, interval))

    def append(self, symbol: str, interval: str, new: pd.DataFrame) -> int:
        """Validate `new`, merge it into the cache without duplicates; return how many were added."""
        validate_candles(new, symbol, interval=interval)
        with self._lock:
            old = self.read(symbol, interval)
            merged = merge_frames(old, new)
            added = len(merged) - len(old)
            if added or len(new):
                write_parquet_atomic(merged, self.path(symbol, interval))
            return added

    def quarantine(self, symbol: str, interval: str) -> Path | None:
        """Move a damaged file aside (never delete what was saved); return where it went."""
        p = self.path(symbol, interval)
        if not p.exists():
            return None
        dest = p.with_name(f"{p.stem}.corrupt-{int(time.time())}.parquet")
        os.replace(p, dest)
        return dest


