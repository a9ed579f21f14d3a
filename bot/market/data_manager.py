"""The data manager: candles for a symbol and interval from the cache, topped up from Bybit
or, offline, from the shipped seed; gaps reported, never filled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bot.errors import DataError, NetworkError
from bot.market.bybit_klines import BybitKlineSource
from bot.market.cache import CandleCache
from bot.market.candles import Gap, find_gaps
from bot.market.seed import load_seed, seed_path
from bot.types import interval_ms

__all__ = ['DataManager', 'UpdateResult']

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class UpdateResult:
    symbol: str
    interval: str
    added: int
    total: int
    gaps: tuple[Gap, ...]


class DataManager:
    """Candles for the bot: cache first, Bybit for what is missing, seed candles offline."""

    def __init__(self, settings: Any, *, source: BybitKlineSource | None = None,
                 exchange: str = "bybit") -> None:
        self.settings = settings
        self.cache = CandleCache(Path(settings.data_dir) / "candles", exchange)
        self._source = source

    @property
    def source(self) -> BybitKlineSource:
        if self._source is None:
            self._source = BybitKlineSource.from_settings(self.settings)
        return self._source

    def load(self, symbol: str, interval: str) -> pd.DataFrame:
        """Cached candles. A corrupt cache file is moved aside, reported, and rebuilt from the
        source (Bybit, or the seed candles when Bybit cannot be reached)."""
        try:
            return self.cache.read(symbol, interval)
        except DataError as exc:
            moved = self.cache.quarantine(symbol, interval)
            log.error("%s; moved it to %s and rebuilding the cache from the source", exc, moved)
            return self.rebuild(symbol, interval)

    def rebuild(self, symbol: str, interval: str, *, days: float = 365) -> pd.DataFrame:
        """Refill the cache for one symbol/interval from Bybit, or from the seed candles offline."""
        try:
            start = int(time.time() * 1000 - days * 86_400_000)
            df = self.source.fetch(symbol, interval, start)
            if len(df):
                self.cache.write(symbol, interval, df)
                return df
        except NetworkError as exc:
            log.warning("cannot reach Bybit to rebuild %s/%s (%s); using seed candles", symbol, interval, exc)
        p = seed_path(symbol, interval)
        if p is not None and p.exists():
            df = load_seed(symbol, interval)
            self.cache.write(symbol, interval, df)
            return df
        raise DataError(f"cannot rebuild the {symbol}/{interval} cache: Bybit unreachable and no seed candles")

    def update(self, symbol: str, interval: str, *, days: float = 365,
               progress: Callable[[int], None] | None = None) -> UpdateResult:
        """Fetch only the candles the cache lacks (newer than its last, or `days` back if empty)."""
        old = self.load(symbol, interval)
        step = interval_ms(interval)
        if len(old):
            start = int(old.index[-1]) + step
        else:
            start = int(time.time() * 1000 - days * 86_400_000) // step * step
        new = self.source.fetch(symbol, interval, start, progress=progress)
        added = self.cache.append(symbol, interval, new) if len(new) else 0
        merged = self.cache.read(symbol, interval)
        gaps = tuple(find_gaps(merged, interval))
        for g in gaps[-3:]:
            log.warning("%s/%s: %s", symbol, interval, g)
        return UpdateResult(symbol, interval, added, len(merged), gaps)

    def candles(self, symbol: str, interval: str, *, start_ms: int | None = None,
                end_ms: int | None = None) -> pd.DataFrame:
        """Candles from the cache, or the seed candles if the cache has none."""
        df = self.load(symbol, interval)
        if len(df) == 0 and seed_path(symbol, interval) is not None:
            df = load_seed(symbol, interval)
        if start_ms is not None:
            df = df[df.index >= start_ms]
        if end_ms is not None:
            df = df[df.index <= end_ms]
        return df

    def replay_frame(self, symbol: str, interval: str) -> pd.DataFrame:
        """Recorded real candles to replay for `symbol`: the cache if it has some, else the seed."""
        df = self.candles(symbol, interval)
        if len(df) == 0:
            raise DataError(f"no recorded candles for {symbol}/{interval} to replay: run "
                            f"`python -m bot download --symbols {symbol} --interval {interval}` once online")
        return df


