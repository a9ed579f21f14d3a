"""Read recorded OHLCV files into canonical candle frames.

- CryptoDataDownload CSVs (Coinbase hourly and daily): a banner line before the header, rows
  newest first, hourly timestamps like `2019-10-17 09-AM` (UTC), `volume_btc` = base volume,
  `volume` = quote volume.
- The Bitstamp wide daily file: `BTC:open ... LTC:volume`, one row per day; coins listed later
  have empty cells before their listing, which are dropped (not filled).

Any other OHLCV file (the `--data` option, `python -m bot import`): `bot.market.ohlcv_file`.

`python -m bot.market.csv_import` rebuilds `historical_data/seed/` from `../shared/data`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bot.errors import DataError
from bot.market.cache import write_parquet_atomic
from bot.market.candles import make_frame, validate_candles
from bot.market.seed import seed_dir

__all__ = ["read_cryptodatadownload", "read_bitstamp_wide", "build_seed"]

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
