"""Any real OHLCV file in (bot/market/ohlcv_file.py): the usual layouts of free sources, read right
or refused with one line naming the line and field; repairs reported; the interval read off the
timestamps. Every file here is written from the real seed candles."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from bot.errors import DataError
from bot.market.ohlcv_file import FileOptions, read_candle_file

HOUR = 3_600_000


def cdd_hourly(frame: pd.DataFrame) -> pd.DataFrame:
    """CryptoDataDownload's layout: newest first, `Date,Symbol,Open,High,Low,Close,VolumeFrom,VolumeTo`."""
    return pd.DataFrame({
        "Date": pd.to_datetime(frame.index, unit="ms").strftime("%Y-%m-%d %I-%p"), "Symbol": "BTC/USD",
        "Open": frame["open"].values, "High": frame["high"].values, "Low": frame["low"].values,
        "Close": frame["close"].values, "VolumeFrom": frame["volume"].values,
        "VolumeTo": (frame["volume"] * frame["close"]).values}).iloc[::-1].reset_index(drop=True)


def write_with_banner(path, df):
    with open(path, "w") as fh:
        fh.write("https://www.CryptoDataDownload.com\n")
        df.to_csv(fh, index=False)
    return path


def test_cryptodatadownload_file_with_a_repeated_and_a_misplaced_hour_is_repaired(tmp_path, btc_hourly):
    part = btc_hourly.iloc[:500]
    df = cdd_hourly(part)
    twice = df.iloc[[100]].copy()
    twice["Close"] = twice["Close"] * 1.001           # the source has that hour twice, differently
    twice["High"] = np.maximum(twice["High"], twice["Close"])
    df = pd.concat([df.iloc[:101], twice, df.iloc[101:]]).reset_index(drop=True)
    df.iloc[[300, 301]] = df.iloc[[301, 300]].to_numpy()   # and one row out of place
    cf = read_candle_file(write_with_banner(tmp_path / "Coinbase_BTCUSD_1h.csv", df))
    assert cf.interval == "60" and cf.symbol == "BTCUSD"
    assert list(cf.frame.index) == list(part.index)
    np.testing.assert_array_equal(cf.frame["close"].to_numpy(), part["close"].to_numpy())  # the first row kept
    np.testing.assert_array_equal(cf.frame["volume"].to_numpy(), part["volume"].to_numpy())
    text = "\n".join(cf.report())
    assert "newest first" in text
    assert "2 row(s) out of time order moved into place (first: line 303)" in text   # banner + header
    assert "1 repeated timestamp(s) dropped (0 exact copies, 1 with other prices" in text
    assert "kept line 103, dropped line 104" in text
    with pytest.raises(DataError, match=r"line 303 goes back in time; --strict"):
        read_candle_file(tmp_path / "Coinbase_BTCUSD_1h.csv", FileOptions(strict=True))


def test_gzip_parquet_and_unix_times(tmp_path, btc_hourly):
    part = btc_hourly.iloc[:300]
    df = part.reset_index().rename(columns={"open_time": "unix"})
    df["unix"] //= 1000                                # Unix seconds
    gz = tmp_path / "btc.csv.gz"
    with gzip.open(gz, "wt") as fh:
        df.to_csv(fh, index=False)
    cf = read_candle_file(gz)
    assert list(cf.frame.index) == list(part.index) and "Unix seconds" in "\n".join(cf.notes)
    pq = tmp_path / "btc.parquet"
    part.reset_index().to_parquet(pq)
    pd.testing.assert_frame_equal(read_candle_file(pq).frame, part, check_exact=True)


def test_volume_under_its_usual_names(tmp_path, btc_hourly):
    part = btc_hourly.iloc[:100]
    base = {"Date": pd.to_datetime(part.index, unit="ms", utc=True).astype(str), "Open": part["open"].values,
            "High": part["high"].values, "Low": part["low"].values, "Close": part["close"].values}
    quote = (part["volume"] * part["close"]).values
    for cols in ({"Volume BTC": part["volume"].values, "Volume USD": quote},
                 {"volume_base": part["volume"].values, "quote_volume": quote},
                 {"Volume USDT": quote, "my_vol": part["volume"].values}):
        p = tmp_path / "v.csv"
        pd.DataFrame({**base, **cols}).to_csv(p, index=False)
        opts = FileOptions(volume_column="my_vol") if "my_vol" in cols else FileOptions(symbol="BTCUSD")
        cf = read_candle_file(p, opts)
        np.testing.assert_allclose(cf.frame["volume"].to_numpy(), part["volume"].to_numpy())
        np.testing.assert_allclose(cf.frame["turnover"].to_numpy(), quote)
    pd.DataFrame({**base, "Volume USD": quote}).to_csv(p, index=False)   # only the quote volume
    cf = read_candle_file(p)
    np.testing.assert_allclose(cf.frame["volume"].to_numpy(), part["volume"].to_numpy(), rtol=1e-9)
    assert "estimated as 'Volume USD' / close" in "\n".join(cf.notes)


