"""The trading engine on replayed real candles: a full paper session over three pairs, stops,
manual orders, stop with and without closing, Bybit down -> REPLAY, Bybit up -> LIVE through
pybit and the fake, the circuit breaker, and the in-process restart after a critical error.

Daily candles are used for three pairs because the project ships real daily BTC, ETH and LTC
(only BTC has hourly candles). Every replay here runs at pace 0.
"""

from __future__ import annotations

import pandas as pd
import pytest

from bot.engine.snapshot import EngineStatus
from bot.engine.step import ManualOrderResult
from bot.engine.trading_engine import TradingEngine
from bot.errors import AuthError, NetworkError
from bot.events import EventKind
from bot.exchange.sim import SimExchange
from bot.journal.store import Journal
from bot.market.bybit_klines import BybitKlineSource
from bot.market.feeds import BybitMarket, ReplayMarket
from bot.market.seed import load_seed
from bot.strategies.sma import SMACrossStrategy
from bot.types import Candle, Connection, DataSource
from self_test.conftest import make_settings, wait_for
from self_test.fakes.priced_market import PricedMarket

PAIRS = ["BTCUSDT", "ETHUSDT", "LTCUSDT"]
DAY = 86_400_000


def ms(day: str) -> int:
    return pd.Timestamp(day, tz="UTC").value // 1_000_000


def daily_settings(tmp_path, **kw):
    base = dict(CANDLE_INTERVAL="D", FALLBACK_SYMBOLS=",".join(PAIRS), TOP_PAIRS_COUNT=3, STRATEGY="sma",
                BYBIT_BASE_URL="http://127.0.0.1:1", STOP_ATR_MULT=1.5, TRAINING_ENABLED=False)
    base.update(kw)
    return make_settings(tmp_path, **base)


def drain(q) -> list:
    return [q.get_nowait() for _ in range(q.qsize())]


def replay(settings, start: str, end: str, symbols=PAIRS, pace: float = 0.0) -> ReplayMarket:
    return ReplayMarket(settings, symbols=symbols, pace=pace, start_ms=ms(start), end_ms=ms(end))


def test_paper_session_over_three_pairs_agrees_at_the_end(tmp_path):
    s = daily_settings(tmp_path)
    journal = Journal(tmp_path / "journal.db")
    sim = SimExchange(s)
    engine = TradingEngine(s, market=replay(s, "2018-01-15", "2018-05-15"), journal=journal, exchange=sim)
    q = engine.subscribe()
    engine.start("PAPER")
    wait_for(lambda: not engine.running, timeout=60, message="the replay to finish")
    snap = engine.snapshot()
    assert snap.data_source == DataSource.REPLAY and snap.connection == Connection.OFFLINE_REPLAY
    assert set(snap.active_pairs) == set(PAIRS)
    assert engine.candles_processed == 3 * 121                    # 121 real days of each pair (end inclusive)
    engine.stop(close_positions=True)
    trades = list(engine.recent_trades)
    reasons = {t.reason for t in trades}
    assert len(trades) >= 6 and {t.symbol for t in trades} == set(PAIRS)
    assert "stop-loss" in reasons                                  # stops triggered from candle lows/highs
    # journal, wallet and positions agree
    assert sim.get_positions() == [] and journal.positions("PAPER") == []
    jt = journal.closed_trades("PAPER")
    assert len(jt) == len(trades) and sum(t.pnl for t in jt) == pytest.approx(sum(t.pnl for t in trades))
    assert len(sim.closed_trades()) == len(trades)
    assert sum(t.pnl for t in sim.closed_trades()) == pytest.approx(sum(t.pnl for t in trades), abs=1e-6)
    bal = sim.get_balance()
    assert bal.wallet_balance == pytest.approx(s.PAPER_START_BALANCE + sum(t.pnl for t in trades), abs=1e-6)
    final = engine.snapshot()
    assert final.equity == pytest.approx(bal.equity) and final.positions == ()
    assert final.metrics["session_trades"] == len(trades)
    assert final.metrics["session_net_pnl"] == pytest.approx(sum(t.pnl for t in trades))
    # every exit came at a real price of the candle it happened in (paper fills carry candle times)
    for t in trades:
        day = load_seed(t.symbol, "D").loc[t.exit_ms - DAY]
        assert day.low * (1 - 1e-3) <= t.exit_price <= day.high * (1 + 1e-3), t
    kinds = {e.kind for e in drain(q)}
    assert {EventKind.TRADE, EventKind.STOP_LOSS, EventKind.MODE} <= kinds
    journal.close()


