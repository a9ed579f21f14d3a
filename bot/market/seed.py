"""Real candles shipped with the project (historical_data/seed/), for tests, replay and training.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from bot.errors import DataError
from bot.market.cache import read_parquet
from bot.market.candles import validate_candles

__all__ = ['SEED_FILES', 'seed_dir', 'seed_path', 'load_seed']

log = logging.getLogger(__name__)


# Real candles shipped with the project (see historical_data/seed/README.md). The symbol is the one
# the bot trades; the file says where the candles were really recorded.
SEED_FILES: dict[tuple[str, str], str] = {
    ("BTCUSDT", "60"): "coinbase_BTCUSD_60.parquet",
    ("BTCUSDT", "D"): "coinbase_BTCUSD_D.parquet",
    ("ETHUSDT", "D"): "bitstamp_ETHUSD_D.parquet",
    ("LTCUSDT", "D"): "bitstamp_LTCUSD_D.parquet",
}



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


