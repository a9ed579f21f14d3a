"""One engine session on its thread: start-up (parts, recovery, pairs, market, warm-up), the
loop over closed candles, periodic work (pair rotation, promotion, reconcile), and the finish.

Functions of the engine rather than methods so that `bot/engine/trading_engine.py` stays the readable public
face; each takes the `TradingEngine` as its first argument.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from bot.engine.promotion import PerformanceTracker, PromotionGate, promotion_action
from bot.engine.snapshot import EngineSnapshot, EngineStatus
from bot.engine.state import _OpenTrade
from bot.errors import BotError, NetworkError
from bot.events import EventKind
from bot.market.seed import SEED_FILES
from bot.types import Connection, DataSource, ms_to_iso

__all__ = ["run_session", "finish", "build_snapshot", "SwitchToLive", "SwitchSession"]

log = logging.getLogger("bot.engine.trading_engine")

REPLAY_CURSOR_KEY = "replay_cursor_"
LIVE_PROBE_SECONDS = 300.0   # while replaying because Bybit was down: how often to ask again
PROMOTION_EVERY_S = 60.0     # the gate reads the journal: once a minute is plenty
SNAPSHOT_EVERY_S = 0.25


def run_session(e: Any) -> None:
    """Start-up, then candles until stopped (or until a replay runs out)."""
    from bot.market.top_pairs import PairManager

    # A new session (first start, restart, or a change of data source) starts its pairs afresh.
    e.pairs.clear()
    e.last_prices.clear()
    e.last_candle_ms = e.last_close_ms = 0
    if e._pairs_arg is None:
        e._pairs_arg = PairManager(e.settings)
    ranking = e._pairs_arg.refresh(force=True)
    e.pair_scores = ranking.scores
    market = e._choose_market(list(ranking.symbols))
    e.replay = market.source == DataSource.REPLAY
    if e.c is None or e.c.exchange.mode != ("LIVE" if e.mode == "LIVE" else "PAPER"):
        e.prepare(e.mode)
    c = e.c
    c.market = market
    recover(e)
    open_syms = [p.symbol for p in c.exchange.get_positions() if p.size > 0]
    wanted = list(c.pair_manager.tracked(open_syms))
    symbols = market.symbols_available(wanted)
    if not symbols and market.source == DataSource.REPLAY:
        seeds = [s for (s, i) in SEED_FILES if i == market.interval]
        e.bus.emit(EventKind.DATA, f"REPLAY: none of {', '.join(wanted)} has recorded {market.interval} candles; "
                   f"replaying {', '.join(seeds) or 'nothing'} instead", level="WARNING")
        symbols = market.symbols_available(seeds)
    if not symbols:
        raise BotError(f"no market data for any of {', '.join(wanted)} at interval {market.interval}")
    missing = getattr(market, "missing", {})
    if missing:
        e.bus.emit(EventKind.DATA, f"REPLAY: no recorded candles for {', '.join(missing)}; not traded",
                   level="WARNING")
    e.active_pairs = tuple(s for s in symbols if s in ranking.symbols) or tuple(symbols)
    if e.replay and hasattr(market, "seek"):
        cursor = c.journal.get_state(REPLAY_CURSOR_KEY + market.interval) if hasattr(c.journal, "get_state") else None
        if cursor:
            market.seek(int(cursor))   # a restarted replay continues where it stopped, like its wallet
    seed_book(e)
    for s in symbols:
        e.pairs.pop(s, None)
        e._new_pair(s)        # warm-up from history, given at once
    e._set_status(EngineStatus.PAUSED if e._pause_evt.is_set() else EngineStatus.RUNNING)
    e.bus.emit(EventKind.MODE, f"{e.mode} session started: strategy {getattr(c.strategy, 'name', c.strategy)}, "
               f"{market.source} data for {', '.join(symbols)} ({market.interval}), equity "
               f"{c.exchange.get_balance().equity:.2f} USDT", mode=e.mode, source=market.source)
    loop(e, symbols)


def loop(e: Any, symbols: list[str]) -> None:
    c = e.c
    next_promo = time.monotonic()          # progress shown from the first loop on
    next_snap = 0.0
    next_reconcile = time.monotonic() + e.settings.RECONCILE_INTERVAL_SECONDS
    probe_live = e.replay and e.mode == "PAPER" and not e.force_replay and e._market_arg is None
    next_probe = time.monotonic() + LIVE_PROBE_SECONDS
    failures = 0
    while not e._stop_evt.is_set():
        e._drain_commands()
        if probe_live and time.monotonic() >= next_probe:
            next_probe = time.monotonic() + LIVE_PROBE_SECONDS
            back_to_live(e, symbols)
        try:
            candles = c.market.next_candles(symbols, timeout=0.2)
            if failures:
                e.bus.emit(EventKind.DATA, "LIVE market data from Bybit is back", source=c.market.source)
                c.market.connection = Connection.CONNECTED
            failures = 0
        except (NetworkError, BotError) as exc:
            failures += 1
            c.market.connection = Connection.RECONNECTING
            if failures == 1:
                e.bus.emit(EventKind.DATA, f"LIVE market data lost ({exc}); reconnecting", level="WARNING")
            e._handle_error(exc, "market data")
            e._stop_evt.wait(min(60.0, 2.0 ** min(failures, 6)))
            continue
        e.defer_learning = True
        for candle in candles:
            if candle.symbol not in e.pairs:
                continue
            try:
                e.process_candle(candle)
            except BotError as exc:
                e._handle_error(exc, f"{c.market.source} {candle.symbol} {ms_to_iso(candle.open_ms)}")
        e.flush_learning()
        now = time.monotonic()
        if candles:
            record_equity(e)
        if now >= next_promo:
            next_promo = now + PROMOTION_EVERY_S
            check_promotion(e)
        if c.pair_manager.due():
            symbols = rotate_pairs(e, symbols)
        if e.mode == "LIVE" and now >= next_reconcile:
            next_reconcile = now + e.settings.RECONCILE_INTERVAL_SECONDS
            reconcile(e)
        if candles or now >= next_snap:
            next_snap = now + SNAPSHOT_EVERY_S
            e._publish_snapshot()
        if getattr(c.market, "exhausted", False):
            e.bus.emit(EventKind.DATA, f"REPLAY finished: every recorded candle was played "
                       f"(last {ms_to_iso(e.last_candle_ms)}); stopping", source=DataSource.REPLAY)
            e._stop_evt.set()


def record_equity(e: Any) -> None:
    bal = e.c.exchange.get_balance()
    t = e.last_close_ms or int(e.clock() * 1000)
    e.equity_points.append((t, bal.equity))
    j = e.c.journal
    if hasattr(j, "record_equity"):
        j.record_equity(t, bal.equity, bal.wallet_balance, e.book.mode)
        e._equity_writes = getattr(e, "_equity_writes", 0) + 1
        if e.replay and e._equity_writes % 10 == 0:
            save_replay_cursor(e)


def save_replay_cursor(e: Any) -> None:
    """Where a restarted replay continues (every few candles and at the finish)."""
    j = e.c.journal
    if e.replay and e.last_candle_ms and hasattr(j, "set_state"):
        j.set_state(REPLAY_CURSOR_KEY + e.c.market.interval, e.last_candle_ms + 1)


def seed_book(e: Any) -> None:
    """Positions that exist at start-up (persisted paper wallet, adopted live ones) enter the
    trade book so their exit makes a proper round trip."""
    for p in e.c.exchange.get_positions():
        if p.size > 0 and p.symbol not in e.book.open:
            e.book.open[p.symbol] = _OpenTrade(p.side, p.size, p.entry_price, p.opened_ms, fees=p.fees,
                                               entry_notional=p.size * p.entry_price)


def recover(e: Any) -> None:
    """Restart protection before the first trade: agent checkpoint, intents, positions, orders."""
    from bot.engine import recovery

    agent = getattr(e.c.strategy, "agent", None)
    # Raises when recovery cannot finish: the bot must not trade on a state it does not know.
    recovery.recover(e.settings, exchange=e.c.exchange, journal=e.c.journal, bus=e.bus, agent=agent)


def reconcile(e: Any) -> None:
    """Live: positions closed outside the bot (by hand, liquidation, a server-side stop) are found."""
    from bot.engine.recovery import Reconciler

    if getattr(e, "_reconciler", None) is None:
        e._reconciler = Reconciler(e.settings, exchange=e.c.exchange, journal=e.c.journal, bus=e.bus)
    try:
        e._reconciler.run()
    except BotError as exc:
        e._handle_error(exc, "periodic reconcile")
    gone = [s for s in e.book.open if e._position(s) is None]
    for s in gone:          # closed outside the bot: the reconciler journaled the trade
        e.book.open.pop(s, None)
    seed_book(e)


def rotate_pairs(e: Any, symbols: list[str]) -> list[str]:
    """Hourly: new hot pairs join (after a warm-up); a pair that left stays while it holds a position."""
    c = e.c
    ranking = c.pair_manager.refresh()
    e.pair_scores = ranking.scores
    open_syms = [p.symbol for p in c.exchange.get_positions() if p.size > 0]
    wanted = c.market.symbols_available(c.pair_manager.tracked(open_syms))
    if not wanted:
        return symbols
    hot = tuple(s for s in wanted if s in ranking.symbols)
    e.active_pairs = hot or e.active_pairs
    for s in wanted:
        if s not in e.pairs:
            e._new_pair(s)
    dropped = [s for s in symbols if s not in wanted]
    for s in dropped:
        e.pairs.pop(s, None)
    if set(wanted) != set(symbols):
        e.bus.emit(EventKind.INFO, f"hot pairs ({ranking.source}): {', '.join(e.active_pairs)}"
                   + (f"; managed until closed: {', '.join(s for s in wanted if s not in hot)}"
                      if set(wanted) - set(hot) else "") + (f"; dropped {', '.join(dropped)}" if dropped else ""))
    return list(wanted)


def check_promotion(e: Any) -> None:
    """Progress toward live; act when every criterion is met (never without keys and consent).

    A REPLAY session shows the progress of the real paper record (the main journal) but adds
    nothing to it and never acts on it: replayed history is a backtest, not a paper record."""
    if e.mode != "PAPER":
        return
    tracker = PerformanceTracker(e.settings)
    prices = {s: ps.frame() for s, ps in e.pairs.items()}
    if e.replay:
        main = Path(e.settings.data_dir) / "state.db"
        record = (tracker.from_journal(e._main_journal(), mode="PAPER", prices=prices)
                  if e._journal_arg is not None or main.exists() else tracker.measure([], []))
    else:
        if not hasattr(e.c.journal, "closed_trades"):
            return
        record = tracker.from_journal(e.c.journal, mode="PAPER", prices=prices)
    result = PromotionGate(e.settings).evaluate(record)
    e.promotion = result.criteria
    e.metrics = {k: v for k, v in record.as_dict().items() if k not in ("start_ms", "end_ms")}
    if not result.passed or e.replay:
        return
    action, why = promotion_action(result, auto_live=e.settings.AUTO_LIVE, has_keys=e.settings.has_bybit_keys,
                                   has_consent=e.has_live_consent())
    key = f"promotion_{action}_alerted"
    if action == "ready" and not getattr(e, key, False):
        setattr(e, key, True)
        e.bus.emit(EventKind.PROMOTION, f"READY FOR LIVE: {why}", level="WARNING")
    elif action == "live":
        e.bus.emit(EventKind.PROMOTION, f"GOING LIVE: {why}", level="CRITICAL")
        e.mode = "LIVE"
        e.c = None            # the next session builds the Bybit exchange
        raise SwitchToLive()


def back_to_live(e: Any, symbols: list[str]) -> None:
    """Bybit answers again: end the REPLAY session so the next one trades LIVE data with the paper
    wallet. The replay's own wallet and journal keep its positions for a later replay."""
    from bot.market.feeds import probe_bybit

    feed, _why = probe_bybit(e.settings, (list(e.active_pairs) or symbols)[0])
    if feed is None:
        return
    save_replay_cursor(e)
    e.bus.emit(EventKind.DATA, "Bybit is reachable again: leaving REPLAY for LIVE market data (replayed "
               "positions stay in the replay wallet)", level="WARNING", source=DataSource.LIVE)
    e.replay = False
    e.c = None
    raise SwitchSession()