def _dotted(frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    df = frame.reset_index()
    df["open_time"] = pd.to_datetime(df["open_time"], unit="ms").dt.strftime(fmt)
    return df.rename(columns={"open_time": "Date"})


def test_day_first_dates_are_read_day_first(tmp_path, btc_daily):
    p = tmp_path / "btc_daily.csv"
    _dotted(btc_daily.iloc[:400], "%d.%m.%Y").to_csv(p, index=False)
    cf = read_candle_file(p)
    assert list(cf.frame.index) == list(btc_daily.index[:400]) and cf.interval == "D"
    assert "day-first (decided by line 14: '13." in "\n".join(cf.notes)   # the 13th of the first month
    _dotted(btc_daily.iloc[:400], "%m/%d/%Y").to_csv(p, index=False)
    assert list(read_candle_file(p).frame.index) == list(btc_daily.index[:400])


def test_dates_that_fit_both_readings(tmp_path, btc_daily):
    # twelve days, all <= 12: only day-first gives one candle a day
    first12 = btc_daily[pd.to_datetime(btc_daily.index, unit="ms").day <= 12].iloc[:12]
    p = tmp_path / "d.csv"
    _dotted(first12, "%d.%m.%Y").to_csv(p, index=False)
    assert list(read_candle_file(p).frame.index) == list(first12.index)
    # two days that fit both readings equally well (one step each way): refused; --dayfirst settles it
    _dotted(first12.iloc[:2], "%d.%m.%Y").to_csv(p, index=False)
    with pytest.raises(DataError, match="day-first or month-first alike; say which with --dayfirst"):
        read_candle_file(p)
    assert list(read_candle_file(p, FileOptions(dayfirst=True)).frame.index) == list(first12.index[:2])
    with pytest.raises(DataError, match="cannot be month-first as asked"):
        _dotted(btc_daily.iloc[:40], "%d.%m.%Y").to_csv(p, index=False)
        read_candle_file(p, FileOptions(dayfirst=False))


def test_interval_is_read_off_the_timestamps_and_a_mismatch_refused(tmp_path, btc_daily):
    p = tmp_path / "daily.csv"
    btc_daily.iloc[:200].reset_index().to_csv(p, index=False)
    assert read_candle_file(p).interval == "D"
    with pytest.raises(DataError, match=r"candles are 1 day apart \(interval D\), not --interval 60"):
        read_candle_file(p, FileOptions(interval="60"))


@pytest.mark.parametrize("field, value, why", [
    ("high", "below", "is below the candle's body"), ("low", "above", "is above the candle's body"),
    ("close", -1.0, "is not a positive price"), ("open", np.nan, "is empty or not a number"),
])
def test_rows_breaking_ohlc_rules_are_refused_with_line_and_field(tmp_path, btc_hourly, field, value, why):
    df = btc_hourly.iloc[:50].reset_index()
    if value == "below":
        value = min(df.loc[20, "open"], df.loc[20, "close"]) - 1
    elif value == "above":
        value = max(df.loc[20, "open"], df.loc[20, "close"]) + 1
    df.loc[20, field] = value
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=rf"line 22: field {field} .*{why}.*refused, not repaired"):
        read_candle_file(p)


def test_gaps_stay_gaps_and_strict_refuses_them(tmp_path, btc_hourly):
    part = btc_hourly.iloc[:100].drop(btc_hourly.index[40:45])
    p = tmp_path / "gap.csv"
    part.reset_index().to_csv(p, index=False)
    cf = read_candle_file(p)
    assert len(cf.frame) == 95 and "gaps: 1 left as gaps (5 candle(s) missing; the largest 6 h" in cf.report()[-1]
    with pytest.raises(DataError, match="1 gap.*--strict refuses"):
        read_candle_file(p, FileOptions(strict=True))


def test_files_that_cannot_be_read(tmp_path, btc_hourly):
    part = btc_hourly.iloc[:10].reset_index()
    p = tmp_path / "nocol.csv"
    part.drop(columns=["close"]).to_csv(p, index=False)
    with pytest.raises(DataError, match="lacks column.*close"):
        read_candle_file(p)
    with pytest.raises(DataError, match="does not exist"):
        read_candle_file(tmp_path / "missing.csv")
    p = tmp_path / "x.json"
    p.write_text("{}")
    with pytest.raises(DataError, match="unknown format"):
        read_candle_file(p)
    p = tmp_path / "t.csv"
    df = part.copy()
    df["open_time"] = pd.to_datetime(df["open_time"], unit="ms").astype(str)
    df.loc[5, "open_time"] = "yesterday-ish"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match="line 7: 'yesterday-ish' in column 'open_time' is not a time"):
        read_candle_file(p)
