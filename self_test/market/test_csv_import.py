"""Building the seed from the recorded CSVs: the CryptoDataDownload quirks and the Bitstamp wide file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bot.market.csv_import import (
    build_seed,
    read_bitstamp_wide,
    read_cryptodatadownload,
)
from bot.market.seed import load_seed

# Real rows from the Coinbase hourly file (banner, header, newest first, 12-hour clock).
COINBASE_1H = """Timestamps are UTC timezone,https://www.CryptoDataDownload.com
date,symbol,open,high,low,close,volume_btc,volume
2019-10-17 01-PM,BTCUSD,8051,8056.83,8021.23,8035.88,61.25,492394.56
2019-10-17 12-PM,BTCUSD,7975.89,8070,7975.89,8051,370.45,2971610.86
2019-10-17 11-AM,BTCUSD,7964.62,7987.82,7964.61,7975.89,121.68,970521.83
"""


def test_coinbase_quirks(tmp_path):
    p = tmp_path / "cb.csv"
    p.write_text(COINBASE_1H)
    df = read_cryptodatadownload(p)
    iso = [pd.Timestamp(t, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M") for t in df.index]
    assert iso == ["2019-10-17 11:00", "2019-10-17 12:00", "2019-10-17 13:00"]  # 12-PM is noon
    assert df["volume"].tolist() == [121.68, 370.45, 61.25]          # base volume (BTC)
    assert df["turnover"].tolist() == [970521.83, 2971610.86, 492394.56]  # quote volume (USD)


def test_bitstamp_wide_drops_days_before_listing(tmp_path):
    p = tmp_path / "bs.csv"
    p.write_text(",BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume\n"
                 "2017-11-08,7000,7100,6900,7050,10,,,,,\n"
                 "2017-11-09,7450.32,7490,7100,7150,12,308.64,329.45,300,320.88,1000\n")
    eth = read_bitstamp_wide(p, "ETH")
    assert len(eth) == 1 and eth["open"].iloc[0] == 308.64
    assert len(read_bitstamp_wide(p, "BTC")) == 2


def test_seed_files_equal_a_fresh_import_of_the_shared_csvs(tmp_path):
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.exists():
        pytest.skip("../shared/data is not beside this clone (a user's clone has only the seed copy)")
    made = build_seed(shared, tmp_path)
    assert made["coinbase_BTCUSD_60.parquet"] == 20_111
    fresh = pd.read_parquet(tmp_path / "coinbase_BTCUSD_60.parquet").set_index("open_time")
    pd.testing.assert_frame_equal(fresh, load_seed("BTCUSDT", "60"), check_exact=True)