class SwitchSession(BotError):
    """Ends the session so the thread starts the next one (data source changed); not an error."""


class SwitchToLive(BotError):
    """Ends the paper session so the thread starts the live one (not an error, not a restart)."""


def finish(e: Any, close_positions: bool) -> None:
    c = e.c
    if c is None:
        return
    try:
        positions = [p for p in c.exchange.get_positions() if p.size > 0]
    except BotError as exc:
        log.error("stop: cannot read positions: %s", exc)
        positions = []
    if close_positions and positions:
        trades = e.close_all("close-all")
        left = [p for p in c.exchange.get_positions() if p.size > 0]
        e.bus.emit(EventKind.MODE, f"engine stopped; closed {len(trades)} position(s) at market"
                   + (f"; STILL OPEN: {', '.join(p.symbol for p in left)}" if left else ""),
                   level="ERROR" if left else "INFO")
    elif positions:
        desc = ", ".join(f"{p.symbol} {p.side} {p.size:g} @ {p.entry_price:.6g} stop {p.stop_loss}"
                         for p in positions)
        if hasattr(c.journal, "upsert_position"):
            for p in positions:
                c.journal.upsert_position(p, mode=e.book.mode)
            c.journal.set_state("positions_left_open", {"time_ms": int(e.clock() * 1000),
                                                        "positions": [p.symbol for p in positions]})
        e.bus.emit(EventKind.MODE, f"engine stopped; {len(positions)} position(s) left open: {desc}",
                   level="WARNING", left_open=[p.symbol for p in positions])
    else:
        e.bus.emit(EventKind.MODE, "engine stopped; no open positions")
    if hasattr(c.exchange, "save"):
        c.exchange.save()
    if c.market is not None:
        save_replay_cursor(e)
    if e.learner_stats.get("steps"):
        e._checkpoint()     # what was learned this session survives the stop
    e._publish_snapshot()


