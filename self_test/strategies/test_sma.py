"""The SMA baseline: its crosses against a plain hand loop, and decide() against signals()."""

from __future__ import annotations

import numpy as np
import pytest

from bot.analysis.indicators import atr as ind_atr
from bot.strategies import get_strategy
from bot.strategies.base import FLAT, LONG, SHORT, StrategyContext
from bot.strategies.sma import SMACrossStrategy, state_column
from bot.types import Position

# 2019-03-01 00:00 UTC .. 400 real hourly candles
START_MS = 1551398400000


@pytest.fixture(scope="module")
def slice_(btc_hourly):
    i = int(np.searchsorted(btc_hourly.index, START_MS))
    return btc_hourly.iloc[i:i + 400]


def hand_crosses(close: list[float], fast: int, slow: int) -> list[tuple[int, int]]:
    """(index, +1 up / -1 down) by the textbook definition, with plain sums."""
    out = []
    for i in range(slow, len(close)):
        f0 = sum(close[i - fast:i]) / fast
        s0 = sum(close[i - slow:i]) / slow
        f1 = sum(close[i - fast + 1:i + 1]) / fast
        s1 = sum(close[i - slow + 1:i + 1]) / slow
        if f0 < s0 and f1 > s1:
            out.append((i, 1))
        elif f0 > s0 and f1 < s1:
            out.append((i, -1))
    return out


def test_registry_builds_it_by_name(settings):
    s = get_strategy("sma", settings, fast=5, slow=20)
    assert isinstance(s, SMACrossStrategy) and (s.fast, s.slow) == (5, 20)


def test_bad_periods_are_refused(settings):
    with pytest.raises(ValueError, match="shorter than slow"):
        SMACrossStrategy(settings, fast=30, slow=10)
    with pytest.raises(ValueError, match="atr_stop"):
        SMACrossStrategy(settings, atr_stop=-1)


def test_signals_match_hand_crosses(settings, slice_):
    strat = SMACrossStrategy(settings, fast=5, slow=20)
    sig = strat.signals(slice_)
    crosses = hand_crosses(slice_["close"].tolist(), 5, 20)
    assert len(crosses) >= 10  # a real slice with real crosses, not an empty comparison
    events = {i: d for i, d in crosses}
    for i in range(len(slice_)):
        if i in events:
            assert list(sig[i]) == [events[i]] * 3, i
        else:
            assert list(sig[i]) == [FLAT, LONG, SHORT], i  # keep the position


def test_long_only_turns_cross_down_into_flat(tmp_path, slice_):
    from self_test.conftest import make_settings
    spot = make_settings(tmp_path, EXCHANGE_CATEGORY="spot")
    sig = SMACrossStrategy(spot, fast=5, slow=20).signals(slice_)
    assert (sig != SHORT).all()
    assert (sig[:, 0] == FLAT).any() and (sig[:, 0] == LONG).any()


def test_decide_agrees_with_signals_for_every_state(settings, slice_):
    strat = SMACrossStrategy(settings, fast=5, slow=20, atr_stop=2.0, take_profit=4.0)
    sig = strat.signals(slice_)
    sl_d, tp_d = strat.stop_distances(slice_)
    from bot.types import Position
    for i in range(40, len(slice_)):
        window = slice_.iloc[max(0, i - 60):i + 1]   # the engine passes a window, not all history
        price = float(window["close"].iloc[-1])
        for pos in (FLAT, LONG, SHORT):
            position = None if pos == FLAT else Position("BTCUSDT", "long" if pos == LONG else "short", 0.01, price)
            ctx = StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(window.index[-1]), price=price,
                                  candles={"60": window}, position=position)
            d = strat.decide(ctx)
            assert d.target == sig[i, state_column(pos)], (i, pos)
            if d.target != FLAT and d.target != pos:
                assert d.stop_loss == pytest.approx(price - d.target * sl_d[i])
                assert d.take_profit == pytest.approx(price + d.target * tp_d[i])


def test_atr_is_the_mean_true_range(slice_):
    h, lo, c = (slice_[k].to_numpy() for k in ("high", "low", "close"))
    atr = ind_atr(h, lo, c, 14, smoothing="mean")
    i = 100
    trs = [max(h[j] - lo[j], abs(h[j] - c[j - 1]), abs(lo[j] - c[j - 1])) for j in range(i - 13, i + 1)]
    assert atr[i] == pytest.approx(sum(trs) / 14)
    assert np.isnan(atr[13]) and np.isfinite(atr[14])


