"""TradingEngine: the background thread that runs the bot, one closed candle at a time.

Per closed candle of each active pair (`CandleStep.process_candle`, bot/engine/step.py; callable
without the thread so the backtester drives the very same code path):

    candle -> pair tail (bounded) -> exchange sees it (marks, stop-loss / take-profit)
    -> indicators + regime -> account limits (RiskManager.check_limits)
    -> StrategyContext -> strategy.decide -> RiskManager (approve / resize / veto)
    -> TradeExecutor -> fills -> TradeBook -> journal -> events -> learner -> snapshot

The thread (`start`) adds what only a running bot needs (`Session`, bot/engine/loop.py): the
market feed (Bybit LIVE, or REPLAY of recorded real candles when Bybit cannot be reached,
labelled so everywhere), recovery before the first trade, hot-pair rotation, promotion checks,
commands from other threads (manual orders, close), and an in-process restart with backoff after
a critical error. The UI reads `snapshot()` and the queue from `subscribe()`; nothing it calls
waits on the engine thread.

This class is the facade: it owns the state (`EngineState`), builds the parts (`Components`) and
the step for a mode, and runs sessions on its thread. What it knows lives in `state`.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from bot.engine.commands import EngineCommands, run_now
from bot.engine.components import (
    Components,
    EngineJournal,
    GivenParts,
    Journals,
    build_components,
    durable,
)
from bot.engine.engine_state import EngineState, unclosed_in
from bot.engine.loop import FeedChooser, Session, SwitchSession, finish, seed_book
from bot.engine.promotion import PromotionWatch, SwitchToLive
from bot.engine.snapshot import EngineSnapshot, EngineStatus, build_snapshot
from bot.engine.state import ChartData, PairState, TradeBook
from bot.engine.step import CandleStep, ManualOrderResult
from bot.errors import BotError, ConfigError
from bot.events import Event, EventBus, EventKind
from bot.strategies.base import LearningStrategy
from bot.types import Candle, ClosedTrade, DataSource, Mode

if TYPE_CHECKING:
    from bot.engine.snapshot import CriterionProgress
    from bot.exchange.base import Exchange
    from bot.market.feeds import MarketFeed
    from bot.market.top_pairs import PairManager
    from bot.strategies.base import Strategy
    from config import Settings

__all__ = ["TradingEngine", "ManualOrderResult", "ChartData", "LiveTradingRefused"]

log = logging.getLogger("bot.engine")

T = TypeVar("T")


class LiveTradingRefused(BotError):
    """Live trading was asked for without keys or without the user's stored consent."""