def build_snapshot(e: Any) -> EngineSnapshot:
    c = e.c
    strat = c.strategy if c else None
    name = getattr(strat, "name", None) or (e._strategy_arg if isinstance(e._strategy_arg, str) else
                                            e.settings.STRATEGY)
    base = dict(mode=e.mode, status=e.status, strategy=str(name), training=e.training, restarts=e.restarts,
                errors=tuple(e.errors_seen), time_ms=int(time.time() * 1000), promotion=tuple(e.promotion),
                active_pairs=tuple(e.active_pairs), pair_scores=tuple(e.pair_scores),
                last_prices=dict(e.last_prices), last_candle_ms=e.last_candle_ms,
                recent_trades=tuple(list(e.recent_trades)[-50:]))
    if c is None:
        return EngineSnapshot(**base)
    bal = c.exchange.get_balance()
    market = c.market
    metrics = dict(e.metrics)
    st = e.session_stats
    metrics.update(candles=e.candles_processed, vetoes=c.risk.vetoes, halted=c.risk.halted_reason,
                   session_trades=st["trades"], session_net_pnl=st["net"], session_fees=st["fees"],
                   session_win_rate=st["wins"] / st["trades"] if st["trades"] else 0.0)
    return EngineSnapshot(
        **base, data_source=getattr(market, "source", DataSource.REPLAY),
        connection=getattr(market, "connection", Connection.OFFLINE_REPLAY),
        equity=bal.equity, balance=bal.wallet_balance, available=bal.available,
        positions=tuple(p for p in c.exchange.get_positions() if p.size > 0), metrics=metrics,
        epsilon=float(getattr(strat, "epsilon", 0.0) or 0.0),
        learner=dict(e.learner_stats),
        circuit=c.errors.state if c.errors is not None else "closed")
