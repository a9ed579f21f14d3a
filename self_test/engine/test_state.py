"""The engine's trade book: the paper exchange's fills, booked one by one, give the same round
trips and the same P&L as the exchange's own wallet (both are `bot.exchange.ledger`), on real
BTC prices from the seed."""

from __future__ import annotations

import pytest

from bot.engine.state import TradeBook
from bot.exchange.sim import SimExchange
from bot.market.feeds import ReplayFeed
from bot.types import Fill, Position
from self_test.conftest import make_settings


def test_trade_book_follows_the_paper_wallet_fill_by_fill(tmp_path, btc_hourly):
    ex = SimExchange(make_settings(tmp_path, SLIPPAGE_BPS=0.0), clock=lambda: 1_700_000_000.0)  # one time for all
    feed = ReplayFeed(btc_hourly, "BTCUSDT", "60")
    book = TradeBook(mode="PAPER")
    trades = []
    # open, add, cut, reverse through zero, close
    for k, (side, qty) in enumerate([("Buy", 0.02), ("Buy", 0.01), ("Sell", 0.01), ("Sell", 0.05), ("Buy", 0.03)]):
        ex.on_candle(feed.candle_at(300 + k))
        ex.create_order("BTCUSDT", side, qty, client_order_id=f"o{k}")
        for fill in ex.get_fills(f"o{k}"):
            t = book.apply(fill)
            trades += [t] if t else []
        mark = ex.get_price("BTCUSDT")
        assert book.value("BTCUSDT", mark) == pytest.approx(ex.get_balance().equity - 1000.0, abs=1e-9), k
    assert [t.side for t in trades] == ["long", "short"] and not book.open
    assert trades == ex.closed_trades()
    assert sum(t.pnl for t in trades) == pytest.approx(ex.get_balance().wallet_balance - 1000.0, abs=1e-9)


def test_a_seeded_position_closes_as_a_round_trip(btc_hourly):
    entry, exit_ = (float(x) for x in btc_hourly["close"].iloc[[400, 420]])
    book = TradeBook(mode="LIVE")
    book.seed(Position("BTCUSDT", "short", 0.004, entry, opened_ms=5, fees=0.12))
    assert book.value("BTCUSDT", exit_) == pytest.approx((entry - exit_) * 0.004 - 0.12)
    t = book.apply(Fill("c1", "BTCUSDT", "Buy", 0.004, exit_, 0.1, 9, reason="manual"))
    assert t is not None and (t.side, t.qty, t.entry_price, t.exit_price, t.entry_ms, t.exit_ms, t.mode) == (
        "short", 0.004, entry, exit_, 5, 9, "LIVE")
    assert t.pnl == pytest.approx((entry - exit_) * 0.004 - 0.22) and book.closed_pnl["BTCUSDT"] == t.pnl


@pytest.mark.parametrize("seeded", [1000, 31])
def test_the_indicator_replay_gives_the_live_streams_values_bit_for_bit(tmp_path, btc_hourly, seeded):
    """A backtest carries the engine's indicators ahead in one pass (`IndicatorReplay`); on 4,000
    real hourly candles every value it hands out, candle by candle, is the live stream's exactly
    (ATR, ADX, regime, the context arrays and the ATR window the risk manager's median reads),
    and a candle it did not expect is refused, not given a wrong value. Seeded from a long tail,
    or from the 31 candles the engine seeds it from (the regime window still filling up)."""
    import numpy as np

    from bot.engine.state import IndicatorReplay, PairState, StreamingIndicators

    s = make_settings(tmp_path)
    full = btc_hourly.iloc[:seeded + 4000]
    h, lo, c = (full[k].to_numpy().tolist() for k in ("high", "low", "close"))
    ps = PairState("BTCUSDT", "60", full.iloc[:seeded])
    live = StreamingIndicators(ps.arrays(), s)
    replay = IndicatorReplay(StreamingIndicators(ps.arrays(), s), c[seeded:], h[seeded:], lo[seeded:])
    assert replay.regime() == live.regime()
    regimes = set()
    for i in range(seeded, seeded + 4000):
        live.update(h[i], lo[i], c[i])
        replay.update(h[i], lo[i], c[i])
        assert (replay.atr, replay.adx, replay.regime()) == (live.atr, live.adx, live.regime()), i
        assert np.array_equal(list(replay.atr_hist), list(live.atr_hist), equal_nan=True), i
        regimes.add(live.regime())
        if i % 500 == 0:
            got, want = replay.context(), live.context()
            assert got.keys() == want.keys()
            assert all(np.array_equal(got[k], want[k], equal_nan=True) for k in want), i
    assert regimes == {"trending", "choppy", "volatile"}
    with pytest.raises(LookupError):
        replay.update(h[seeded], lo[seeded], c[seeded])       # past its candles: refused