def test_told_the_candles_it_decides_exactly_as_it_does_candle_by_candle(settings, btc_hourly):
    """`known_candles` (a backtest tells the strategy its candles first): on 5,000 real hourly
    candles, with the engine's kind of context (the tail as arrays), every decision equals the one
    made without being told, for every position, with and without ATR stops; a candle it was not
    told about (another close) is decided the ordinary way."""
    from bot.engine.candle_frames import CandleFrames

    frame = btc_hourly.iloc[:5000]
    t = np.asarray(frame.index, dtype=np.int64)
    v = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
    held = {0: None, 1: Position("BTCUSDT", "long", 0.01, 5000.0), 2: Position("BTCUSDT", "short", 0.01, 5000.0)}
    for options in ({}, {"fast": 7, "slow": 55, "atr_stop": 2.0, "take_profit": 3.0}):
        plain, told = SMACrossStrategy(settings, **options), SMACrossStrategy(settings, **options)
        told.known_candles("BTCUSDT", t, v)
        crosses = 0
        for i in range(40, len(t), 1):
            def ctx(k=i, price=None):
                return StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(t[k]) + 3_600_000,
                                       price=float(v[k, 3]) if price is None else price,
                                       candles=CandleFrames("60", lambda k=k: frame.iloc[:k + 1],
                                                            (t[:k + 1], v[:k + 1]), 500),
                                       position=held[k % 3])
            a, b = plain.decide(ctx()), told.decide(ctx())
            assert a == b, i
            crosses += a.reason.startswith("SMA")
        assert crosses > 100
        assert told._known_cross(ctx(4000, price=float(v[4000, 3]) + 1.0)) is None   # not a known candle
        told.known_candles("BTCUSDT", t[:0], v[:0])          # the run is over: nothing is known after it
        assert told._known_cross(ctx(4000)) is None


def test_a_backtest_leaves_the_strategy_knowing_no_candles(settings, btc_hourly):
    """The engine backtest tells the strategy its candles and, when the run is over (or fails),
    that there are none: an object used afterwards decides every candle the ordinary way."""
    from bot.research.backtest import engine_backtest

    strat = SMACrossStrategy(settings)
    told: list[int] = []
    original = strat.known_candles

    def spy(symbol, times, values):
        told.append(len(times))
        original(symbol, times, values)

    strat.known_candles = spy
    engine_backtest(settings.replace(SIMULATION_ORDER_DELAY=0.0), strat, btc_hourly.iloc[:600], start=100)
    assert told == [600, 0] and strat._known == {}


def test_holds_ahead_counts_the_candles_up_to_the_next_cross(settings, btc_hourly):
    """`holds_ahead` (`HoldsAhead`: the engine does not ask on the candles it counts) after every
    kept position on 3,000 told real candles: the decisions without being told on the candles it
    counts all keep the position, and the next one is a cross; 0 on a candle it was not told."""
    from bot.engine.candle_frames import CandleFrames
    from bot.strategies.base import HoldsAhead

    frame = btc_hourly.iloc[:3000]
    t = np.asarray(frame.index, dtype=np.int64)
    v = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
    held = {0: None, 1: Position("BTCUSDT", "long", 0.01, 5000.0), 2: Position("BTCUSDT", "short", 0.01, 5000.0)}
    plain, told = SMACrossStrategy(settings), SMACrossStrategy(settings)
    told.known_candles("BTCUSDT", t, v)
    assert isinstance(told, HoldsAhead)

    def ctx(k, pos, price=None):
        return StrategyContext(symbol="BTCUSDT", interval="60", time_ms=int(t[k]) + 3_600_000,
                               price=float(v[k, 3]) if price is None else price,
                               candles=CandleFrames("60", lambda k=k: frame.iloc[:k + 1], (t[:k + 1], v[:k + 1]), 500),
                               position=held[pos])
    counted = 0
    for i in range(40, len(t) - 1, 7):
        pos = i % 3
        c = ctx(i, pos)
        d = told.decide(c)
        if d.target != c.position_target:
            assert told.holds_ahead(c, d) == 0
            continue
        k = told.holds_ahead(c, d)
        counted += k
        assert all(plain.decide(ctx(j, pos)).target == c.position_target for j in range(i + 1, i + 1 + k))
        if i + 1 + k < len(t):
            assert plain.decide(ctx(i + 1 + k, pos)).reason.startswith("SMA")    # the next cross
    assert counted > 5_000
    other = ctx(2000, 0, price=float(v[2000, 3]) + 1.0)      # not the told candle
    assert told.holds_ahead(other, told.decide(other)) == 0