def test_process_candle_without_a_thread_gives_the_same_trades(tmp_path):
    """The backtester drives `process_candle` directly: same code path, same trades as the thread."""
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1)
    threaded = TradingEngine(s, market=replay(s, "2018-01-15", "2018-07-01", ["BTCUSDT"]),
                             journal=Journal(tmp_path / "a.db"), exchange=SimExchange(s))
    threaded.start("PAPER")
    wait_for(lambda: not threaded.running, timeout=60, message="the threaded replay")
    market = replay(s, "2018-01-15", "2018-07-01", ["BTCUSDT"])
    sync = TradingEngine(s, market=market, exchange=SimExchange(s))
    sync.prepare("BACKTEST")
    while not market.exhausted:
        for c in market.next_candles(["BTCUSDT"], 0):
            sync.process_candle(c)
    key = [(t.side, t.entry_price, t.exit_price, t.reason) for t in threaded.recent_trades]
    assert len(key) >= 3 and key == [(t.side, t.entry_price, t.exit_price, t.reason) for t in sync.recent_trades]
    threaded.stop(close_positions=False)


def run_until_open(engine: TradingEngine, market: ReplayMarket, symbols) -> None:
    while not market.exhausted and not engine.c.exchange.get_positions():
        for c in market.next_candles(symbols, 0):
            engine.process_candle(c)
    assert engine.c.exchange.get_positions(), "no position opened on the span"


@pytest.mark.parametrize("close", [False, True])
def test_stop_with_and_without_closing_positions(tmp_path, close):
    s = daily_settings(tmp_path)
    journal = Journal(tmp_path / "j.db")
    market = replay(s, "2018-02-01", "2018-06-01")
    engine = TradingEngine(s, market=market, journal=journal, exchange=SimExchange(s))
    engine.replay = True          # set before prepare: the paper exchange then fills at candle times
    engine.prepare("PAPER")
    q = engine.subscribe()
    run_until_open(engine, market, PAIRS)
    held = [p.symbol for p in engine.c.exchange.get_positions()]
    engine.stop(close_positions=close)
    events = drain(q)
    if close:
        assert engine.c.exchange.get_positions() == [] and journal.positions("PAPER") == []
        assert [t.reason for t in journal.closed_trades("PAPER")][-len(held):] == ["close-all"] * len(held)
        assert any("closed" in e.message and e.kind == EventKind.MODE for e in events)
    else:
        assert [p.symbol for p in engine.c.exchange.get_positions()] == held
        assert [p.symbol for p in journal.positions("PAPER")] == held
        assert journal.get_state("positions_left_open")["positions"] == held
        left = [e for e in events if e.kind == EventKind.MODE and "left open" in e.message]
        assert left and left[0].data["left_open"] == held
        assert all(p.stop_loss is not None for p in engine.c.exchange.get_positions())   # they keep their stops
    journal.close()


def test_manual_orders_go_through_the_same_risk_checks(tmp_path):
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1)
    market = replay(s, "2018-03-01", "2018-04-01", ["BTCUSDT"], pace=3600)   # one candle, then it waits
    engine = TradingEngine(s, market=market, journal=Journal(tmp_path / "j.db"), exchange=SimExchange(s))
    engine.start("PAPER")
    wait_for(lambda: engine.candles_processed >= 1, timeout=30, message="the first candle")
    bought = engine.submit_manual_order("BTCUSDT", "buy", 30).result(timeout=10)
    assert isinstance(bought, ManualOrderResult) and bought.ok, bought.message
    assert bought.side == "Buy" and bought.qty > 0 and bought.client_order_id
    pos = engine.c.exchange.get_positions()[0]
    assert pos.side == "long" and pos.stop_loss is not None        # the risk manager's stop came with it
    flip = engine.submit_manual_order("BTCUSDT", "sell", 30).result(timeout=10)
    assert not flip.ok and "close it first" in flip.message
    too_big = engine.submit_manual_order("ETHUSDT", "buy", 900).result(timeout=10)
    assert not too_big.ok and "risk per trade" in too_big.message   # 900 USDT at a 1.5 ATR stop > 2 % of equity
    closed = engine.submit_close_position("BTCUSDT").result(timeout=10)
    assert closed.ok and engine.c.exchange.get_positions() == []
    assert engine.recent_trades[-1].reason == "manual"
    assert engine.submit_close_position("BTCUSDT").result(timeout=10).ok is False
    engine.stop(close_positions=False)
    assert not engine.running


