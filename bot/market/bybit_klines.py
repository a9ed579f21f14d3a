"""Bybit klines through pybit: closed candles, paging backwards, the open candle dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from bot.errors import DataError, NetworkError
from bot.market.candles import make_frame, merge_frames, validate_candles
from bot.types import interval_ms

__all__ = ['BybitKlineSource']

log = logging.getLogger(__name__)


class BybitKlineSource:
    """Closed candles from Bybit's public kline endpoint, through pybit's `HTTP.get_kline`."""

    MAX_LIMIT = 1000

    def __init__(self, http: Any, category: str = "linear", *, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.category = category
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Any) -> "BybitKlineSource":
        from pybit.unified_trading import HTTP  # public endpoints: no keys needed

        http = HTTP(testnet=settings.USE_TESTNET, timeout=settings.BYBIT_TIMEOUT, max_retries=2, retry_delay=1)
        if settings.BYBIT_BASE_URL:
            http.endpoint = settings.BYBIT_BASE_URL.rstrip("/")
        return cls(http, settings.EXCHANGE_CATEGORY)

    def _call(self, **params: Any) -> list[list[str]]:
        import requests
        from pybit.exceptions import FailedRequestError, InvalidRequestError

        try:
            reply = self.http.get_kline(category=self.category, **params)
        except (requests.exceptions.RequestException, FailedRequestError) as exc:
            raise NetworkError(f"Bybit kline request failed for {params.get('symbol')}: {exc}") from exc
        except InvalidRequestError as exc:
            raise DataError(f"Bybit refused kline request for {params.get('symbol')}: "
                            f"{exc.message} (retCode {exc.status_code})") from exc
        try:
            return list(reply["result"]["list"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"Bybit kline reply for {params.get('symbol')} has no result.list") from exc

    @staticmethod
    def parse_rows(rows: list[list[str]], symbol: str) -> pd.DataFrame:
        """Bybit kline rows (7 strings, newest first) -> canonical frame, ascending."""
        if not rows:
            return make_frame([], [], [], [], [], [])
        try:
            arr = np.array([[float(x) for x in r[:7]] for r in rows], dtype=np.float64)
        except (ValueError, TypeError, IndexError) as exc:
            raise DataError(f"{symbol}: malformed kline row in Bybit reply ({exc})") from exc
        if arr.shape[1] != 7:
            raise DataError(f"{symbol}: kline rows must have 7 fields, got {arr.shape[1]}")
        return make_frame(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5], arr[:, 6])

    def fetch(self, symbol: str, interval: str, start_ms: int, end_ms: int | None = None,
              progress: Callable[[int], None] | None = None) -> pd.DataFrame:
        """Closed candles with open time in [start_ms, end_ms], paging backwards 1000 at a time.

        The still-open current candle is dropped. Every page is validated before it is kept.
        """
        step = interval_ms(interval)
        now = int(self.clock() * 1000)
        end = now if end_ms is None else min(end_ms, now)
        frames: list[pd.DataFrame] = []
        cursor = end
        seen_oldest: int | None = None
        while cursor >= start_ms:
            rows = self._call(symbol=symbol, interval=str(interval), start=int(start_ms), end=int(cursor),
                              limit=self.MAX_LIMIT)
            page = self.parse_rows(rows, symbol)
            if len(page) == 0:
                break
            page = page[(page.index >= start_ms) & (page.index <= end) & (page.index + step <= now)]
            if len(page):
                validate_candles(page, symbol, now_ms=now, interval=str(interval))
                frames.append(page)
                if progress:
                    progress(len(page))
            oldest = int(self.parse_rows(rows, symbol).index[0])
            if seen_oldest is not None and oldest >= seen_oldest:
                break  # the server did not move backwards: stop instead of looping
            seen_oldest = oldest
            if len(rows) < self.MAX_LIMIT:
                break
            cursor = oldest - 1
        if not frames:
            return make_frame([], [], [], [], [], [])
        out = frames[0]
        for f in frames[1:]:
            out = merge_frames(out, f)
        return out