def test_a_backtest_reads_the_replay_and_a_stray_candle_goes_back_to_a_live_stream(tmp_path, btc_hourly):
    from bot.engine.state import IndicatorReplay, StreamingIndicators
    from bot.engine.trading_engine import TradingEngine
    from bot.exchange.sim import SimExchange
    from bot.journal.base import MemoryJournal
    from bot.types import Candle

    s = make_settings(tmp_path, SIMULATION_ORDER_DELAY=0.0)
    frame = btc_hourly.iloc[:400]
    engine = TradingEngine(s, strategy="sma", exchange=SimExchange(s, clock=lambda: 0.0), journal=MemoryJournal())
    engine.prepare("BACKTEST")
    assert engine.step is not None
    vals = frame[["open", "high", "low", "close", "volume", "turnover"]].to_numpy()
    engine.step.known_candles("BTCUSDT", frame.index.to_numpy(), vals)
    candles = [Candle("BTCUSDT", "60", int(t), *map(float, v)) for t, v in zip(frame.index, vals, strict=True)]
    for candle in candles[:300]:
        engine.process_candle(candle)
    ps = engine.state.pairs["BTCUSDT"]
    assert isinstance(ps.stream, IndicatorReplay)
    odd = candles[300]
    engine.process_candle(Candle("BTCUSDT", "60", odd.open_ms, odd.open, odd.high * 1.01, odd.low, odd.close * 1.01,
                                 odd.volume, odd.turnover))   # not the candle the replay expected
    assert isinstance(ps.stream, StreamingIndicators)


def test_the_atr_median_the_risk_manager_reads_is_numpys(tmp_path, btc_hourly):
    """`PairState.atr_median` (the volatility cut's reference) is np.median of the finite ATRs of the
    last 100 candles, taken in plain Python; equal on 3,000 real candles, odd and even counts."""
    import numpy as np

    from bot.engine.state import PairState, StreamingIndicators

    s = make_settings(tmp_path)
    full = btc_hourly.iloc[:3200]
    ps = PairState("BTCUSDT", "60", full.iloc[:31])       # a short tail: the window fills up as it goes
    ps.stream = StreamingIndicators(ps.arrays(), s)
    counts = set()
    for h, lo, c in full[["high", "low", "close"]].to_numpy()[31:].tolist():
        ps.stream.update(h, lo, c)
        a = np.fromiter(ps.stream.atr_hist, dtype=np.float64)
        a = a[np.isfinite(a)]
        counts.add(len(a) % 2)
        assert ps.atr_median() == float(np.median(a))
    assert counts == {0, 1}


def test_a_tail_extended_at_once_is_the_one_appended_candle_by_candle(btc_hourly):
    """`PairState.extend` (a backtest's warm-up taken in at once) leaves the same tail as `append`
    one by one, also when the buffers fill up and move; candles not newer than the last, or out
    of order, are refused with nothing changed."""
    import numpy as np

    from bot.engine.state import PairState
    from bot.types import CANDLE_COLUMNS, Candle

    frame = btc_hourly.iloc[:5200]
    t = frame.index.to_numpy(dtype=np.int64)
    v = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
    one, many = PairState("BTCUSDT", "60", frame.iloc[:100]), PairState("BTCUSDT", "60", frame.iloc[:100])
    for lo, hi in ((100, 160), (160, 2500), (2500, 2501), (2501, 5200)):   # past two buffer moves
        for i in range(lo, hi):
            assert one.append(Candle("BTCUSDT", "60", int(t[i]), *v[i].tolist()))
        many.extend(t[lo:hi], v[lo:hi])
        assert np.array_equal(one.t, many.t) and np.array_equal(one.v, many.v) and one.last_ms == many.last_ms
    assert len(many) == 2000
    before = many.tail_arrays
    with pytest.raises(ValueError, match="newer"):
        many.extend(t[5190:5200], v[5190:5200])
    with pytest.raises(ValueError, match="in order"):
        many.extend(np.array([t[-1] + 7_200_000, t[-1] + 3_600_000]), v[:2])
    assert many.tail_arrays is before