def test_bybit_unreachable_means_replay_and_the_engine_says_so(tmp_path):
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1, REPLAY_CANDLE_SECONDS=0)
    engine = TradingEngine(s)                     # no market given: it probes Bybit (port 1 refuses)
    q = engine.subscribe()
    engine.start("PAPER")
    wait_for(lambda: engine.candles_processed >= 5, timeout=30, message="replayed candles")
    snap = engine.snapshot()
    assert snap.data_source == DataSource.REPLAY and snap.connection == Connection.OFFLINE_REPLAY
    # progress of the real paper record is shown (nothing yet), replayed trades never add to it
    assert [c.name for c in snap.promotion][:2] == ["closed trades", "days of record"]
    assert snap.promotion[0].actual == "0" and not snap.promotion[0].met
    engine.stop(close_positions=False)
    data = [e for e in drain(q) if e.kind == EventKind.DATA]
    assert data and "cannot be reached" in data[0].message and "REPLAY" in data[0].message
    assert (tmp_path / "data" / "replay_state.db").exists()          # replay never writes the paper journal
    assert not (tmp_path / "data" / "state.db").exists()


def test_live_market_data_from_bybit_through_pybit(tmp_path, fake_bybit):
    """Bybit answers: LIVE candles, polled as they close (the fake's clock walks through real days)."""
    frame = load_seed("BTCUSDT", "D")
    now = [ms("2019-03-01") / 1000 + 60]
    fake_bybit.clock = lambda: now[0]
    fake_bybit.set_klines("BTCUSDT", "D", frame)
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1, BYBIT_BASE_URL=fake_bybit.url,
                       MARKET_POLL_SECONDS=0.1)
    src = BybitKlineSource.from_settings(s)
    src.clock = lambda: now[0]
    market = BybitMarket(s, source=src, clock=lambda: now[0])
    engine = TradingEngine(s, market=market, journal=Journal(tmp_path / "j.db"), exchange=SimExchange(s))
    engine.start("PAPER")
    wait_for(lambda: engine.snapshot().status == EngineStatus.RUNNING, timeout=30, message="running")
    assert engine.snapshot().data_source == DataSource.LIVE
    assert engine.pairs["BTCUSDT"].last_ms == ms("2019-02-28")       # warm-up: the last closed day
    now[0] += 2 * 86_400                                              # two more days close
    wait_for(lambda: engine.pairs["BTCUSDT"].last_ms == ms("2019-03-02"), timeout=30, message="new candles")
    assert engine.candles_processed == 2
    assert fake_bybit.calls("/v5/market/kline")
    engine.stop(close_positions=False)


def test_circuit_breaker_open_vetoes_entries(tmp_path):
    s = daily_settings(tmp_path, ERROR_RATE_THRESHOLD=1, CIRCUIT_COOLDOWN_SECONDS=10_000)
    journal = Journal(tmp_path / "j.db")
    market = replay(s, "2018-02-01", "2018-04-01")
    engine = TradingEngine(s, market=market, journal=journal, exchange=SimExchange(s))
    engine.replay = True          # set before prepare: the paper exchange then fills at candle times
    engine.prepare("PAPER")
    engine.c.errors.handle(NetworkError("Bybit timed out"), "test: a network error")
    assert engine.c.errors.state == "open"
    while not market.exhausted:
        for c in market.next_candles(PAIRS, 0):
            engine.process_candle(c)
    assert engine.c.exchange.get_positions() == [] and not engine.recent_trades
    vetoes = journal.vetoes()
    assert vetoes and all("circuit" in v["reason"] for v in vetoes)
    assert engine.snapshot().circuit in ("open", "closed")   # snapshot reads the handler's state
    journal.close()


