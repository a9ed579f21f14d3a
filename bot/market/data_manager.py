"""Candles in, candles out: the canonical candle frame, its validation, the Parquet cache,
the Bybit kline source (through pybit), and the replay feed of recorded real candles.

The canonical frame: index `open_time` = candle open time in UTC milliseconds (int64), columns
open, high, low, close, volume (base coin), turnover (quote coin), all float64, sorted and
unique. `turnover` is NaN where the source did not record quote volume; every other field must
be a real number. No random or synthetic prices anywhere: gaps are reported, never filled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bot.atomic import atomic_file
from bot.errors import DataError, NetworkError
from bot.types import CANDLE_COLUMNS, Candle, interval_ms, ms_to_iso

__all__ = [
    "DataManager", "CandleCache", "BybitKlineSource", "ReplayFeed",
    "validate_candles", "make_frame", "find_gaps", "seed_path", "load_seed",
    "SEED_FILES", "Gap",
]

log = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
# Real candles shipped with the project (see historical_data/seed/README.md). The symbol is the one
# the bot trades; the file says where the candles were really recorded.
SEED_FILES: dict[tuple[str, str], str] = {
    ("BTCUSDT", "60"): "coinbase_BTCUSD_60.parquet",
    ("BTCUSDT", "D"): "coinbase_BTCUSD_D.parquet",
    ("ETHUSDT", "D"): "bitstamp_ETHUSD_D.parquet",
    ("LTCUSDT", "D"): "bitstamp_LTCUSD_D.parquet",
}


@dataclass(frozen=True)
class Gap:
    """Missing candles between two present ones: [start_ms, end_ms) and how many are missing."""

    start_ms: int
    end_ms: int
    missing: int

    def __str__(self) -> str:
        return f"{self.missing} candle(s) missing from {ms_to_iso(self.start_ms)} to {ms_to_iso(self.end_ms)}"


# ---------------------------------------------------------------------------------------------
# the canonical frame and its validation

def make_frame(open_ms: Any, open_: Any, high: Any, low: Any, close: Any, volume: Any,
               turnover: Any = None) -> pd.DataFrame:
    """Build a canonical frame from columns (any order of rows; it is sorted, not deduplicated)."""
    idx = np.asarray(open_ms, dtype=np.int64)
    n = len(idx)
    df = pd.DataFrame({
        "open": np.asarray(open_, dtype=np.float64), "high": np.asarray(high, dtype=np.float64),
        "low": np.asarray(low, dtype=np.float64), "close": np.asarray(close, dtype=np.float64),
        "volume": np.asarray(volume, dtype=np.float64),
        "turnover": np.full(n, np.nan) if turnover is None else np.asarray(turnover, dtype=np.float64),
    }, index=pd.Index(idx, name="open_time"))
    return df.sort_index(kind="stable")


def _first_bad(mask: np.ndarray, index: np.ndarray) -> int | None:
    pos = np.flatnonzero(mask)
    return int(index[pos[0]]) if len(pos) else None


def validate_candles(df: pd.DataFrame, symbol: str, *, now_ms: int | None = None,
                     interval: str | None = None) -> None:
    """Raise `DataError` naming symbol, timestamp and field for the first rule a batch breaks.

    Rules: the canonical columns exist; index is int ms, strictly increasing (no duplicates, no
    disorder); no NaN in prices or volume; prices > 0; volume >= 0; high >= max(open, close);
    low <= min(open, close); high >= low; no candle opens in the future (or, with `interval`,
    closes after `now_ms`).
    """
    missing = [c for c in CANDLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{symbol}: candles lack column(s) {', '.join(missing)}")
    if len(df) == 0:
        return
    idx = np.asarray(df.index, dtype=np.int64)
    d = np.diff(idx)
    if len(d):
        dup = _first_bad(d == 0, idx[1:])
        if dup is not None:
            raise DataError(f"{symbol}: duplicate timestamp {ms_to_iso(dup)} ({dup}) in field open_time")
        back = _first_bad(d < 0, idx[1:])
        if back is not None:
            raise DataError(f"{symbol}: timestamp {ms_to_iso(back)} ({back}) is out of order in field open_time")
    cols = {c: df[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS}
    for c in ("open", "high", "low", "close", "volume"):
        bad = _first_bad(~np.isfinite(cols[c]), idx)
        if bad is not None:
            raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a NaN/inf in field {c}")
    for c in PRICE_COLUMNS:
        bad = _first_bad(cols[c] <= 0, idx)
        if bad is not None:
            raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a non-positive price in field {c}")
    bad = _first_bad(cols["volume"] < 0, idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a negative value in field volume")
    bad = _first_bad(cols["turnover"] < 0, idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has a negative value in field turnover")
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    bad = _first_bad(h < np.maximum(o, c), idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has field high below max(open, close)")
    bad = _first_bad(lo > np.minimum(o, c), idx)
    if bad is not None:
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) has field low above min(open, close)")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    limit = now - (interval_ms(interval) if interval else 0)
    bad = _first_bad(idx > limit, idx)
    if bad is not None:
        what = "closes" if interval else "opens"
        raise DataError(f"{symbol}: candle {ms_to_iso(bad)} ({bad}) {what} in the future in field open_time")


def find_gaps(df: pd.DataFrame, interval: str) -> list[Gap]:
    """Missing candles inside the frame's span (none are invented)."""
    if len(df) < 2 or str(interval).upper() == "M":
        return []
    step = interval_ms(interval)
    idx = np.asarray(df.index, dtype=np.int64)
    d = np.diff(idx)
    where = np.flatnonzero(d > step)
    return [Gap(int(idx[i]) + step, int(idx[i + 1]), int(d[i] // step) - 1) for i in where]


def merge_frames(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of two canonical frames; on a shared timestamp the newer batch wins."""
    if len(old) == 0:
        return new.sort_index()
    if len(new) == 0:
        return old
    both = pd.concat([old, new])
    both = both[~both.index.duplicated(keep="last")]
    return both.sort_index(kind="stable")


# ---------------------------------------------------------------------------------------------
# Parquet files

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


# ---------------------------------------------------------------------------------------------
# seed data (real candles shipped in the repository)

def seed_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "historical_data" / "seed"


def seed_path(symbol: str, interval: str) -> Path | None:
    name = SEED_FILES.get((symbol.upper(), str(interval)))
    return seed_dir() / name if name else None


def load_seed(symbol: str = "BTCUSDT", interval: str = "60") -> pd.DataFrame:
    """Real recorded candles shipped with the project for `symbol` / `interval`."""
    p = seed_path(symbol, interval)
    if p is None or not p.exists():
        have = ", ".join(f"{s}/{i}" for s, i in SEED_FILES)
        raise DataError(f"no seed candles for {symbol} interval {interval}; the project ships {have}")
    df = read_parquet(p)
    validate_candles(df, symbol)
    return df


# ---------------------------------------------------------------------------------------------
# Bybit klines through pybit

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


# ---------------------------------------------------------------------------------------------
# the manager

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


# ---------------------------------------------------------------------------------------------
# replay

class ReplayFeed:
    """Plays a recorded frame candle by candle: as fast as possible, at real time, or xN.

    `speed=0` yields at once; `speed=1` waits one interval between candles; `speed=N` waits
    interval / N. `pace_seconds` (if given) overrides the wait with a fixed number of seconds.
    `stop()` ends the iteration promptly from another thread.
    """

    def __init__(self, frame: pd.DataFrame, symbol: str, interval: str, *, speed: float = 0.0,
                 pace_seconds: float | None = None, start: int = 0) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self.symbol = symbol
        self.interval = str(interval)
        self.speed = speed
        self.pace_seconds = pace_seconds
        self.position = start
        self._stopped = threading.Event()
        self._idx = np.asarray(frame.index, dtype=np.int64)
        self._vals = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)

    def __len__(self) -> int:
        return len(self._idx)

    @property
    def remaining(self) -> int:
        return len(self._idx) - self.position

    def stop(self) -> None:
        self._stopped.set()

    def _wait(self) -> float:
        if self.pace_seconds is not None:
            return self.pace_seconds
        if self.speed == 0:
            return 0.0
        return interval_ms(self.interval) / 1000.0 / self.speed

    def candle_at(self, i: int) -> Candle:
        o, h, lo, c, v, t = self._vals[i]
        return Candle(self.symbol, self.interval, int(self._idx[i]), o, h, lo, c, v, t)

    def __iter__(self) -> Iterator[Candle]:
        while self.position < len(self._idx) and not self._stopped.is_set():
            if self.position > 0:
                wait = self._wait()
                if wait > 0 and self._stopped.wait(wait):
                    return
            candle = self.candle_at(self.position)
            self.position += 1
            yield candle