class TradingEngine:
    """The bot: start it, stop it, pause it, look at it. See the module docstring for the loop."""

    CONSENT_KEY = "live_consent"

    def __init__(self, settings: Settings, *, strategy: Strategy | str | None = None, bus: EventBus | None = None,
                 market: MarketFeed | None = None, exchange: Exchange | None = None,
                 journal: EngineJournal | None = None, pairs: PairManager | None = None,
                 force_replay: bool = False, clock: Callable[[], float] = time.time) -> None:
        """`strategy`: a name ("dqn", "analyst", "sma") or a strategy object; default STRATEGY.
        `market`, `exchange`, `journal`, `pairs` (a PairManager): given parts are used as they are;
        missing ones are built from the settings when the engine starts. `force_replay`: do not
        ask Bybit for market data, replay recorded candles (the CLI's --replay)."""
        self.settings = settings
        self.bus = bus or EventBus()
        self.clock = clock
        self.given = GivenParts(strategy=strategy, market=market, exchange=exchange)
        self.journals = Journals(settings, journal)
        self._followed: set[int] = set()     # journals that write this bus's events into `events`
        self.state = EngineState(training=bool(settings.TRAINING_ENABLED))
        self.force_replay = force_replay
        self.c: Components | None = None        # the parts of the current mode (None until prepared)
        self.step: CandleStep | None = None     # the step over those parts
        self._pairs = pairs
        self._feeds = FeedChooser(settings, self.bus, given=market)
        self._commands = EngineCommands()
        self._snap_lock = threading.Lock()
        self._snapshot = EngineSnapshot(strategy=self._strategy_name())
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._close_on_stop = False
        self._restart_times: deque[float] = deque()

    # ============================================================================================
    # what the engine knows (its state), as the callers read it
    @property
    def mode(self) -> Mode:
        return self.state.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.state.mode = Mode(value)

    @property
    def replay(self) -> bool:
        """The session replays recorded candles (its own journal and wallet). Set it before
        `prepare` to drive a replay by hand (the paper exchange then fills at candle times)."""
        return self.state.replay

    @replay.setter
    def replay(self, value: bool) -> None:
        self.state.replay = bool(value)

    @property
    def pairs(self) -> dict[str, PairState]:
        return self.state.pairs

    @property
    def recent_trades(self) -> deque[ClosedTrade]:
        return self.state.recent_trades

    @property
    def candles_processed(self) -> int:
        return self.state.candles_processed

    @property
    def active_pairs(self) -> tuple[str, ...]:
        return self.state.active_pairs

    @property
    def restarts(self) -> int:
        return self.state.restarts

    @property
    def promotion(self) -> tuple[CriterionProgress, ...]:
        return self.state.promotion

    # ============================================================================================
    # life
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def prepare(self, mode: str = "PAPER", *, confirmed: bool = False) -> Components:
        """Build the parts and the step without starting the thread. The backtester calls
        `prepare("BACKTEST")` (in-memory journal, paper exchange that does not persist) and then
        `process_candle`. `confirmed`: LIVE for an action the user confirmed just now
        (`close-all --live`), without the standing consent trading needs."""
        mode = mode.upper()
        if mode not in ("PAPER", "LIVE", "BACKTEST"):
            raise ConfigError(f"engine mode {mode!r} is not known; allowed: PAPER, LIVE, BACKTEST")
        if mode == "LIVE" and not confirmed:
            self._check_live_allowed()
        st = self.state
        st.mode = Mode(mode)
        c = build_components(self.settings, mode, given=self.given,
                             journal=self.journals.for_session(mode, replay=st.replay),
                             pair_manager=self._pair_manager(), replay=st.replay, bus=self.bus,
                             market_clock=self.market_clock)
        record = durable(c.journal)
        if record is not None and id(record) not in self._followed:
            follow = getattr(record, "follow", None)   # the SQLite journal: every event into `events`
            if callable(follow):
                follow(self.bus)
                self._followed.add(id(record))
        st.book = TradeBook(mode="PAPER" if mode == "BACKTEST" else mode)
        st.unclosed = unclosed_in(record)
        self.c = c
        self.step = CandleStep(self.settings, c, st, self.bus, clock=self.clock)
        if isinstance(c.strategy, LearningStrategy):
            c.strategy.training = st.training
        if c.strategy_note:
            self.bus.emit(EventKind.INFO, c.strategy_note, level="WARNING")
        return c

    def start(self, mode: str = "PAPER") -> None:
        """Start the engine thread in PAPER or LIVE. LIVE needs keys and stored consent."""
        if self.running:
            raise RuntimeError("the engine is already running; stop it first")
        mode = mode.upper()
        if mode not in ("PAPER", "LIVE"):
            raise ConfigError(f"engine mode {mode!r} is not known; allowed: PAPER, LIVE")
        if mode == "LIVE":
            self._check_live_allowed()
        self.state.mode = Mode(mode)
        self._stop_evt.clear()
        self.state.paused.clear()
        self._close_on_stop = False
        self._set_status(EngineStatus.STARTING)
        self._thread = threading.Thread(target=self._thread_main, name="engine", daemon=True)
        self._thread.start()

    def stop(self, close_positions: bool, timeout: float = 30.0) -> None:
        """Stop the loop. `close_positions`: market-close everything first; otherwise the journal
        records which positions were left open (their stops stay with them)."""
        self._close_on_stop = bool(close_positions)
        self._stop_evt.set()
        if self.c is not None and self.c.market is not None:
            self.c.market.close()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                log.error("engine thread did not stop within %.0f s", timeout)
                return
            # The thread had already ended by itself (a replay ran out): honour close_positions now.
            if close_positions and self.c is not None and any(p.size > 0 for p in self.c.exchange.get_positions()):
                self._finish(True)
        elif t is None and self.c is not None:   # driven synchronously (backtest, tests): finish here
            self._finish(close_positions)
        self._thread = None

    def close(self) -> None:
        """Close the journals the engine opened itself (state.db, replay_state.db); a given journal
        stays the caller's. Call it after `stop`, when the engine is done for good."""
        if self.running:
            raise RuntimeError("the engine is running; stop it before closing its journals")
        self.journals.close()

    def pause(self) -> None:
        """No new decisions; candles still come in and positions keep their stops."""
        self.state.paused.set()
        self._set_status(EngineStatus.PAUSED)
        self.bus.emit(EventKind.MODE, "engine paused: no new decisions")

    def resume(self) -> None:
        self.state.paused.clear()
        self._set_status(EngineStatus.RUNNING if self.running else self.state.status)
        self.bus.emit(EventKind.MODE, "engine resumed")

    def set_training(self, on: bool) -> None:
        self.state.training = bool(on)
        strat = self.c.strategy if self.c else None
        if isinstance(strat, LearningStrategy):
            learner = strat
            self._call_on_engine(lambda _step: setattr(learner, "training", self.state.training))
        self.bus.emit(EventKind.INFO, f"online training {'on' if on else 'off'}")
        self._publish_snapshot()

    def subscribe(self) -> queue.Queue[Event]:
        return self.bus.subscribe()

    def snapshot(self) -> EngineSnapshot:
        with self._snap_lock:
            return self._snapshot

    def session_journal(self) -> EngineJournal | None:
        """The journal the running session writes (the window's Lessons tab reads it); None when stopped."""
        return self.c.journal if self.running and self.c is not None else None

    # -- live consent ----------------------------------------------------------------------------
    def give_live_consent(self, *, gate_unmet: tuple[str, ...] = ()) -> None:
        """The user agreed, once, that the bot may trade real money; stored in the journal.
        `gate_unmet`: the promotion criteria not met when the user overrode the gate (typed
        confirmation); journaled with the consent and in the list of overrides."""
        record = durable(self.journals.record())
        if record is None:
            raise ConfigError("live consent is kept in the paper record's journal; this engine was given an "
                              "in-memory journal")
        given: dict[str, object] = {"given_ms": int(self.clock() * 1000), "gate_passed": not gate_unmet}
        if gate_unmet:
            given["gate_override"] = list(gate_unmet)
            overrides = list(record.get_state("live_gate_overrides", []) or [])
            record.set_state("live_gate_overrides", [*overrides, given])
        record.set_state(self.CONSENT_KEY, given)
        if gate_unmet:
            self.bus.emit(EventKind.PROMOTION, "live-trading consent stored as a GATE OVERRIDE (unmet: "
                          f"{', '.join(gate_unmet)})", level="WARNING")
        else:
            self.bus.emit(EventKind.PROMOTION, "live-trading consent stored in the journal")

    def has_live_consent(self) -> bool:
        record = durable(self.journals.record())
        return bool(record is not None and record.get_state(self.CONSENT_KEY))

    def _check_live_allowed(self) -> None:
        if not self.settings.has_bybit_keys:
            raise LiveTradingRefused("live trading needs BYBIT_API_KEY and BYBIT_API_SECRET in the environment "
                                     "or .env")
        if not self.has_live_consent():
            raise LiveTradingRefused("live trading needs the user's consent first (the confirmation in "
                                     "`python -m bot live` or in the window)")
        if self._strategy_name() == "dqn":
            from bot.safety.live_gate import dqn_live_refusal

            why = dqn_live_refusal(self.settings)
            if why:
                raise LiveTradingRefused(why)

    # ============================================================================================
    # the synchronous path, and commands from other threads
    def process_candle(self, candle: Candle) -> None:
        """Everything one closed candle causes, on the calling thread (prepares BACKTEST if needed)."""
        step = self.step if self.step is not None else self._prepared("BACKTEST")
        step.process_candle(candle)

    def close_all(self, reason: str = "close-all") -> list[ClosedTrade]:
        """Market-close every open position on the calling thread; the round trips it closed.
        Positions the trade book does not know yet (a persisted wallet, adopted ones) enter it
        first, so each exit makes a proper round trip."""
        step = self._prepared(self.state.mode)
        seed_book(self.state.book, step.parts.exchange, durable(step.parts.journal))
        closed = step.close_all(reason)
        self._publish_snapshot()   # what is left open (and unclosed) shows now, running or not
        return closed

    def submit_manual_order(self, symbol: str, side: str, usdt: float) -> cf.Future[ManualOrderResult]:
        """A person's order, through the same risk checks and executor as the bot's. The future
        holds a `ManualOrderResult`: filled, or refused with the reason."""
        return self._call_on_engine(lambda step: step.manual_order(symbol.upper(), side, float(usdt)))

    def submit_close_position(self, symbol: str) -> cf.Future[ManualOrderResult]:
        return self._call_on_engine(lambda step: step.manual_close(symbol.upper()))

    def chart_data(self, symbol: str, n: int = 300) -> ChartData | None:
        """A frozen copy of what the price chart needs."""
        ps = self.state.pairs.get(symbol.upper())
        if ps is None or len(ps) == 0 or self.c is None:
            return None
        snap = self.snapshot()
        pos = next((p for p in snap.positions if p.symbol == symbol.upper()), None)
        return ps.chart_copy(n, pos, snap.data_source)

    def market_clock(self) -> float:
        """Seconds since the epoch as the market sees it: the close of the last candle when
        replaying or backtesting (so paper fills carry candle times), else the wall clock."""
        return self.state.market_time(self.clock())

    def _pair_manager(self) -> PairManager:
        """The given pair manager, else one built from the settings once (its ranking outlives sessions)."""
        if self._pairs is None:
            from bot.market.top_pairs import PairManager
            self._pairs = PairManager(self.settings)
        return self._pairs

    def _prepared(self, mode: str) -> CandleStep:
        if self.step is None:
            self.prepare(mode)
        assert self.step is not None
        return self.step

    def _call_on_engine(self, fn: Callable[[CandleStep], T]) -> cf.Future[T]:
        """Run `fn(step)` on the engine thread (or here, when no thread runs); its result in a future."""
        if self.running and threading.current_thread() is not self._thread:
            return self._commands.put(lambda: fn(self._prepared(self.state.mode)))
        return run_now(lambda: fn(self._prepared(self.state.mode)))

    # ============================================================================================
    # the thread: restart policy around sessions
    def _thread_main(self) -> None:
        st = self.state
        while not self._stop_evt.is_set():
            try:
                self._open_session().run()
                break
            except (SwitchToLive, SwitchSession):
                # promotion to LIVE, or Bybit is back after a REPLAY: the next session builds its parts
                self._drop_parts()
                continue
            except Exception as exc:  # a critical error ends the session; we decide whether to restart
                why = f"{type(exc).__name__}: {exc}"
                st.errors_seen.append(why)
                log.critical("engine session ended by %s", why, exc_info=exc)
                now = time.monotonic()
                while self._restart_times and now - self._restart_times[0] > 3600:
                    self._restart_times.popleft()
                if len(self._restart_times) >= self.settings.RESTART_MAX_PER_HOUR:
                    self.bus.emit(EventKind.CRITICAL, f"engine stopped after {len(self._restart_times)} restarts "
                                  f"within an hour; last error: {why}", level="CRITICAL")
                    self._set_status(EngineStatus.ERROR)
                    return
                delay = self.settings.RESTART_BACKOFF_SECONDS * 2 ** len(self._restart_times)
                self._restart_times.append(now)
                st.restarts += 1
                self._set_status(EngineStatus.RESTARTING)
                self.bus.emit(EventKind.RESTART, f"engine restarting in {delay:.0f} s (restart {st.restarts}) "
                              f"after: {why}", level="ERROR", reason=why)
                if self._stop_evt.wait(delay):
                    break
                self._drop_parts()   # rebuild every part: a broken client must not survive the restart
        if self.c is not None:
            try:
                self._finish(self._close_on_stop)
            except Exception:
                log.exception("engine: failed while stopping")
            self._close_streams()
        self._set_status(EngineStatus.STOPPED)

    def _drop_parts(self) -> None:
        """Forget the session's parts; a feed the engine chose itself is closed (its WebSocket with it)."""
        if self.c is not None and self.c.market is not None and self.c.market is not self.given.market:
            self.c.market.close()
        self._close_streams()
        self.c = self.step = None

    def _close_streams(self) -> None:
        """The exchange's private streams (a live session's) end with the session's parts."""
        close = getattr(self.c.exchange, "close_stream", None) if self.c is not None else None
        if callable(close):
            close()

    def _open_session(self) -> Session:
        """A new session: pairs ranked, then the market chosen for them, then the parts built
        (in that order: a replay gets its own journal and wallet)."""
        st = self.state
        st.new_session()
        ranking = self._pair_manager().refresh(force=True)
        st.pair_scores = ranking.scores
        market = self._feeds.choose(st.mode, list(ranking.symbols), force_replay=self.force_replay)
        st.replay = market.source == DataSource.REPLAY
        if self.c is None or self.c.exchange.mode != ("LIVE" if st.mode == "LIVE" else "PAPER"):
            self.prepare(st.mode)
        step = self._prepared(st.mode)
        step.parts.market = market
        promotion = PromotionWatch(self.settings, st, self.bus, journals=self.journals, consent=self.has_live_consent)
        return Session(self.settings, st, step, self.bus, ranking=ranking, feeds=self._feeds, promotion=promotion,
                       stop=self._stop_evt, commands=self._commands, publish=self._publish_snapshot,
                       probe_live=st.replay and st.mode == "PAPER" and not self.force_replay
                       and self.given.market is None, clock=self.clock)

    def _finish(self, close_positions: bool) -> None:
        if self.step is None:
            return
        finish(self.step, close_positions=close_positions, clock=self.clock)
        self._publish_snapshot()

    # ============================================================================================
    # the snapshot
    def _strategy_name(self) -> str:
        if self.c is not None:
            return str(self.c.strategy.name)
        given = self.given.strategy
        if given is None:
            return str(self.settings.STRATEGY)
        return given if isinstance(given, str) else str(given.name or self.settings.STRATEGY)

    def _set_status(self, status: EngineStatus) -> None:
        self.state.status = status
        self._publish_snapshot()

    def _publish_snapshot(self) -> None:
        try:
            snap = build_snapshot(self.state, self.c, strategy=self._strategy_name(),
                                  now_ms=int(time.time() * 1000))
        except BotError as exc:  # the exchange may be unreachable: keep the last good snapshot
            log.warning("snapshot not refreshed: %s", exc)
            return
        with self._snap_lock:
            self._snapshot = snap