class FlakyAuth:
    """The SMA baseline, except that its first decision hits an expired API key (critical)."""

    name = "sma"

    def __init__(self, settings) -> None:
        self.inner = SMACrossStrategy(settings)
        self.warmup = self.inner.warmup
        self.calls = 0

    def decide(self, ctx):
        self.calls += 1
        if self.calls == 1:
            raise AuthError("API key expired", code=10003)
        return self.inner.decide(ctx)


def test_critical_error_restarts_the_engine_in_process(tmp_path):
    s = daily_settings(tmp_path, RESTART_BACKOFF_SECONDS=0, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1)
    strat = FlakyAuth(s)
    engine = TradingEngine(s, strategy=strat, market=replay(s, "2018-02-01", "2018-04-01", ["BTCUSDT"]),
                           journal=Journal(tmp_path / "j.db"), exchange=SimExchange(s))
    q = engine.subscribe()
    engine.start("PAPER")
    wait_for(lambda: not engine.running, timeout=60, message="the replay after the restart")
    events = drain(q)
    crit = [e for e in events if e.kind == EventKind.CRITICAL]
    restart = [e for e in events if e.kind == EventKind.RESTART]
    assert crit and "API key expired" in crit[0].message
    assert restart and "AuthError" in restart[0].message
    assert engine.restarts == 1 and engine.snapshot().restarts == 1
    assert strat.calls > 30                                   # it went on deciding after the restart
    assert any("AuthError" in e for e in engine.snapshot().errors)
    engine.stop(close_positions=True)


def test_chart_data_is_a_frozen_aligned_copy(tmp_path):
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1)
    market = replay(s, "2018-02-01", "2018-06-01", ["BTCUSDT"])
    engine = TradingEngine(s, market=market, exchange=SimExchange(s))
    engine.prepare("BACKTEST")
    run_until_open(engine, market, ["BTCUSDT"])
    cd = engine.chart_data("BTCUSDT", 120)
    assert len(cd.candles) == 120 and len(cd.ema21) == len(cd.ema50) == len(cd.bb_upper) == 120
    assert cd.candles.index[-1] == engine.pairs["BTCUSDT"].last_ms
    assert cd.markers and cd.markers[-1].time_ms >= cd.candles.index[0]
    engine._publish_snapshot()
    assert engine.chart_data("BTCUSDT").stop_loss == engine.c.exchange.get_positions()[0].stop_loss
    cd.candles.iloc[-1, 3] = -1.0                                 # a copy: the engine's data is untouched
    assert engine.pairs["BTCUSDT"].price > 0
    assert engine.chart_data("NOPEUSDT") is None


def test_replayed_candles_are_the_recorded_ones(tmp_path):
    s = daily_settings(tmp_path)
    m = replay(s, "2018-01-15", "2018-01-17")           # end inclusive: three days
    got: list[Candle] = []
    while not m.exhausted:
        got += m.next_candles(PAIRS, 0)
    assert len(got) == 9 and [c.open_ms for c in got][::3] == [ms("2018-01-15"), ms("2018-01-16"), ms("2018-01-17")]
    eth = load_seed("ETHUSDT", "D").loc[ms("2018-01-16")]
    c = next(c for c in got if c.symbol == "ETHUSDT" and c.open_ms == ms("2018-01-16"))
    assert (c.open, c.high, c.low, c.close) == (eth.open, eth.high, eth.low, eth.close)
    assert len(m.history("BTCUSDT", 10)) == 10 and m.history("BTCUSDT", 10).index[-1] == ms("2018-01-17")


