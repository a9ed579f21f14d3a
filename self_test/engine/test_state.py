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


def test_the_indicator_replay_gives_the_live_streams_values_bit_for_bit(tmp_path, btc_hourly):
    """A backtest carries the engine's indicators ahead in one pass (`IndicatorReplay`); on 4,000
    real hourly candles every value it hands out, candle by candle, is the live stream's exactly
    (ATR, ADX, regime, the context arrays and the ATR window the risk manager's median reads),
    and a candle it did not expect is refused, not given a wrong value."""
    import numpy as np

    from bot.engine.state import IndicatorReplay, PairState, StreamingIndicators

    s = make_settings(tmp_path)
    full = btc_hourly.iloc[:5000]
    h, lo, c = (full[k].to_numpy().tolist() for k in ("high", "low", "close"))
    ps = PairState("BTCUSDT", "60", full.iloc[:1000])
    live = StreamingIndicators(ps.arrays(), s)
    replay = IndicatorReplay(StreamingIndicators(ps.arrays(), s), c[1000:], h[1000:], lo[1000:])
    regimes = set()
    for i in range(1000, 5000):
        live.update(h[i], lo[i], c[i])
        replay.update(h[i], lo[i], c[i])
        assert (replay.atr, replay.adx, replay.regime()) == (live.atr, live.adx, live.regime()), i
        assert list(replay.atr_hist) == list(live.atr_hist), i
        regimes.add(live.regime())
        if i % 500 == 0:
            got, want = replay.context(), live.context()
            assert got.keys() == want.keys()
            assert all(np.array_equal(got[k], want[k], equal_nan=True) for k in want), i
    assert regimes == {"trending", "choppy", "volatile"}
    with pytest.raises(LookupError):
        replay.update(h[1000], lo[1000], c[1000])       # past its candles: refused


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
