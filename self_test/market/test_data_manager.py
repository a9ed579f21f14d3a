"""The candle data layer on real data: cache round trip, incremental update, pagination through
the real pybit client against the fake Bybit kline endpoint, validation, corrupt files, replay."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from pybit.unified_trading import HTTP

from bot.errors import DataError, NetworkError
from bot.market.bybit_klines import BybitKlineSource
from bot.market.cache import CandleCache
from bot.market.candles import find_gaps, make_frame, validate_candles
from bot.market.data_manager import DataManager
from bot.market.feeds import ReplayFeed
from bot.types import interval_ms
from self_test.conftest import make_settings

HOUR = 3_600_000


def pybit_source(fake, now_ms: int, category: str = "linear") -> BybitKlineSource:
    http = HTTP(testnet=False, timeout=5, max_retries=1, retry_delay=0)
    http.endpoint = fake.url
    return BybitKlineSource(http, category, clock=lambda: now_ms / 1000)


def test_seed_is_the_real_hourly_series(btc_hourly):
    assert len(btc_hourly) == 20_111
    assert btc_hourly.index[0] == pd.Timestamp("2017-07-01 11:00", tz="UTC").value // 1_000_000
    assert btc_hourly.index[-1] == pd.Timestamp("2019-10-17 09:00", tz="UTC").value // 1_000_000
    # the first recorded hour of the Coinbase file, exactly as recorded
    first = btc_hourly.iloc[0]
    assert (first.open, first.high, first.low, first.close) == (2505.56, 2513.38, 2495.12, 2509.17)
    assert first.volume == 114.60 and first.turnover == 287000.32
    assert find_gaps(btc_hourly, "60") == []  # the file is clean: no missing hour


def test_seed_round_trips_through_the_cache_exactly(tmp_path, btc_hourly):
    cache = CandleCache(tmp_path)
    cache.write("BTCUSDT", "60", btc_hourly)
    back = cache.read("BTCUSDT", "60")
    pd.testing.assert_frame_equal(back, btc_hourly, check_exact=True)
    assert back.index.dtype == np.int64 and all(back[c].dtype == np.float64 for c in back.columns)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic write leaves no temp files


def test_pagination_through_real_pybit(fake_bybit, btc_hourly):
    fake_bybit.set_klines("BTCUSDT", "60", btc_hourly)
    last = int(btc_hourly.index[-1])
    now = last + HOUR + 60_000  # the last candle has closed one minute ago
    src = pybit_source(fake_bybit, now)
    start = int(btc_hourly.index[-2500])
    got = src.fetch("BTCUSDT", "60", start)
    pd.testing.assert_frame_equal(got, btc_hourly.iloc[-2500:], check_exact=True)
    calls = fake_bybit.calls("/v5/market/kline")
    assert len(calls) == 3  # 1000 + 1000 + 500, newest first, paging backwards
    assert all(c["limit"] == "1000" and c["category"] == "linear" for c in calls)
    assert int(calls[1]["end"]) < int(calls[0]["end"])


def test_still_open_candle_is_dropped(fake_bybit, btc_hourly):
    fake_bybit.set_klines("BTCUSDT", "60", btc_hourly)
    last = int(btc_hourly.index[-1])
    src = pybit_source(fake_bybit, last + 30 * 60_000)  # the last candle is half-way through
    got = src.fetch("BTCUSDT", "60", last - 5 * HOUR)
    assert int(got.index[-1]) == last - HOUR
    assert len(got) == 5


def test_incremental_update_appends_only_new_candles(tmp_path, fake_bybit, btc_hourly):
    settings = make_settings(tmp_path)
    fake_bybit.set_klines("BTCUSDT", "60", btc_hourly)
    cut = len(btc_hourly) - 300
    dm = DataManager(settings, source=None)
    dm.cache.write("BTCUSDT", "60", btc_hourly.iloc[:cut])
    now = int(btc_hourly.index[-1]) + HOUR + 1
    dm._source = pybit_source(fake_bybit, now)
    res = dm.update("BTCUSDT", "60")
    assert res.added == 300 and res.total == len(btc_hourly) and res.gaps == ()
    calls = fake_bybit.calls("/v5/market/kline")
    assert len(calls) == 1 and int(calls[0]["start"]) == int(btc_hourly.index[cut])
    pd.testing.assert_frame_equal(dm.cache.read("BTCUSDT", "60"), btc_hourly, check_exact=True)
    again = dm.update("BTCUSDT", "60")
    assert again.added == 0


def test_gaps_are_reported_not_invented(tmp_path, btc_hourly):
    holed = btc_hourly.drop(btc_hourly.index[100:103])
    gaps = find_gaps(holed, "60")
    assert len(gaps) == 1 and gaps[0].missing == 3
    assert gaps[0].start_ms == int(btc_hourly.index[100]) and gaps[0].end_ms == int(btc_hourly.index[103])
    cache = CandleCache(tmp_path)
    cache.write("BTCUSDT", "60", holed)
    assert len(cache.read("BTCUSDT", "60")) == len(btc_hourly) - 3  # nothing filled in


def _slice(btc_hourly, n=10):
    return btc_hourly.iloc[1000:1000 + n].copy()


def _set(col, row, value):
    """A mutation that puts `value` (or value(frame)) into `col` at position `row`."""
    def mutate(d):
        d.iloc[row, d.columns.get_loc(col)] = value(d) if callable(value) else value
    return mutate


@pytest.mark.parametrize("mutate,field", [
    (_set("close", 3, np.nan), "close"),
    (_set("open", 4, 0.0), "open"),
    (_set("low", 5, -1.0), "low"),
    (_set("high", 6, lambda d: d["open"].iloc[6] * 0.5), "high"),
    (_set("low", 2, lambda d: d["high"].iloc[2] * 1.5), "low"),
    (_set("volume", 7, -5.0), "volume"),
])
def test_each_validation_rule_names_symbol_time_and_field(btc_hourly, mutate, field):
    bad = _slice(btc_hourly)
    mutate(bad)
    with pytest.raises(DataError) as err:
        validate_candles(bad, "BTCUSDT")
    text = str(err.value)
    assert "BTCUSDT" in text and f"field {field}" in text and "UTC" in text


def test_duplicate_and_out_of_order_timestamps_are_refused(btc_hourly):
    good = _slice(btc_hourly)
    dup = pd.concat([good.iloc[:5], good.iloc[4:5], good.iloc[5:]])
    with pytest.raises(DataError, match="duplicate timestamp"):
        validate_candles(dup, "BTCUSDT")
    swapped = good.iloc[[0, 1, 3, 2, 4]]
    with pytest.raises(DataError, match="out of order"):
        validate_candles(swapped, "BTCUSDT")


def test_future_candles_are_refused(btc_hourly):
    good = _slice(btc_hourly)
    now = int(good.index[5])
    with pytest.raises(DataError, match="future"):
        validate_candles(good, "BTCUSDT", now_ms=now)
    # with the interval known, a candle that has not closed yet is also refused
    with pytest.raises(DataError, match="closes in the future"):
        validate_candles(good.iloc[:6], "BTCUSDT", now_ms=now + HOUR - 1, interval="60")
    validate_candles(good.iloc[:6], "BTCUSDT", now_ms=now + HOUR, interval="60")


def test_a_bad_batch_never_reaches_the_cache(tmp_path, btc_hourly):
    cache = CandleCache(tmp_path)
    cache.write("BTCUSDT", "60", btc_hourly.iloc[:100])
    before = cache.path("BTCUSDT", "60").read_bytes()
    bad = btc_hourly.iloc[100:110].copy()
    bad.loc[bad.index[3], "high"] = 1.0
    with pytest.raises(DataError):
        cache.append("BTCUSDT", "60", bad)
    assert cache.path("BTCUSDT", "60").read_bytes() == before


def test_malformed_reply_from_bybit_is_a_data_error(fake_bybit, btc_hourly):
    broken = btc_hourly.iloc[-20:].copy()
    broken.loc[broken.index[10], "low"] = broken["high"].iloc[10] + 100  # low above everything
    fake_bybit.set_klines("BTCUSDT", "60", broken)
    src = pybit_source(fake_bybit, int(broken.index[-1]) + 2 * HOUR)
    with pytest.raises(DataError, match="BTCUSDT.*field low"):
        src.fetch("BTCUSDT", "60", int(broken.index[0]))


def test_unreachable_bybit_is_a_network_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    http = HTTP(testnet=False, timeout=2, max_retries=1, retry_delay=0)
    http.endpoint = f"http://127.0.0.1:{port}"
    with pytest.raises(NetworkError, match="BTCUSDT"):
        BybitKlineSource(http).fetch("BTCUSDT", "60", 0)


def test_corrupt_cache_file_is_reported_kept_aside_and_rebuilt(tmp_path, fake_bybit, btc_hourly, caplog):
    settings = make_settings(tmp_path)
    fake_bybit.set_klines("BTCUSDT", "60", btc_hourly)
    now = int(btc_hourly.index[-1]) + HOUR + 1
    dm = DataManager(settings, source=pybit_source(fake_bybit, now))
    dm.cache.write("BTCUSDT", "60", btc_hourly.iloc[-500:])
    path = dm.cache.path("BTCUSDT", "60")
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    data[-8:] = b"garbage!"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=str(path.name)):
        dm.cache.read("BTCUSDT", "60")
    with caplog.at_level("ERROR"):
        df = dm.load("BTCUSDT", "60")
    assert "unreadable" in caplog.text and "rebuilding" in caplog.text
    assert len(df) > 0 and dm.cache.read("BTCUSDT", "60").equals(df)
    kept = list(path.parent.glob("60.corrupt-*.parquet"))
    assert len(kept) == 1 and kept[0].read_bytes() == bytes(data)  # the damaged file is not lost


def test_corrupt_cache_rebuilds_from_seed_when_offline(tmp_path, btc_hourly):
    settings = make_settings(tmp_path, BYBIT_BASE_URL="http://127.0.0.1:9", BYBIT_TIMEOUT=1)
    dm = DataManager(settings)
    dm.cache.path("BTCUSDT", "60").parent.mkdir(parents=True)
    dm.cache.path("BTCUSDT", "60").write_bytes(b"PAR1 this is not parquet")
    df = dm.load("BTCUSDT", "60")
    pd.testing.assert_frame_equal(df, btc_hourly, check_exact=True)


def test_replay_fast_and_paced(btc_hourly):
    frame = btc_hourly.iloc[:50]
    fast = list(ReplayFeed(frame, "BTCUSDT", "60"))
    assert [c.open_ms for c in fast] == list(frame.index)
    assert fast[7].close == frame["close"].iloc[7] and fast[7].close_ms == fast[8].open_ms
    feed = ReplayFeed(frame.iloc[:4], "BTCUSDT", "60", speed=3600 * 20)  # one hour in 1/20 s
    t0 = time.monotonic()
    assert len(list(feed)) == 4
    assert time.monotonic() - t0 >= 3 * 0.05 * 0.9  # three waits between four candles


def test_replay_stops_promptly_from_another_thread(btc_hourly):
    feed = ReplayFeed(btc_hourly, "BTCUSDT", "60", pace_seconds=30)
    got: list = []
    t = threading.Thread(target=lambda: got.extend(feed), daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    feed.stop()
    t.join(timeout=5)
    assert not t.is_alive() and len(got) == 1


def test_interval_mapping():
    assert interval_ms("1") == 60_000 and interval_ms("60") == HOUR and interval_ms("D") == 24 * HOUR
    assert interval_ms("W") == 7 * 24 * HOUR
    with pytest.raises(DataError, match="not a Bybit interval"):
        interval_ms("7")


def test_make_frame_is_canonical():
    df = make_frame([3, 1, 2], [1, 1, 1], [2, 2, 2], [0.5, 0.5, 0.5], [1, 1, 1], [1, 2, 3])
    assert list(df.index) == [1, 2, 3] and df.index.name == "open_time"
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "turnover"]
    assert np.isnan(df["turnover"]).all()