def test_streaming_indicators_and_regime_equal_the_full_history(tmp_path, btc_hourly):
    """The engine carries ATR, ADX and the regime forward in O(1) per candle; on 5,000 real hourly
    candles every step equals bot.analysis.indicators / bot.analysis.features computed over the whole history."""
    from bot.analysis import indicators as ind
    from bot.analysis.features import regime
    from bot.engine.state import PairState, StreamingIndicators

    s = make_settings(tmp_path)
    full = btc_hourly.iloc[:6000]
    h, lo, c = (full[k].to_numpy() for k in ("high", "low", "close"))
    atr = ind.atr(h, lo, c, s.ATR_PERIOD)
    adx = ind.adx(h, lo, c, s.ADX_PERIOD)[0]
    regimes = regime(full, settings=s)
    ps = PairState("BTCUSDT", "60", full.iloc[:1000])
    stream = StreamingIndicators(ps.arrays(), s)
    seen = set()
    for i in range(1000, 6000):
        stream.update(h[i], lo[i], c[i])
        assert stream.atr == pytest.approx(atr[i], rel=1e-9), i
        assert stream.adx == pytest.approx(adx[i], rel=1e-9), i
        assert stream.regime() == regimes[i], i
        seen.add(regimes[i])
    assert seen == {"trending", "choppy", "volatile"}


# -- the headless commands -------------------------------------------------------------------------

def env_file(tmp_path, **values) -> str:
    base = {"HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "logs" / "bot.log"),
            "BYBIT_BASE_URL": "http://127.0.0.1:1", "SIMULATION_ORDER_DELAY": "0"}
    base.update(values)
    p = tmp_path / "test.env"
    p.write_text("".join(f"{k}={v}\n" for k, v in base.items()))
    return str(p)


def test_live_command_refuses_without_keys(tmp_path, monkeypatch, capsys):
    from bot.__main__ import main

    for k in ("BYBIT_API_KEY", "BYBIT_API_SECRET"):
        monkeypatch.delenv(k, raising=False)
    assert main(["--env-file", env_file(tmp_path), "live", "--yes", "--no-supervisor"]) == 2
    assert "needs BYBIT_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "data" / "state.db").exists()       # no consent, no journal, nothing traded


def test_live_confirmation_needs_the_typed_word(tmp_path, fake_bybit, capsys):
    from bot.cli import live

    s = make_settings(tmp_path, environ={"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"},
                      BYBIT_BASE_URL=fake_bybit.url)
    assert live.confirm(s, ask=lambda prompt: "LIVE") is True
    shown = capsys.readouterr().out
    assert "equity" in shown and "5% of equity" in shown        # the balance at risk and the sizing rule
    assert live.confirm(s, ask=lambda prompt: "live") is False
    assert live.confirm(s, ask=lambda prompt: "") is False


def test_close_all_command_closes_the_paper_wallet(tmp_path):
    from bot.__main__ import main
    from bot.cli.status import paper_wallet_path
    from bot.exchange.executor import TradeExecutor

    env = env_file(tmp_path)
    s = make_settings(tmp_path)
    sim = SimExchange(s, state_path=paper_wallet_path(s))
    last = load_seed("BTCUSDT", "60").iloc[-1]
    sim.set_price("BTCUSDT", float(last.close))
    journal = Journal(tmp_path / "data" / "state.db")
    assert TradeExecutor(sim, journal, settings=s).open_position("BTCUSDT", "long", notional=50.0).ok
    journal.close()
    assert main(["--env-file", env, "close-all"]) == 0
    after = SimExchange(s, state_path=paper_wallet_path(s))
    assert after.get_positions() == []
    j = Journal(tmp_path / "data" / "state.db")
    trades = j.closed_trades("PAPER")
    assert len(trades) == 1 and trades[0].reason == "close-all" and trades[0].exit_price == pytest.approx(
        float(last.close), rel=1e-3)                            # Bybit down: the last recorded candle
    j.close()
    assert main(["--env-file", env, "close-all"]) == 0          # nothing left: still fine


def test_pairs_command_shows_the_ranking(tmp_path, fake_bybit, capsys):
    from bot.__main__ import main
    from self_test.market.test_top_pairs import recorded_instruments, seed_rows

    fake_bybit.tickers["linear"] = seed_rows()
    fake_bybit.instruments["linear"] = recorded_instruments()
    env = env_file(tmp_path, BYBIT_BASE_URL=fake_bybit.url, PAIR_MIN_TURNOVER="100000")
    assert main(["--env-file", env, "pairs", "--top", "2"]) == 0
    out = capsys.readouterr().out
    rows = [ln.split()[1] for ln in out.splitlines() if ln[:2].strip().isdigit()]
    assert "source: bybit" in out and rows == ["ETHUSDT", "BTCUSDT"]   # the 2018-01-16 crash: ETH moved most
    assert main(["--env-file", env, "pairs", "--top", "0"]) == 2


