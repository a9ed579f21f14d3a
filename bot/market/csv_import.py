"""Read recorded OHLCV files into canonical candle frames.

- CryptoDataDownload CSVs (Coinbase hourly and daily): a banner line before the header, rows
  newest first, hourly timestamps like `2019-10-17 09-AM` (UTC), `volume_btc` = base volume,
  `volume` = quote volume.
- The Bitstamp wide daily file: `BTC:open ... LTC:volume`, one row per day; coins listed later
  have empty cells before their listing, which are dropped (not filled).
- Any OHLCV CSV or Parquet (`read_ohlcv_file`): columns found by name, case-insensitively.

`python -m bot.market.csv_import` rebuilds `historical_data/seed/` from `../shared/data`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bot.errors import DataError
from bot.market.cache import write_parquet_atomic
from bot.market.candles import make_frame, validate_candles
from bot.market.seed import seed_dir

__all__ = ["read_cryptodatadownload", "read_bitstamp_wide", "read_ohlcv_file", "build_seed"]

_FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: recorded files are checked for order, not clock


def _to_ms(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(ts).as_unit("ms").asi8, dtype=np.int64)


def read_cryptodatadownload(path: str | Path, *, symbol: str = "BTCUSD") -> pd.DataFrame:
    """A CryptoDataDownload Coinbase CSV (hourly or daily) -> canonical frame, oldest first."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        first = fh.readline()
    skip = 0 if first.lower().startswith("date,") else 1  # the banner line
    raw = pd.read_csv(path, skiprows=skip)
    cols = {c.lower(): c for c in raw.columns}
    for need in ("date", "open", "high", "low", "close"):
        if need not in cols:
            raise DataError(f"{path}: no column {need!r} (have {', '.join(raw.columns)})")
    dates = raw[cols["date"]].astype(str)
    hourly = dates.str.contains(r"\d{2}-(?:AM|PM)$", regex=True)
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    if hourly.any():
        parsed[hourly] = pd.to_datetime(dates[hourly], format="%Y-%m-%d %I-%p", utc=True)
    if (~hourly).any():
        parsed[~hourly] = pd.to_datetime(dates[~hourly], format="mixed", utc=True)
    base_vol = raw[cols["volume_btc"]] if "volume_btc" in cols else raw[cols["volume"]]
    quote_vol = raw[cols["volume"]] if "volume_btc" in cols else None
    df = make_frame(_to_ms(parsed), raw[cols["open"]], raw[cols["high"]], raw[cols["low"]], raw[cols["close"]],
                    base_vol, quote_vol)
    validate_candles(df, symbol, now_ms=_FAR_FUTURE_MS)
    return df


def read_bitstamp_wide(path: str | Path, coin: str) -> pd.DataFrame:
    """One coin out of the Bitstamp wide daily file; days before the coin's listing are dropped."""
    path = Path(path)
    raw = pd.read_csv(path)
    date_col = raw.columns[0]
    need = [f"{coin}:{f}" for f in ("open", "high", "low", "close", "volume")]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {', '.join(missing)}")
    sub = raw[[date_col, *need]].dropna(subset=need, how="all")
    ms = _to_ms(pd.to_datetime(sub[date_col], utc=True))
    df = make_frame(ms, sub[need[0]], sub[need[1]], sub[need[2]], sub[need[3]], sub[need[4]])
    validate_candles(df, f"{coin}USD", now_ms=_FAR_FUTURE_MS)
    return df


