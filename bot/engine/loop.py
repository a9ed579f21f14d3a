"""One engine session on its thread: start-up (recovery, pairs, warm-up), the loop over closed
candles, periodic work (pair rotation, promotion, reconcile), and the finish.

`FeedChooser` picks the session's market feed, `Session` runs it, `finish` ends it (the engine
calls it after a session, and after a synchronous run). A session ends by returning (stopped,
or the replay ran out) or by raising: `SwitchSession` / `SwitchToLive` to start the next one,
anything else for the engine's restart policy.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.engine.account_stream import AccountStream
from bot.engine.commands import EngineCommands
from bot.engine.components import Components, durable
from bot.engine.engine_state import EngineState
from bot.engine.promotion import PromotionWatch
from bot.engine.recovery import journal_row, protected
from bot.engine.snapshot import EngineStatus
from bot.engine.state import TradeBook
from bot.engine.step import CandleStep
from bot.errors import BotError, NetworkError
from bot.events import EventBus, EventKind
from bot.exchange.ledger import replay_fills
from bot.market.feeds import BybitMarket, MarketFeed, ReplayMarket, probe_bybit
from bot.market.seed import SEED_FILES
from bot.types import Connection, DataSource, Mode, Position, ms_to_iso

if TYPE_CHECKING:
    from bot.engine.recovery import Reconciler
    from bot.exchange.base import Exchange
    from bot.journal.base import Journal
    from bot.market.top_pairs import Ranking
    from config import Settings

__all__ = ["FeedChooser", "Session", "SwitchSession", "finish", "seed_book", "save_replay_cursor"]

log = logging.getLogger("bot.engine")

REPLAY_CURSOR_KEY = "replay_cursor_"
LIVE_PROBE_SECONDS = 300.0   # while replaying because Bybit was down: how often to ask again
PROMOTION_EVERY_S = 60.0     # the gate reads the journal: once a minute is plenty
SNAPSHOT_EVERY_S = 0.25


class SwitchSession(BotError):
    """Ends the session so the thread starts the next one (data source changed); not an error."""


class FeedChooser:
    """Where a session's candles come from: the feed the caller gave; else Bybit when it answers;
    else, in paper, recorded real candles replayed (and said so). LIVE never replays."""

    def __init__(self, settings: Settings, bus: EventBus, *, given: MarketFeed | None) -> None:
        self.settings = settings
        self.bus = bus
        self.given = given

    def choose(self, mode: str, symbols: list[str], *, force_replay: bool) -> MarketFeed:
        """`force_replay`: do not ask Bybit (the CLI's --replay)."""
        if self.given is not None:
            if isinstance(self.given, BybitMarket) and self.given.bus is None:
                self.given.bus = self.bus          # a LIVE feed's stream changes go on the engine's bus
            return self.given
        if mode == "PAPER" and not force_replay:
            feed, why = probe_bybit(self.settings, symbols[0], bus=self.bus)
            if feed is not None:
                self.bus.emit(EventKind.DATA, f"LIVE market data from Bybit for {', '.join(symbols)}")
                return feed
            self.bus.emit(EventKind.DATA, f"Bybit cannot be reached ({why}); REPLAY of recorded real candles",
                          level="WARNING", source=DataSource.REPLAY)
        elif mode == "LIVE":
            feed, why = probe_bybit(self.settings, symbols[0], bus=self.bus)
            if feed is None:
                raise NetworkError(f"live trading needs Bybit market data: {why}")
            return feed
        return ReplayMarket(self.settings, symbols=symbols)

    def live_again(self, symbol: str) -> bool:
        """Does Bybit answer again (asked while replaying because it did not)?"""
        return probe_bybit(self.settings, symbol)[0] is not None


class Session:
    """Start-up, then candles until stopped (or until a replay runs out).

    `step` holds the session's parts (`step.parts`, their market chosen); `ranking` is the hot-pair
    ranking the feed was chosen for; `stop` ends the loop; `commands` are drained between batches;
    `publish` refreshes the engine's snapshot; `probe_live`: ask Bybit every LIVE_PROBE_SECONDS
    whether it is back (a paper session replaying because it was not)."""

    def __init__(self, settings: Settings, state: EngineState, step: CandleStep, bus: EventBus, *,
                 ranking: Ranking, feeds: FeedChooser, promotion: PromotionWatch, stop: threading.Event,
                 commands: EngineCommands, publish: Callable[[], None], probe_live: bool,
                 clock: Callable[[], float]) -> None:
        if step.parts.market is None:
            raise ValueError("a session needs its market feed chosen (step.parts.market)")
        self.settings = settings
        self.state = state
        self.step = step
        self.parts: Components = step.parts
        self.market: MarketFeed = step.parts.market
        self.bus = bus
        self.ranking = ranking
        self.feeds = feeds
        self.promotion = promotion
        self.stop = stop
        self.commands = commands
        self.publish = publish
        self.probe_live = probe_live
        self.clock = clock
        self._reconciler: Reconciler | None = None
        self._equity_writes = 0
        self.account: AccountStream | None = None

    def run(self) -> None:
        from bot.engine import recovery

        st, c, market = self.state, self.parts, self.market
        agent = self.step.learner.agent if self.step.learner is not None else None
        if st.mode == "LIVE":   # fills and outside changes pushed by the private streams (Bybit)
            self.account = AccountStream(c.exchange, self.bus, refresh_seconds=self.settings.ACCOUNT_REFRESH_SECONDS)
        # Raises when recovery cannot finish: the bot must not trade on a state it does not know.
        recovery.recover(self.settings, exchange=c.exchange, journal=c.journal, bus=self.bus, agent=agent)
        open_syms = [p.symbol for p in c.exchange.get_positions() if p.size > 0]
        wanted = list(c.pair_manager.tracked(open_syms))
        symbols = market.symbols_available(wanted)
        if not symbols and market.source == DataSource.REPLAY:
            seeds = [s for (s, i) in SEED_FILES if i == market.interval]
            self.bus.emit(EventKind.DATA, f"REPLAY: none of {', '.join(wanted)} has recorded {market.interval} "
                          f"candles; replaying {', '.join(seeds) or 'nothing'} instead", level="WARNING")
            symbols = market.symbols_available(seeds)
        if not symbols:
            raise BotError(f"no market data for any of {', '.join(wanted)} at interval {market.interval}")
        if isinstance(market, ReplayMarket) and market.missing:
            self.bus.emit(EventKind.DATA, f"REPLAY: no recorded candles for {', '.join(market.missing)}; not traded",
                          level="WARNING")
        st.active_pairs = tuple(s for s in symbols if s in self.ranking.symbols) or tuple(symbols)
        record = durable(c.journal)
        if st.replay and isinstance(market, ReplayMarket) and record is not None:
            cursor = record.get_state(REPLAY_CURSOR_KEY + market.interval)
            if cursor:
                market.seek(int(cursor))   # a restarted replay continues where it stopped, like its wallet
        seed_book(st.book, c.exchange, durable(c.journal))
        for s in symbols:
            st.pairs.pop(s, None)
            self.step.new_pair(s)        # warm-up from history, given at once
        st.status = EngineStatus.PAUSED if st.paused.is_set() else EngineStatus.RUNNING
        self.publish()
        self.bus.emit(EventKind.MODE, f"{st.mode} session started: strategy {c.strategy.name}, "
                      f"{market.source} data for {', '.join(symbols)} ({market.interval}), equity "
                      f"{c.exchange.get_balance().equity:.2f} USDT", mode=st.mode, source=market.source)
        # What is alive now (modules, torch, the agent, the pairs' history) lives as long as the
        # session: the garbage collector need not walk it again. Unfrozen, a full collection over
        # those ~200,000 objects now and then stalled a batch of candles for ~0.1 s.
        gc.freeze()
        self._loop(symbols)

    def _loop(self, symbols: list[str]) -> None:
        st, c, market, step = self.state, self.parts, self.market, self.step
        next_promo = time.monotonic()          # progress shown from the first loop on
        next_snap = 0.0
        next_reconcile = time.monotonic() + self.settings.RECONCILE_INTERVAL_SECONDS
        next_probe = time.monotonic() + LIVE_PROBE_SECONDS
        failures = 0
        while not self.stop.is_set():
            if self.commands.drain():
                self.publish()
            if self.probe_live and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + LIVE_PROBE_SECONDS
                self._back_to_live(symbols)
            try:
                candles = market.next_candles(symbols, timeout=0.2)
                if failures:
                    self.bus.emit(EventKind.DATA, "LIVE market data from Bybit is back", source=market.source)
                    market.connection = Connection.CONNECTED
                failures = 0
            except (NetworkError, BotError) as exc:
                failures += 1
                market.connection = Connection.RECONNECTING
                if failures == 1:
                    self.bus.emit(EventKind.DATA, f"LIVE market data lost ({exc}); reconnecting", level="WARNING")
                step.report_error(exc, "market data")
                self.stop.wait(min(60.0, 2.0 ** min(failures, 6)))
                continue
            step.defer_learning = True
            try:   # every pair whose candle closed, decided together (one forward pass of the agent)
                step.process_batch([candle for candle in candles if candle.symbol in st.pairs])
            except BotError as exc:
                step.report_error(exc, f"{market.source} batch of {len(candles)} candles")
            step.flush_learning()
            now = time.monotonic()
            if candles:
                self._record_equity()
            if now >= next_promo:
                next_promo = now + PROMOTION_EVERY_S
                self.promotion.check(c.journal)
            if c.pair_manager.due():
                symbols = self.rotate_pairs(symbols)
            outside = self.account.outside_changes() if self.account is not None else set()
            if outside:
                log.info("LIVE account changed outside the bot (%s): reconciling now", ", ".join(sorted(outside)))
            if st.mode == "LIVE" and (now >= next_reconcile or outside):
                next_reconcile = now + self.settings.RECONCILE_INTERVAL_SECONDS
                self._reconcile()
            if candles or now >= next_snap:
                next_snap = now + SNAPSHOT_EVERY_S
                self.publish()
            if isinstance(market, ReplayMarket) and market.exhausted:
                self.bus.emit(EventKind.DATA, f"REPLAY finished: every recorded candle was played "
                              f"(last {ms_to_iso(st.last_candle_ms)}); stopping", source=DataSource.REPLAY)
                self.stop.set()

    def _record_equity(self) -> None:
        st = self.state
        bal = self.parts.exchange.get_balance()
        t = st.last_close_ms or int(self.clock() * 1000)
        st.equity_points.append((t, bal.equity))
        record = durable(self.parts.journal)
        if record is not None:
            record.record_equity(t, bal.equity, bal.wallet_balance, st.book.mode)
            self._equity_writes += 1
            if st.replay and self._equity_writes % 10 == 0:
                save_replay_cursor(self.parts, st)

    def _reconcile(self) -> None:
        """Live: positions closed outside the bot (by hand, liquidation, a server-side stop) are found."""
        from bot.engine.recovery import Reconciler

        c, st = self.parts, self.state
        if self._reconciler is None:
            self._reconciler = Reconciler(self.settings, exchange=c.exchange, journal=c.journal, bus=self.bus)
        try:
            self._reconciler.run()
        except BotError as exc:
            self.step.report_error(exc, "periodic reconcile")
        gone = [s for s in st.book.open if self.step.position(s) is None]
        for s in gone:          # closed outside the bot: the reconciler journaled the trade
            st.book.open.pop(s, None)
        seed_book(st.book, c.exchange, durable(c.journal))

    def rotate_pairs(self, symbols: list[str]) -> list[str]:
        """Hourly: new hot pairs join (after a warm-up); a pair that left stays while it holds a position."""
        c, st = self.parts, self.state
        ranking = c.pair_manager.refresh()
        st.pair_scores = ranking.scores
        open_syms = [p.symbol for p in c.exchange.get_positions() if p.size > 0]
        wanted = self.market.symbols_available(c.pair_manager.tracked(open_syms))
        if not wanted:
            return symbols
        hot = tuple(s for s in wanted if s in ranking.symbols)
        st.active_pairs = hot or st.active_pairs
        for s in wanted:
            if s not in st.pairs:
                self.step.new_pair(s)
        dropped = [s for s in symbols if s not in wanted]
        for s in dropped:
            st.pairs.pop(s, None)
        if set(wanted) != set(symbols):
            self.bus.emit(EventKind.INFO, f"hot pairs ({ranking.source}): {', '.join(st.active_pairs)}"
                          + (f"; managed until closed: {', '.join(s for s in wanted if s not in hot)}"
                             if set(wanted) - set(hot) else "") + (f"; dropped {', '.join(dropped)}" if dropped else ""))
        return list(wanted)

    def _back_to_live(self, symbols: list[str]) -> None:
        """Bybit answers again: end the REPLAY session so the next one trades LIVE data with the paper
        wallet. The replay's own wallet and journal keep its positions for a later replay."""
        if not self.feeds.live_again((list(self.state.active_pairs) or symbols)[0]):
            return
        save_replay_cursor(self.parts, self.state)
        self.bus.emit(EventKind.DATA, "Bybit is reachable again: leaving REPLAY for LIVE market data (replayed "
                      "positions stay in the replay wallet)", level="WARNING", source=DataSource.LIVE)
        self.state.replay = False
        raise SwitchSession()


def seed_book(book: TradeBook, exchange: Exchange, journal: Journal | None = None) -> None:
    """Positions that exist at start-up (persisted paper wallet, adopted live ones) enter the
    trade book so their exit makes a proper round trip, with the costs the journal knows of
    (`journal_costs`: Bybit reports no fees on a position, so without them a round trip would
    leave out its entry fee)."""
    for p in exchange.get_positions():
        if p.size > 0 and p.symbol not in book.open:
            book.seed(journal_costs(p, journal, book.mode, dust=_dust(exchange, p.symbol))
                      if journal is not None else p)


def _dust(exchange: Exchange, symbol: str) -> float:
    """Spot: one quantity step (what a close leaves unsold); linear: 0."""
    inst = exchange.get_instrument(symbol)
    return float(inst.qty_step) if inst.category == "spot" else 0.0


def journal_costs(p: Position, journal: Journal, mode: str, *, dust: float = 0.0) -> Position:
    """`p` as the journal's own fills built it (average entry, every fee paid, open time) when
    they explain its side and size; else with the fees of the journal's position row; else as is."""
    if p.fees:
        return p                                   # the paper wallet keeps its fees itself
    ledger, _ = replay_fills(journal.fills(symbol=p.symbol, mode=Mode(mode)), mode=mode, dust=dust)
    mine = ledger.positions.get(p.symbol)
    if mine is not None and mine.side == p.side and abs(mine.size - p.size) <= max(1e-9, 1e-6 * p.size, dust):
        return replace(p, entry_price=mine.entry, fees=mine.fees, opened_ms=mine.opened_ms or p.opened_ms)
    row = next((q for q in journal.positions(Mode(mode)) if q.symbol == p.symbol and q.side == p.side), None)
    if row is not None and row.fees:
        return replace(p, fees=row.fees, opened_ms=row.opened_ms or p.opened_ms)
    return p


def save_replay_cursor(parts: Components, state: EngineState) -> None:
    """Where a restarted replay continues (every few candles and at the finish)."""
    record = durable(parts.journal)
    if state.replay and state.last_candle_ms and parts.market is not None and record is not None:
        record.set_state(REPLAY_CURSOR_KEY + parts.market.interval, state.last_candle_ms + 1)


def finish(step: CandleStep, *, close_positions: bool, clock: Callable[[], float]) -> None:
    """End of a run: close every position or journal which were left open (with their stops),
    save the paper wallet and the replay's place, and checkpoint what the agent learnt."""
    c, st, bus = step.parts, step.state, step.bus
    try:
        positions = [p for p in c.exchange.get_positions() if p.size > 0]
    except BotError as exc:
        log.error("stop: cannot read positions: %s", exc)
        positions = []
    if close_positions and positions:
        trades = step.close_all("close-all")
        left = [p for p in c.exchange.get_positions() if p.size > 0]
        bus.emit(EventKind.MODE, f"engine stopped; closed {len(trades)} position(s) at market"
                 + (f"; STILL OPEN: {', '.join(p.symbol for p in left)}" if left else ""),
                 level="ERROR" if left else "INFO")
    elif positions:
        desc = ", ".join(f"{p.symbol} {p.side} {p.size:g} @ {p.entry_price:.6g} stop {p.stop_loss}"
                         for p in positions)
        record = durable(c.journal)
        if record is not None:
            linear = step.settings.EXCHANGE_CATEGORY == "linear"
            for p in positions:   # left open with their stops: the journal's are never loosened here
                record.upsert_position(protected(p, journal_row(record, p.symbol, st.book.mode),
                                                 entry_from_exchange=linear), mode=st.book.mode)
            record.set_state("positions_left_open", {"time_ms": int(clock() * 1000),
                                                     "positions": [p.symbol for p in positions]})
        bus.emit(EventKind.MODE, f"engine stopped; {len(positions)} position(s) left open: {desc}",
                 level="WARNING", left_open=[p.symbol for p in positions])
    else:
        bus.emit(EventKind.MODE, "engine stopped; no open positions")
    from bot.exchange.sim import SimExchange

    if isinstance(c.exchange, SimExchange):
        c.exchange.save()
    if c.market is not None:
        save_replay_cursor(c, st)
    if step.learner is not None and "reward" in st.learner_stats:
        step.checkpoint()     # what was seen and learned this session (epsilon too) survives the stop