def test_pause_stops_decisions_but_not_candles(tmp_path):
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1)
    market = replay(s, "2018-01-15", "2018-06-01", ["BTCUSDT"])
    engine = TradingEngine(s, market=market, exchange=SimExchange(s))
    engine.prepare("BACKTEST")
    engine.pause()
    while not market.exhausted:
        for c in market.next_candles(["BTCUSDT"], 0):
            engine.process_candle(c)
    btc = load_seed("BTCUSDT", "D")
    recorded = int(((btc.index >= ms("2018-01-15")) & (btc.index <= ms("2018-06-01"))).sum())
    assert engine.candles_processed == recorded and engine.c.exchange.get_positions() == []   # no decisions
    assert engine.pairs["BTCUSDT"].last_ms == ms("2018-06-01")                           # candles still came
    assert engine.snapshot().status == EngineStatus.PAUSED
    engine.resume()
    more = replay(s, "2018-06-02", "2018-09-01", ["BTCUSDT"])
    while not more.exhausted:
        for c in more.next_candles(["BTCUSDT"], 0):
            engine.process_candle(c)
    assert engine.recent_trades or engine.c.exchange.get_positions()


def test_drawdown_limit_halts_entries_and_alerts(tmp_path):
    s = daily_settings(tmp_path, MAX_DRAWDOWN=0.005)           # 0.5 % under the peak: broken early on
    journal = Journal(tmp_path / "j.db")
    market = replay(s, "2018-01-15", "2018-05-15")
    engine = TradingEngine(s, market=market, journal=journal, exchange=SimExchange(s))
    engine.replay = True
    engine.prepare("PAPER")
    q = engine.subscribe()
    while not market.exhausted:
        for c in market.next_candles(PAIRS, 0):
            engine.process_candle(c)
    events = drain(q)
    alerts = [e for e in events if e.kind == EventKind.CRITICAL and "RISK LIMIT" in e.message]
    assert len(alerts) == 1 and "drawdown" in alerts[0].message     # alerted once, not every candle
    halted = [v for v in journal.vetoes() if v["reason"].startswith("halted")]
    assert halted and all("drawdown" in v["reason"] for v in halted)
    first_halt = halted[0]["data"]["time_ms"]
    assert all(t.entry_ms <= first_halt for t in engine.recent_trades)   # nothing opened after the halt
    journal.close()


def session_over(engine: TradingEngine, market, ranking):
    """A `Session` over the engine's prepared parts, fed by `market` (nothing runs until asked)."""
    import threading

    from bot.engine.commands import EngineCommands
    from bot.engine.loop import FeedChooser, Session
    from bot.engine.promotion import PromotionWatch

    engine.c.market = market
    promotion = PromotionWatch(engine.settings, engine.state, engine.bus, journals=engine.journals,
                               consent=engine.has_live_consent)
    return Session(engine.settings, engine.state, engine.step, engine.bus, ranking=ranking,
                   feeds=FeedChooser(engine.settings, engine.bus, given=market), promotion=promotion,
                   stop=threading.Event(), commands=EngineCommands(), publish=engine._publish_snapshot,
                   probe_live=False, clock=engine.clock)