_ALIASES = {
    "time": ("open_time", "timestamp", "time", "date", "datetime", "start", "starttime", "ts"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last"),
    "volume": ("volume", "vol", "v", "volume_btc", "base_volume", "volume_base"),
    "turnover": ("turnover", "quote_volume", "volume_quote", "volume_usd", "volume_usdt"),
}


def _find(columns: list[str], key: str) -> str | None:
    low = {re.sub(r"[^a-z0-9_]", "", c.lower()): c for c in columns}
    for alias in _ALIASES[key]:
        if alias in low:
            return low[alias]
    return None


def read_ohlcv_file(path: str | Path, *, symbol: str = "DATA") -> pd.DataFrame:
    """Any OHLCV CSV or Parquet -> canonical frame. Columns are found by name, case-insensitive;
    a clear `DataError` names what is missing, unsorted, duplicated or NaN."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
            if raw.index.name and raw.index.name.lower() in _ALIASES["time"]:
                raw = raw.reset_index()
        elif suffix in (".csv", ".txt"):
            with open(path, encoding="utf-8") as fh:
                first = fh.readline()
            skip = 1 if ("cryptodatadownload" in first.lower() or "timestamps are" in first.lower()) else 0
            raw = pd.read_csv(path, skiprows=skip)
        else:
            raise DataError(f"data file {path}: unknown format {suffix!r}; allowed: .csv, .parquet")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"data file {path} is unreadable ({type(exc).__name__}: {exc})") from exc
    cols = list(map(str, raw.columns))
    found = {k: _find(cols, k) for k in _ALIASES}
    missing = [k for k in ("time", "open", "high", "low", "close", "volume") if found[k] is None]
    if missing:
        raise DataError(f"data file {path} lacks column(s) {', '.join(missing)} (have {', '.join(cols)})")
    t = raw[found["time"]]
    if pd.api.types.is_numeric_dtype(t.dtype):
        v = np.asarray(t, dtype=np.float64)
        # seconds or milliseconds since the epoch
        ms = np.where(v < 1e11, v * 1000, v).astype(np.int64)
    else:
        s = t.astype(str)
        fmt = "%Y-%m-%d %I-%p" if s.str.contains(r"\d{2}-(?:AM|PM)$", regex=True).all() else "mixed"
        try:
            ms = _to_ms(pd.to_datetime(s, format=fmt, utc=True))
        except (ValueError, TypeError) as exc:
            raise DataError(f"data file {path}: column {found['time']!r} has a value that is not a time ({exc})") from exc
    idx = np.asarray(ms, dtype=np.int64)
    order = np.diff(idx)
    if len(order) and (order < 0).all():
        # newest-first files (CryptoDataDownload, Bybit) are a known layout: flip them
        raw = raw.iloc[::-1]
        idx = idx[::-1]
    elif len(order) and (order < 0).any():
        i = int(np.flatnonzero(order < 0)[0]) + 1
        raise DataError(f"data file {path}: rows are not sorted by time (row {i + 1} goes back in time)")
    turnover = raw[found["turnover"]] if found["turnover"] else None
    df = pd.DataFrame({
        "open": np.asarray(raw[found["open"]], dtype=np.float64),
        "high": np.asarray(raw[found["high"]], dtype=np.float64),
        "low": np.asarray(raw[found["low"]], dtype=np.float64),
        "close": np.asarray(raw[found["close"]], dtype=np.float64),
        "volume": np.asarray(raw[found["volume"]], dtype=np.float64),
        "turnover": np.full(len(raw), np.nan) if turnover is None else np.asarray(turnover, dtype=np.float64),
    }, index=pd.Index(idx, name="open_time"))
    validate_candles(df, f"{symbol} ({path.name})", now_ms=_FAR_FUTURE_MS)
    return df


def build_seed(shared_data: Path, out: Path | None = None) -> dict[str, int]:
    """Convert the real CSVs of shared/data into the project's seed Parquet files."""
    out = out or seed_dir()
    made: dict[str, int] = {}
    jobs = [
        ("coinbase_BTCUSD_60.parquet", lambda: read_cryptodatadownload(shared_data / "coinbase_btcusd_1h.csv")),
        ("coinbase_BTCUSD_D.parquet", lambda: read_cryptodatadownload(shared_data / "coinbase_btcusd_1d.csv")),
        ("bitstamp_BTCUSD_D.parquet", lambda: read_bitstamp_wide(shared_data / "bitstamp_btc_eth_ltc_usd_1d.csv", "BTC")),
        ("bitstamp_ETHUSD_D.parquet", lambda: read_bitstamp_wide(shared_data / "bitstamp_btc_eth_ltc_usd_1d.csv", "ETH")),
        ("bitstamp_LTCUSD_D.parquet", lambda: read_bitstamp_wide(shared_data / "bitstamp_btc_eth_ltc_usd_1d.csv", "LTC")),
    ]
    for name, load in jobs:
        df = load()
        write_parquet_atomic(df, out / name)
        made[name] = len(df)
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Rebuild historical_data/seed/ from the recorded CSVs.")
    ap.add_argument("--shared-data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
                    help="folder with the CryptoDataDownload CSVs (default: ../shared/data)")
    args = ap.parse_args(argv)
    for name, n in build_seed(Path(args.shared_data)).items():
        print(f"{name}: {n} candles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
