"""Hot-pair ranking through the real pybit client against the fake Bybit on 127.0.0.1.

Ticker rows are either recorded Bybit replies (self_test/fixtures/bybit/market_tickers_linear.json)
or built from one real day of the seed candles (BTC, ETH, LTC on 2018-01-16, the day of the
January 2018 crash) in Bybit's ticker row shape; instrument rows are the recorded ones.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from bot.market.seed import load_seed
from bot.market.top_pairs import PairManager, rank_pairs
from self_test.conftest import FIXTURES, make_settings
from self_test.fakes.bybit_server import Fault

DAY = "2018-01-16"


def recorded_tickers() -> list[dict]:
    d = json.loads((FIXTURES / "bybit" / "market_tickers_linear.json").read_text())
    return [row for rec in d["recordings"] for row in rec["response"]["result"]["list"]]


def recorded_instruments() -> list[dict]:
    d = json.loads((FIXTURES / "bybit" / "market_instruments_info_rows.json").read_text())
    return d["rows"]["linear"]


def ticker_from_seed(symbol: str, day: str = DAY) -> dict[str, str]:
    """A ticker row (Bybit field names, string numbers) from one real daily candle."""
    f = load_seed(symbol, "D")
    r = f.loc[pd.Timestamp(day, tz="UTC").value // 1_000_000]
    return {"symbol": symbol, "lastPrice": str(r.close), "highPrice24h": str(r.high), "lowPrice24h": str(r.low),
            "prevPrice24h": str(r.open), "price24hPcnt": str(r.close / r.open - 1),
            "turnover24h": str(r.volume * r.close), "volume24h": str(r.volume)}


def seed_rows() -> list[dict]:
    return [ticker_from_seed(s) for s in ("BTCUSDT", "ETHUSDT", "LTCUSDT")]


def test_recorded_ticker_row_is_parsed(tmp_path):
    s = make_settings(tmp_path, PAIR_MIN_TURNOVER=1e6)
    row = recorded_tickers()[0]            # BTCUSDT, 2024-02-14
    ranked = rank_pairs([row], recorded_instruments(), s)
    assert [p.symbol for p in ranked] == ["BTCUSDT"]
    p = ranked[0]
    assert p.turnover_24h == pytest.approx(2352063794.0035)
    assert p.volatility == pytest.approx((51444.40 - 48381.60) / 51444.40)
    assert p.momentum == pytest.approx(0.025861)


def test_filters_status_quote_and_turnover(tmp_path):
    s = make_settings(tmp_path, PAIR_MIN_TURNOVER=100_000)
    instruments = recorded_instruments()
    closed = copy.deepcopy(next(r for r in instruments if r["symbol"] == "ZRXUSDT"))
    closed["status"] = "Closed"                                 # delisted: must not be traded
    instruments = [r for r in instruments if r["symbol"] != "ZRXUSDT"] + [closed]
    rows = seed_rows()
    rows.append(dict(ticker_from_seed("ETHUSDT"), symbol="ZRXUSDT"))
    rows.append(dict(ticker_from_seed("BTCUSDT"), symbol="BTCUSD"))   # inverse: no USDT instrument row
    thin = dict(ticker_from_seed("LTCUSDT"), symbol="XRPUSDT", turnover24h="99999")
    rows.append(thin)
    ranked = {p.symbol for p in rank_pairs(rows, instruments, s)}
    assert ranked == {"BTCUSDT", "ETHUSDT", "LTCUSDT"}


def test_weights_decide_the_order(tmp_path):
    rows = seed_rows()
    inst = recorded_instruments()
    by_turnover = make_settings(tmp_path, PAIR_MIN_TURNOVER=0, PAIR_WEIGHT_TURNOVER=1, PAIR_WEIGHT_VOLATILITY=0,
                                PAIR_WEIGHT_MOMENTUM=0)
    by_range = make_settings(tmp_path, PAIR_MIN_TURNOVER=0, PAIR_WEIGHT_TURNOVER=0, PAIR_WEIGHT_VOLATILITY=1,
                             PAIR_WEIGHT_MOMENTUM=0)
    turnover = {r["symbol"]: float(r["turnover24h"]) for r in rows}
    rng = {r["symbol"]: (float(r["highPrice24h"]) - float(r["lowPrice24h"])) / float(r["lastPrice"]) for r in rows}
    assert [p.symbol for p in rank_pairs(rows, inst, by_turnover)] == sorted(turnover, key=turnover.get,
                                                                             reverse=True)
    assert [p.symbol for p in rank_pairs(rows, inst, by_range)] == sorted(rng, key=rng.get, reverse=True)
    mixed = rank_pairs(rows, inst, make_settings(tmp_path, PAIR_MIN_TURNOVER=0))
    assert all(0.0 <= p.score <= 1.0 + 1e-12 for p in mixed)
    assert mixed == sorted(mixed, key=lambda p: -p.score)


def test_sentiment_hook_moves_a_pair(tmp_path):
    s = make_settings(tmp_path, PAIR_MIN_TURNOVER=0)
    rows, inst = seed_rows(), recorded_instruments()
    base = rank_pairs(rows, inst, s)
    last = base[-1].symbol
    boosted = rank_pairs(rows, inst, s, sentiment=lambda sym: 1.0 if sym == last else -1.0, sentiment_weight=5.0)
    assert boosted[0].symbol == last and boosted[0].sentiment == 1.0


def test_refresh_through_pybit_then_cache_then_fallback(tmp_path, fake_bybit):
    s = make_settings(tmp_path, BYBIT_BASE_URL=fake_bybit.url, PAIR_MIN_TURNOVER=100_000, TOP_PAIRS_COUNT=2,
                      FALLBACK_SYMBOLS="SOLUSDT,BTCUSDT")
    fake_bybit.tickers["linear"] = seed_rows()
    fake_bybit.instruments["linear"] = recorded_instruments()
    clock = [1_600_000_000.0]
    pm = PairManager(s, clock=lambda: clock[0])
    r = pm.refresh()
    assert r.source == "bybit" and len(r.symbols) == 2
    assert fake_bybit.calls("/v5/market/tickers") and fake_bybit.calls("/v5/market/instruments-info")
    cached = json.loads(pm.cache_path.read_text())
    assert cached["time_ms"] == 1_600_000_000_000 and [p["symbol"] for p in cached["pairs"]] == list(r.symbols)
    assert not pm.due()
    clock[0] += 3600
    assert pm.due()                                            # PAIR_REFRESH_MINUTES = 60
    fake_bybit.inject("/v5/market/tickers", Fault(kind="http", status=502, count=50))
    r2 = PairManager(s, clock=lambda: clock[0]).refresh()       # a fresh start: Bybit fails, the cache answers
    assert r2.source == "cache" and r2.symbols == r.symbols and r2.time_ms == r.time_ms
    pm.cache_path.unlink()
    r3 = PairManager(s, clock=lambda: clock[0]).refresh()
    assert r3.source == "fallback" and r3.symbols == ("SOLUSDT", "BTCUSDT")


def test_a_pair_leaving_the_set_stays_managed_until_closed(tmp_path):
    s = make_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT,ETHUSDT", BYBIT_BASE_URL="http://127.0.0.1:1")
    pm = PairManager(s)
    pm.refresh()                                                # nothing listens on port 1: fallback
    assert pm.tracked(["LTCUSDT"]) == ("BTCUSDT", "ETHUSDT", "LTCUSDT")
    assert pm.tracked([]) == ("BTCUSDT", "ETHUSDT")
    assert "Bybit tickers/instruments request failed" in pm.last_error