def test_a_pair_leaving_the_hot_set_is_managed_until_its_position_closes(tmp_path, fake_bybit):
    from bot.market.top_pairs import PairManager
    from self_test.market.test_top_pairs import recorded_instruments, ticker_from_seed

    s = daily_settings(tmp_path, TOP_PAIRS_COUNT=2, BYBIT_BASE_URL=fake_bybit.url, PAIR_MIN_TURNOVER=0,
                       PAIR_WEIGHT_TURNOVER=1, PAIR_WEIGHT_VOLATILITY=0, PAIR_WEIGHT_MOMENTUM=0)
    rows = {sym: ticker_from_seed(sym) for sym in PAIRS}
    fake_bybit.instruments["linear"] = recorded_instruments()

    def set_turnover(order):   # real rows; only the turnover decides the ranking here
        fake_bybit.tickers["linear"] = [dict(rows[sym], turnover24h=str(10 ** (9 - i))) for i, sym in enumerate(order)]

    set_turnover(["BTCUSDT", "ETHUSDT", "LTCUSDT"])
    clock = [1_600_000_000.0]
    pm = PairManager(s, clock=lambda: clock[0])
    market = replay(s, "2018-01-15", "2018-06-01")
    engine = TradingEngine(s, market=market, exchange=SimExchange(s), pairs=pm)
    engine.prepare("BACKTEST")
    session = session_over(engine, market, pm.refresh())
    symbols = session.rotate_pairs([])
    assert engine.active_pairs == ("BTCUSDT", "ETHUSDT") and set(symbols) == {"BTCUSDT", "ETHUSDT"}
    while not market.exhausted and not any(p.symbol == "ETHUSDT" for p in engine.c.exchange.get_positions()):
        for c in market.next_candles(symbols, 0):
            engine.process_candle(c)
    assert any(p.symbol == "ETHUSDT" for p in engine.c.exchange.get_positions())
    set_turnover(["LTCUSDT", "BTCUSDT", "ETHUSDT"])          # ETH drops out of the top two
    clock[0] += 3600
    symbols = session.rotate_pairs(symbols)
    assert engine.active_pairs == ("LTCUSDT", "BTCUSDT")
    assert "ETHUSDT" in symbols and "LTCUSDT" in engine.pairs   # ETH still managed; LTC warmed up
    assert engine.step.entries_allowed("ETHUSDT", "long", 0) is False
    engine.submit_close_position("ETHUSDT").result(timeout=10)
    clock[0] += 3600
    symbols = session.rotate_pairs(symbols)
    assert "ETHUSDT" not in symbols and "ETHUSDT" not in engine.pairs


