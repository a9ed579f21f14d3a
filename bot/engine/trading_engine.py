"""TradingEngine: the background thread that runs the bot, one closed candle at a time.

Per closed candle of each active pair (`process_candle`, in bot/engine/step.py; callable without
the thread so the backtester drives the very same code path):

    candle -> pair tail (bounded) -> exchange sees it (marks, stop-loss / take-profit)
    -> indicators + regime -> account limits (RiskManager.check_limits)
    -> StrategyContext -> strategy.decide -> RiskManager (approve / resize / veto)
    -> TradeExecutor -> fills -> TradeBook -> journal -> events -> learner -> snapshot

The thread (`start`) adds what only a running bot needs: the market feed (Bybit LIVE, or REPLAY
of recorded real candles when Bybit cannot be reached, labelled so everywhere), recovery before
the first trade, hot-pair rotation, promotion checks, commands from other threads (manual
orders, close), and an in-process restart with backoff after a critical error. The UI reads
`snapshot()` and the queue from `subscribe()`; nothing it calls waits on the engine thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
from collections import deque
from typing import Any, Callable

from bot.engine.components import Components, build_components
from bot.engine.loop import SwitchSession, SwitchToLive
from bot.engine.snapshot import EngineSnapshot, EngineStatus
from bot.engine.state import ChartData, PairState, TradeBook
from bot.engine.step import CandleSteps, ManualOrderResult
from bot.errors import BotError, ConfigError, NetworkError
from bot.events import Event, EventBus, EventKind
from bot.market.feeds import MarketFeed, ReplayMarket, probe_bybit
from bot.types import ClosedTrade, DataSource, Position

__all__ = ["TradingEngine", "ManualOrderResult", "ChartData", "LiveTradingRefused"]

log = logging.getLogger("bot.engine.trading_engine")


class LiveTradingRefused(BotError):
    """Live trading was asked for without keys or without the user's stored consent."""