def test_warm_up_candles_taken_at_once_leave_the_state_one_by_one_leaves(tmp_path, btc_hourly):
    """`CandleStep.take_history` (the backtest's warm-up while paused) leaves the pair's tail, its
    indicators and regime, the engine's counters, the paper exchange's price and account and the
    risk manager's day and peak exactly as feeding the same candles one by one; the next candles
    are then decided the same. It refuses to run while the engine decides, and with a position
    open it takes the candles one by one (a candle may trigger its stop)."""
    import numpy as np

    from bot.engine.state import IndicatorReplay
    from bot.engine.trading_engine import TradingEngine
    from bot.exchange.sim import SimExchange
    from bot.journal.base import MemoryJournal
    from bot.types import CANDLE_COLUMNS, Candle

    s = make_settings(tmp_path, SIMULATION_ORDER_DELAY=0.0)
    frame = btc_hourly.iloc[:1600]
    t = frame.index.to_numpy(dtype=np.int64)
    v = frame[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
    candles = [Candle("BTCUSDT", "60", int(t[i]), *v[i].tolist()) for i in range(len(t))]

    def engine():
        now = [0.0]
        e = TradingEngine(s, strategy="sma", exchange=SimExchange(s, clock=lambda: now[0]), journal=MemoryJournal(),
                          clock=lambda: now[0])
        e.prepare("BACKTEST")
        e.step.known_candles("BTCUSDT", t, v)
        e.pause()
        now[0] = candles[999].close_ms / 1000.0
        return e

    def state(e):
        ps, st, risk, sim = e.state.pairs["BTCUSDT"], e.state, e.c.risk, e.c.exchange
        return (ps.t.tolist(), ps.v.tolist(), ps.regime, ps.stream.atr, ps.stream.adx, list(ps.stream.atr_hist),
                {k: x.tolist() for k, x in ps.stream.context().items()}, st.candles_processed,
                dict(st.last_prices), st.last_candle_ms, st.last_close_ms, sim.get_price("BTCUSDT"),
                sim.get_balance(), risk.day, risk.peak_equity, risk.day_start_equity)

    one, once = engine(), engine()
    for c in candles[:1000]:
        one.process_candle(c)
    once.step.take_history("BTCUSDT", "60", t[:1000], v[:1000])
    assert isinstance(once.state.pairs["BTCUSDT"].stream, IndicatorReplay)
    assert state(once) == state(one)
    for e in (one, once):
        e.resume()
        for c in candles[1000:]:
            e.process_candle(c)
    trades = one.c.exchange.closed_trades()
    assert len(trades) > 5 and once.c.exchange.closed_trades() == trades

    with pytest.raises(RuntimeError, match="paused"):   # resumed: these candles would need deciding
        once.step.take_history("BTCUSDT", "60", t[1600:], v[1600:])
    assert one.c.exchange.get_position("BTCUSDT") is not None    # an SMA is always in: one by one
    one.pause()
    later = btc_hourly.iloc[1600:1700]
    lt, lv = later.index.to_numpy(dtype=np.int64), later[list(CANDLE_COLUMNS)].to_numpy(dtype=np.float64)
    seen = []
    one.step.process_candle, real = (lambda c: (seen.append(c.open_ms), real(c))), one.step.process_candle
    one.step.take_history("BTCUSDT", "60", lt, lv)
    assert seen == lt.tolist()