def test_live_session_on_bybit_through_pybit_journals_every_order_first(tmp_path, fake_bybit):
    """LIVE end to end against the fake Bybit (real pybit, signed requests): keys + consent, Bybit
    candles polled as they close, orders with orderLinkIds journaled before they are sent, and
    stop(close_positions=True) leaves nothing open on the exchange."""
    keys = {"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}
    s = make_settings(tmp_path, environ=keys, CANDLE_INTERVAL="D", FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1,
                      STRATEGY="sma", BYBIT_BASE_URL=fake_bybit.url, MARKET_POLL_SECONDS=0.1, TRAINING_ENABLED=False,
                      BYBIT_TIMEOUT=2.0)
    frame = load_seed("BTCUSDT", "D")
    fake_bybit.set_klines("BTCUSDT", "D", frame)
    now = [ms("2018-02-01") / 1000 + 60]            # the market's clock walks through real days


    src = BybitKlineSource.from_settings(s)
    src.clock = lambda: now[0]
    journal = Journal(tmp_path / "live.db")
    engine = TradingEngine(s, market=PricedMarket(s, source=src, clock=lambda: now[0], fake=fake_bybit), journal=journal)
    with pytest.raises(Exception, match="consent"):
        engine.start("LIVE")
    engine.give_live_consent()
    engine.start("LIVE")
    wait_for(lambda: engine.snapshot().status == EngineStatus.RUNNING, timeout=30, message="live session")
    snap = engine.snapshot()
    assert snap.mode == "LIVE" and snap.data_source == DataSource.LIVE
    for _ in range(60):                              # 60 real days close, one by one
        before = engine.candles_processed
        now[0] += 86_400
        wait_for(lambda b=before: engine.candles_processed > b, timeout=30, message="the next live candle")
    assert fake_bybit.book.links, "no order reached Bybit in 60 days of SMA crossings"
    engine.stop(close_positions=True)
    assert all(p["size"] == 0 for p in fake_bybit.book.positions.values())
    intents = {i.client_order_id: i for i in journal.intents()}
    assert set(fake_bybit.book.links) <= set(intents)          # every order on Bybit was journaled first
    assert all(i.mode == "LIVE" and i.status == "filled" for cid, i in intents.items() if cid in fake_bybit.book.links)
    trades = journal.closed_trades("LIVE")
    assert trades and len(trades) == len(engine.recent_trades)
    # the journal's round trips, net of fees, are what the Bybit wallet gained or lost
    assert fake_bybit.book.wallet - 1000.0 == pytest.approx(sum(t.pnl for t in trades), abs=1e-6)
    journal.close()


def test_replay_hands_over_to_live_data_when_bybit_comes_back(tmp_path, fake_bybit, monkeypatch):
    import bot.engine.loop as loop
    from self_test.fakes.bybit_server import Fault

    monkeypatch.setattr(loop, "LIVE_PROBE_SECONDS", 0.3)
    fake_bybit.set_klines("BTCUSDT", "D", load_seed("BTCUSDT", "D"))
    fake_bybit.inject("/v5/market/kline", Fault(kind="http", status=502, count=1000))   # Bybit is down
    s = daily_settings(tmp_path, FALLBACK_SYMBOLS="BTCUSDT", TOP_PAIRS_COUNT=1, BYBIT_BASE_URL=fake_bybit.url,
                       REPLAY_CANDLE_SECONDS=0.05, BYBIT_TIMEOUT=1.0)
    engine = TradingEngine(s)
    q = engine.subscribe()
    engine.start("PAPER")
    wait_for(lambda: engine.candles_processed >= 3, timeout=30, message="replayed candles")
    assert engine.snapshot().data_source == DataSource.REPLAY
    fake_bybit.faults.clear()                                                          # Bybit is back
    wait_for(lambda: engine.snapshot().data_source == DataSource.LIVE, timeout=30, message="LIVE data")
    assert engine.restarts == 0 and not engine.replay
    engine.stop(close_positions=False)
    msgs = [e.message for e in drain(q) if e.kind == EventKind.DATA]
    assert any("cannot be reached" in m for m in msgs) and any("reachable again" in m for m in msgs)
    assert (tmp_path / "data" / "replay_state.db").exists() and (tmp_path / "data" / "state.db").exists()


def test_a_close_that_cannot_get_through_by_the_deadline_is_a_critical_alert_and_stays_unclosed(tmp_path, fake_bybit,
                                                                                              btc_hourly):
    """Bybit refuses every order for longer than CLOSE_DEADLINE_SECONDS: the close policy keeps at it
    until then, never sends twice, then raises a critical alert; the position stays open in the
    journal, marked unclosed, until a later close gets through."""
    from bot.exchange.bybit import BybitExchange
    from self_test.fakes.bybit_server import Fault

    keys = {"BYBIT_API_KEY": "testkey", "BYBIT_API_SECRET": "testsecret"}
    s = make_settings(tmp_path, environ=keys, BYBIT_BASE_URL=fake_bybit.url, BYBIT_TIMEOUT=1.0,
                      CLOSE_DEADLINE_SECONDS=1.0, ORDER_LOOKUP_SECONDS=0.5, STRATEGY="sma")
    fake_bybit.set_price("BTCUSDT", round(float(btc_hourly["close"].iloc[-1]), 1))
    ex = BybitExchange(s, retries=2, retry_delay=0.05)
    ex.create_order("BTCUSDT", "Buy", 0.002, client_order_id="held-1")
    journal = Journal(tmp_path / "state.db")
    engine = TradingEngine(s, exchange=ex, journal=journal)
    q = engine.subscribe()
    engine.prepare("LIVE", confirmed=True)
    fake_bybit.inject("/v5/order/create", Fault("http", status=502, count=10_000))
    assert engine.close_all("close-all") == []
    crit = [e for e in drain(q) if e.kind == EventKind.CRITICAL]
    assert len(crit) == 1 and "could not be closed" in crit[0].message and "still open" in crit[0].message
    assert journal.get_state("unclosed_BTCUSDT")["reason"] == "close-all"
    assert fake_bybit.book.orders and len(fake_bybit.book.orders) == 1          # nothing sent twice
    assert engine.snapshot().unclosed == ("BTCUSDT",)                           # the window shows it red
    again = TradingEngine(s, exchange=ex, journal=journal)                      # and after a restart
    again.prepare("LIVE", confirmed=True)
    assert list(again.state.unclosed) == ["BTCUSDT"] and "HTTP 502" in again.state.unclosed["BTCUSDT"]
    fake_bybit.faults.clear()
    assert len(engine.close_all("close-all")) == 1 and journal.get_state("unclosed_BTCUSDT") is None
    assert engine.snapshot().unclosed == ()
    engine.close()
    journal.close()