class TradingEngine(CandleSteps):
    """The bot: start it, stop it, pause it, look at it. See the module docstring for the loop."""

    CONSENT_KEY = "live_consent"

    def __init__(self, settings: Any, *, strategy: Any = None, bus: EventBus | None = None,
                 market: MarketFeed | None = None, exchange: Any = None, journal: Any = None,
                 notifier: Any = None, pairs: Any = None, clock: Callable[[], float] = time.time) -> None:
        """`strategy`: a name ("dqn", "analyst", "sma") or a strategy object; default STRATEGY.
        `market`, `exchange`, `journal`, `pairs` (a PairManager): given parts are used as they are;
        missing ones are built from the settings when the engine starts."""
        self.settings = settings
        self.bus = bus or EventBus()
        self.clock = clock
        self._strategy_arg = strategy
        self._market_arg = market
        self._exchange_arg = exchange
        self._journal_arg = journal          # given by the caller: used for every mode
        self._own_journal: Any = None        # historical_data/state.db, opened when first needed
        self._replay_journal: Any = None     # historical_data/replay_state.db for REPLAY sessions
        self._pairs_arg = pairs
        self.notifier = notifier
        self.c: Components | None = None
        self.mode = "PAPER"
        self.training = bool(settings.TRAINING_ENABLED)
        self.pairs: dict[str, PairState] = {}
        self.active_pairs: tuple[str, ...] = ()
        self.pair_scores: tuple[tuple[str, float], ...] = ()
        self.book = TradeBook()
        self.recent_trades: deque[ClosedTrade] = deque(maxlen=200)
        self.equity_points: deque[tuple[int, float]] = deque(maxlen=5000)
        self.errors_seen: deque[str] = deque(maxlen=20)
        self.last_prices: dict[str, float] = {}
        self.last_candle_ms = 0
        self.last_close_ms = 0
        self.candles_processed = 0
        self.restarts = 0
        self.status = EngineStatus.STOPPED
        self.promotion: tuple = ()
        self.metrics: dict[str, Any] = {}
        self.learner_stats: dict[str, float] = {}
        self.session_stats = {"trades": 0, "wins": 0, "net": 0.0, "fees": 0.0}   # since this engine was built
        self.defer_learning = False      # the loop learns after each batch's orders (flush_learning)
        self._pending_learn: list = []
        self._snap_lock = threading.Lock()
        self._snapshot = EngineSnapshot(strategy=str(strategy if isinstance(strategy, str) else
                                                     getattr(strategy, "name", None) or settings.STRATEGY))
        self._cmds: queue.Queue[tuple[Callable[[], Any], cf.Future]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._pause_evt = threading.Event()
        self._close_on_stop = False
        self._restart_times: deque[float] = deque()
        self.replay = False          # the session replays recorded candles (its own journal and wallet)
        self.force_replay = False   # the CLI's --replay: skip the Bybit probe, replay recorded candles
        if notifier is not None and getattr(notifier, "bus", self.bus) is None:
            notifier.bus = self.bus   # the caller starts and stops the notifier; it listens on our bus

    # ============================================================================================
    # life
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def prepare(self, mode: str = "PAPER") -> Components:
        """Build the parts without starting the thread. The backtester calls `prepare("BACKTEST")`
        (in-memory journal, paper exchange that does not persist) and then `process_candle`."""
        mode = mode.upper()
        if mode not in ("PAPER", "LIVE", "BACKTEST"):
            raise ConfigError(f"engine mode {mode!r} is not known; allowed: PAPER, LIVE, BACKTEST")
        if mode == "LIVE":
            self._check_live_allowed()
        self.mode = mode
        self.c = build_components(self, mode)
        self.book = TradeBook(mode="PAPER" if mode == "BACKTEST" else mode)
        from bot.agent.reward_system import RewardSystem
        self.reward = RewardSystem.from_settings(self.settings)
        if hasattr(self.c.strategy, "training"):
            self.c.strategy.training = self.training
        if self.c.strategy_note:
            self.bus.emit(EventKind.INFO, self.c.strategy_note, level="WARNING")
        return self.c

    def start(self, mode: str = "PAPER") -> None:
        """Start the engine thread in PAPER or LIVE. LIVE needs keys and stored consent."""
        if self.running:
            raise RuntimeError("the engine is already running; stop it first")
        mode = mode.upper()
        if mode not in ("PAPER", "LIVE"):
            raise ConfigError(f"engine mode {mode!r} is not known; allowed: PAPER, LIVE")
        if mode == "LIVE":
            self._check_live_allowed()
        self.mode = mode
        self._stop_evt.clear()
        self._pause_evt.clear()
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

    def pause(self) -> None:
        """No new decisions; candles still come in and positions keep their stops."""
        self._pause_evt.set()
        self._set_status(EngineStatus.PAUSED)
        self.bus.emit(EventKind.MODE, "engine paused: no new decisions")

    def resume(self) -> None:
        self._pause_evt.clear()
        self._set_status(EngineStatus.RUNNING if self.running else self.status)
        self.bus.emit(EventKind.MODE, "engine resumed")

    def set_training(self, on: bool) -> None:
        self.training = bool(on)
        strat = self.c.strategy if self.c else None
        if strat is not None and hasattr(strat, "training"):
            self._call_on_engine(lambda: setattr(strat, "training", self.training))
        self.bus.emit(EventKind.INFO, f"online training {'on' if on else 'off'}")
        self._publish_snapshot()

    def subscribe(self) -> "queue.Queue[Event]":
        return self.bus.subscribe()

    def snapshot(self) -> EngineSnapshot:
        with self._snap_lock:
            return self._snapshot

    # -- live consent ----------------------------------------------------------------------------
    def give_live_consent(self) -> None:
        """The user agreed, once, that the bot may trade real money; stored in the journal."""
        self._main_journal().set_state(self.CONSENT_KEY, {"given_ms": int(self.clock() * 1000)})
        self.bus.emit(EventKind.PROMOTION, "live-trading consent stored in the journal")

    def has_live_consent(self) -> bool:
        j = self._main_journal()
        return bool(hasattr(j, "get_state") and j.get_state(self.CONSENT_KEY))

    def _main_journal(self) -> Any:
        """The journal of the real paper/live record (consent lives here, never in a replay's)."""
        if self._journal_arg is not None:
            return self._journal_arg
        if self._own_journal is None:
            from bot.journal.store import Journal
            self._own_journal = Journal.for_settings(self.settings)
        return self._own_journal

    def _check_live_allowed(self) -> None:
        if not self.settings.has_bybit_keys:
            raise LiveTradingRefused("live trading needs BYBIT_API_KEY and BYBIT_API_SECRET in the environment "
                                     "or .env")
        if not self.has_live_consent():
            raise LiveTradingRefused("live trading needs the user's consent first (the confirmation in "
                                     "`python -m bot live` or in the window)")

    # ============================================================================================
    # commands from other threads
    def _call_on_engine(self, fn: Callable[[], Any]) -> cf.Future:
        """Run `fn` on the engine thread (or here, when no thread runs); its result in a future."""
        fut: cf.Future = cf.Future()
        if self.running and threading.current_thread() is not self._thread:
            self._cmds.put((fn, fut))
            return fut
        fut.set_running_or_notify_cancel()
        try:
            if self.c is None:
                self.prepare(self.mode)
            fut.set_result(fn())
        except Exception as exc:  # the caller reads it from the future
            fut.set_exception(exc)
        return fut

    def _drain_commands(self) -> None:
        while True:
            try:
                fn, fut = self._cmds.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except Exception as exc:
                fut.set_exception(exc)
            self._publish_snapshot()

    def submit_manual_order(self, symbol: str, side: str, usdt: float) -> cf.Future:
        """A person's order, through the same risk checks and executor as the bot's. The future
        holds a `ManualOrderResult`: filled, or refused with the reason."""
        return self._call_on_engine(lambda: self._manual_order(symbol.upper(), side, float(usdt)))

    def submit_close_position(self, symbol: str) -> cf.Future:
        return self._call_on_engine(lambda: self._manual_close(symbol.upper()))

    def chart_data(self, symbol: str, n: int = 300) -> ChartData | None:
        """A frozen copy of what the price chart needs."""
        ps = self.pairs.get(symbol.upper())
        if ps is None or len(ps) == 0 or self.c is None:
            return None
        snap = self.snapshot()
        pos = next((p for p in snap.positions if p.symbol == symbol.upper()), None)
        return ps.chart_copy(n, pos, snap.data_source)

    # ============================================================================================
    # the thread: restart policy around sessions
    def _thread_main(self) -> None:
        while not self._stop_evt.is_set():
            try:
                self._session()
                break
            except (SwitchToLive, SwitchSession):
                continue              # promotion to LIVE, or Bybit is back after a REPLAY: next session
            except Exception as exc:  # a critical error ends the session; we decide whether to restart
                why = f"{type(exc).__name__}: {exc}"
                self.errors_seen.append(why)
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
                self.restarts += 1
                self._set_status(EngineStatus.RESTARTING)
                self.bus.emit(EventKind.RESTART, f"engine restarting in {delay:.0f} s (restart {self.restarts}) "
                              f"after: {why}", level="ERROR", reason=why)
                if self._stop_evt.wait(delay):
                    break
                self.c = None      # rebuild every part: a broken client must not survive the restart
        if self.c is not None:
            try:
                self._finish(self._close_on_stop)
            except Exception:
                log.exception("engine: failed while stopping")
        self._set_status(EngineStatus.STOPPED)

    def _session(self) -> None:
        from bot.engine.loop import run_session
        run_session(self)

    def _finish(self, close_positions: bool) -> None:
        from bot.engine.loop import finish
        finish(self, close_positions)

    # ============================================================================================
    # helpers shared by the step and the loop
    def _position(self, symbol: str) -> Position | None:
        for p in self.c.exchange.get_positions():
            if p.symbol == symbol and p.size > 0:
                return p
        return None

    def market_clock(self) -> float:
        """Seconds since the epoch as the market sees it: the close of the last candle when
        replaying or backtesting (so paper fills carry candle times), else the wall clock."""
        if self.last_close_ms and (self.mode == "BACKTEST" or self.replay):
            return self.last_close_ms / 1000.0
        return self.clock()

    def _source(self) -> str:
        m = self.c.market if self.c else None
        return getattr(m, "source", DataSource.REPLAY) if m is not None else DataSource.REPLAY

    def _set_status(self, status: str) -> None:
        self.status = status
        self._publish_snapshot()

    def _publish_snapshot(self) -> None:
        from bot.engine.loop import build_snapshot
        try:
            snap = build_snapshot(self)
        except BotError as exc:  # the exchange may be unreachable: keep the last good snapshot
            log.warning("snapshot not refreshed: %s", exc)
            return
        with self._snap_lock:
            self._snapshot = snap

    def _choose_market(self, symbols: list[str]) -> MarketFeed:
        """Bybit when it answers; otherwise say so and replay recorded real candles."""
        if self._market_arg is not None:
            return self._market_arg
        if self.mode == "PAPER" and not self.force_replay:
            feed, why = probe_bybit(self.settings, symbols[0])
            if feed is not None:
                self.bus.emit(EventKind.DATA, f"LIVE market data from Bybit for {', '.join(symbols)}")
                return feed
            self.bus.emit(EventKind.DATA, f"Bybit cannot be reached ({why}); REPLAY of recorded real candles",
                          level="WARNING", source=DataSource.REPLAY)
        elif self.mode == "LIVE":
            feed, why = probe_bybit(self.settings, symbols[0])
            if feed is None:
                raise NetworkError(f"live trading needs Bybit market data: {why}")
            return feed
        return ReplayMarket(self.settings, symbols=symbols)

