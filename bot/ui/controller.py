"""The controller: what the buttons do, and how the engine's state reaches the widgets.

Everything here runs on the Tk thread and returns at once. Work that may block (engine start and
stop, orders, the live balance, saving prefs) goes to the `CommandRunner` and comes back as a
future polled by the `tick`; the engine's state arrives as snapshots read by the
`SnapshotPoller`, events from the engine's queue, and log lines from the log handler.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.engine.snapshot import EngineSnapshot
from bot.events import EventKind
from bot.ui.dialogs import CANCEL, CLOSE_ALL, Dialogs
from bot.ui.history import SessionHistory
from bot.ui.lessons_panel import LESSONS_TAB, LessonsKeeper
from bot.ui.mode_choice import ModeChoice
from bot.ui.orders_panel import describe_result, parse_usdt
from bot.ui.prefs import UiPrefs, save_prefs
from bot.ui.status_bar import RED
from bot.ui.workers import CommandRunner, SnapshotPoller, StallMeter, TkTimer

if TYPE_CHECKING:
    from bot.engine.app import App
    from bot.engine.past import PastRecord
    from bot.engine.trading_engine import TradingEngine

__all__ = ["Controller"]

log = logging.getLogger("bot.ui")

STOP_TIMEOUT_S = 30.0  # how long a stop may wait for the engine thread

_ALERT_KINDS = {EventKind.ERROR, EventKind.CRITICAL, EventKind.RESTART, EventKind.CIRCUIT,
                EventKind.ORDER_FAILED, EventKind.DATA, EventKind.MODE, EventKind.PROMOTION}


class Controller(ModeChoice):
    """The window's logic (the Paper / Live choice and the record before Start: `ModeChoice`)."""

    def __init__(self, root: Any, settings: Any, view: Any, *, dialogs: Dialogs,
                 app_factory: Callable[[], App], prefs: UiPrefs, prefs_file: Any,
                 tick_ms: int = 100, chart_interval: float = 1.0) -> None:
        from bot.ui.charts import ChartRenderer

        self.root = root
        self.settings = settings
        self.view = view
        self.dialogs = dialogs
        self.prefs = prefs
        self.prefs_file = prefs_file
        self.tick_ms = tick_ms
        self.app: App | None = None     # the engine and its notifier, once assembled
        self.events: queue.Queue | None = None
        self.selected_mode = "PAPER"
        self.pair = prefs.pair
        self._pair_chosen = False       # the user picked a pair this session: keep it
        self._pending: list[tuple[cf.Future, Callable[[cf.Future], None]]] = []
        self._shown_snapshot: EngineSnapshot | None = None
        self.past: PastRecord | None = None   # the record shown before Start (journal + wallet)
        self._was_running = False
        self._closing = False
        self._destroyed = False
        self._tick_timer = TkTimer(root, self._tick, tick_ms)
        self._close_guard: str | None = None
        self.history = SessionHistory()
        self.commands = CommandRunner()
        self.poller = SnapshotPoller(lambda: self.engine)
        self.renderer = ChartRenderer(history=self.history, engine=lambda: self.engine, interval=chart_interval)
        self.stall = StallMeter(root)
        view.build_charts(self.renderer)
        self.lessons = LessonsKeeper(view.lessons, settings, engine=lambda: self.engine, track=self._track,
                                     visible=lambda: self.renderer.visible == LESSONS_TAB)
        self._wire()
        self.commands_busy = False
        self._load_app(app_factory)

    # ------------------------------------------------------------------------------------------
    # wiring and life
    def _wire(self) -> None:
        v = self.view
        v.controls.on_start_stop = self.start_stop
        v.controls.on_pause = self.pause_resume
        v.controls.on_mode = self.choose_mode
        v.controls.on_training = self.set_training
        v.controls.on_pair = self.choose_pair
        v.charts.on_pair = self.choose_pair
        v.charts.on_tab = self._tab_changed
        v.orders.on_order = self.manual_order
        v.orders.on_close = self.close_position
        self.root.protocol("WM_DELETE_WINDOW", self.request_close)
        v.charts.select_tab(self.prefs.tab)
        self.renderer.visible = v.charts.current_tab()
        if self.pair:
            v.charts.show_pair(self.pair)

    def start(self) -> None:
        """Begin polling; the window is alive from here on."""
        self.renderer.start()
        self.poller.start()
        self.stall.start()
        self._tick()

    @property
    def engine(self) -> TradingEngine | None:
        return self.app.engine if self.app is not None else None

    def _load_app(self, factory: Callable[[], App]) -> None:
        self.view.controls.set_running(False, busy=True)
        self.view.status.set_message("loading the engine ...")

        def done(fut: cf.Future) -> None:
            try:
                self.app = fut.result()
            except Exception as exc:
                log.error("the engine could not be loaded: %s", exc, exc_info=exc)
                self.view.status.set_state("Error", RED)
                self.view.status.set_message(f"engine failed to load: {exc}", error=True)
                self.dialogs.error("The engine could not be loaded", str(exc))
                return
            self.events = self.app.engine.subscribe()
            self.view.controls.set_running(False)
            self.view.status.set_state("Stopped")
            self.view.status.set_message("ready: press Start Bot (paper trading)")
            self.poller.kick()
            self.load_past()

        self._run(factory, done)

    def _run(self, fn: Callable[[], Any], done: Callable[[cf.Future], None]) -> cf.Future:
        fut = self.commands.submit(fn)
        self._pending.append((fut, done))
        return fut

    def _track(self, fut: cf.Future, done: Callable[[cf.Future], None]) -> None:
        self._pending.append((fut, done))

    # ------------------------------------------------------------------------------------------
    # the tick: everything the engine said since last time, painted
    def _tick(self) -> None:
        if self._destroyed:
            return
        for step in (self.view.log_panel.drain, self.view.charts.paint_results, self._poll_futures,
                     self._drain_events, self._show_snapshot, self.view.status.tick_clock, self.lessons.tick):
            if self._destroyed:  # a command's result may have closed the window
                return
            try:
                step()
            except Exception:
                log.exception("the window's update step %s failed; it keeps running", step.__name__)
        if not self._destroyed:
            self._tick_timer.schedule()

    def _poll_futures(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        still = []
        for fut, done in pending:  # callbacks may queue new work: it lands in the fresh list
            if fut.done():
                try:
                    done(fut)
                except Exception:
                    log.exception("handling the result of a command failed")
            else:
                still.append((fut, done))
        self._pending = still + self._pending

    def _drain_events(self, limit: int = 200) -> None:
        if self.events is None:
            return
        for _ in range(limit):
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return
            self.lessons.on_event(ev)
            if ev.kind in _ALERT_KINDS or ev.level in ("WARNING", "ERROR", "CRITICAL"):
                bad = ev.level in ("ERROR", "CRITICAL") or ev.kind in (EventKind.CRITICAL, EventKind.ERROR)
                prefix = "engine restarted: " if ev.kind == EventKind.RESTART else ""
                self.view.status.set_message(prefix + ev.message, error=bad)
            if ev.kind in (EventKind.TRADE, EventKind.STOP_LOSS, EventKind.TAKE_PROFIT):
                self.poller.kick()

    def _show_snapshot(self) -> None:
        snap = self.poller.latest
        running = bool(self.engine is not None and self.engine.running)
        if running != self._was_running:
            self._was_running = running
            if not self.commands_busy:
                self.view.controls.set_running(running)
        if snap is None or snap is self._shown_snapshot:
            return
        self._shown_snapshot = snap
        v = self.view
        v.status.update_from(snap, running=running)
        # Stopped: the record of the selected mode, unless the snapshot is of that mode's wallet.
        past = self.past if not running and self.past is not None and (
            snap.equity == 0 or self.past.mode != snap.mode) else None
        if not running:
            v.status.set_mode(self.selected_mode)
        if past is not None:   # before Start: the wallet it will trade, from its record
            v.status.show_money(past.equity, past.balance)
        v.controls.update_from(snap, running=running)
        v.orders.show_positions(*((past.positions, past.unclosed) if past is not None
                                  else (snap.positions, snap.unclosed)))
        v.orders.show_trades(past.trades if past is not None else snap.recent_trades)
        symbols = self._symbols(snap)
        v.orders.set_symbols(symbols)
        v.charts.set_pairs(symbols)
        if symbols and (not self.pair or (not self._pair_chosen and self.pair not in symbols)):
            self.choose_pair(snap.active_pairs[0] if snap.active_pairs else symbols[0], by_user=False)
        if self.history.record(snap):
            self.renderer.wake()

    def _symbols(self, snap: EngineSnapshot) -> list[str]:
        out: list[str] = []
        held = self.past.positions if self.past is not None else ()
        for s in (*snap.active_pairs, *(p for p, _ in snap.pair_scores), *(p.symbol for p in snap.positions),
                  *(p.symbol for p in held), *self.settings.FALLBACK_SYMBOLS):
            if s not in out:
                out.append(s)
        return out

    # ------------------------------------------------------------------------------------------
    # commands
    def _busy(self, busy: bool, text: str = "") -> None:
        self.commands_busy = busy
        running = bool(self.engine is not None and self.engine.running)
        self.view.controls.set_running(running, busy=busy)
        if text:
            self.view.status.set_message(text)

    def start_stop(self) -> None:
        if self.engine is None or self.commands_busy:
            return
        if self.engine.running:
            self._ask_stop()
            return
        mode = self.selected_mode
        self.history.new_session()
        self._busy(True, f"starting in {mode} ...")

        def done(fut: cf.Future) -> None:
            self._busy(False)
            exc = fut.exception()
            if exc is not None:
                log.error("the bot could not start: %s", exc)
                self.view.status.set_message(f"could not start: {exc}", error=True)
                self.dialogs.error("The bot could not start", str(exc))
            else:
                self.view.status.set_message(f"bot started ({mode})")
            self.poller.kick()

        app = self.app
        self._run(lambda: app.start(mode), done)

    def pause_resume(self) -> None:
        """Pause: no new decisions (candles still come in, stops still work); Resume: carry on."""
        if self.engine is None or not self.engine.running or self.commands_busy:
            return
        snap = self.poller.latest
        paused = snap is not None and snap.status == "Paused"
        self._run(self.engine.resume if paused else self.engine.pause,
                  lambda fut: (fut.result(), self.poller.kick()))

    def _ask_stop(self) -> None:
        snap = self.poller.latest
        n = len(snap.positions) if snap is not None else 0
        live = snap is not None and snap.mode == "LIVE"
        where = "on Bybit with real money" if live else "in the paper wallet"
        choice = self.dialogs.ask_stop(
            f"Stop the bot. {n} position(s) are open {where}.\n\nKeep them open (their stop-loss and "
            "take-profit stay in place), or close all of them now at market?")
        if choice == CANCEL:
            return
        self.stop_engine(close_positions=choice == CLOSE_ALL)

    def stop_engine(self, *, close_positions: bool, then: Callable[[], None] | None = None,
                    for_good: bool = False) -> None:
        """Stop the bot on the command thread; `for_good` (the window closes): shut the app down,
        its notifier and journals too."""
        app = self.app
        if app is None:
            return
        self._busy(True, "stopping: closing all positions ..." if close_positions else "stopping ...")

        def done(fut: cf.Future) -> None:
            self._busy(False)
            exc = fut.exception()
            if exc is not None:
                log.error("stopping the bot failed: %s", exc)
                self.view.status.set_message(f"stop failed: {exc}", error=True)
            else:
                self.view.status.set_message("bot stopped" + (", all positions closed" if close_positions else ""))
            self.poller.kick()
            if then is not None:
                then()

        if for_good:
            self._run(lambda: app.shutdown(close_positions=close_positions, timeout=STOP_TIMEOUT_S), done)
        else:
            self._run(lambda: app.stop(close_positions=close_positions, timeout=STOP_TIMEOUT_S), done)

    def set_training(self, on: bool) -> None:
        if self.engine is None:
            return
        self._run(lambda: self.engine.set_training(on), lambda fut: (fut.result(), self.poller.kick()))

    def choose_pair(self, symbol: str, *, by_user: bool = True) -> None:
        if not symbol:
            return
        self._pair_chosen = self._pair_chosen or by_user
        self.pair = symbol
        self.view.charts.show_pair(symbol)
        self.view.controls.select_pair(symbol)
        if self.view.orders.symbol.get() != symbol and by_user:
            self.view.orders.symbol.set(symbol)

    def _tab_changed(self, name: str) -> None:
        self.prefs = self.prefs.with_changes(tab=name)

    def _order_sent(self, what: str) -> Callable[[cf.Future], None]:
        def sent(fut: cf.Future) -> None:
            try:
                engine_future = fut.result()
            except Exception as exc:
                self._order_done(what, exc=exc)
                return
            self._track(engine_future, lambda f: self._order_done(what, fut=f))
        return sent

    def _order_done(self, what: str, *, fut: cf.Future | None = None, exc: BaseException | None = None) -> None:
        self.view.orders.set_busy(False)
        if fut is not None:
            exc = fut.exception()
        if exc is not None:
            ok, text = False, f"{what} refused: {exc}"
        else:
            ok, text = describe_result(fut.result())
            text = f"{what}: {text}"
        (log.info if ok else log.warning)("manual %s", text)
        self.view.orders.show_result(text, ok=ok)
        self.poller.kick()

    def manual_order(self, symbol: str, side: str, amount: str) -> None:
        symbol = symbol.strip().upper()
        try:
            usdt = parse_usdt(amount)
            if not symbol:
                raise ValueError("choose a symbol first")
            if self.engine is None or not self.engine.running:
                raise ValueError("start the bot first: manual orders go through the running engine")
        except ValueError as exc:
            self.view.orders.show_result(str(exc), ok=False)
            return
        what = f"{side} {usdt:g} USDT {symbol}"
        self.view.orders.set_busy(True)
        self.view.orders.show_result(f"{what}: sent ...", ok=True)
        self._run(lambda: self.engine.submit_manual_order(symbol, side, usdt), self._order_sent(what))

    def close_position(self, symbol: str) -> None:
        symbol = symbol.strip().upper()
        if self.engine is None or not self.engine.running or not symbol:
            self.view.orders.show_result("start the bot and choose a symbol first", ok=False)
            return
        what = f"close {symbol}"
        self.view.orders.set_busy(True)
        self.view.orders.show_result(f"{what}: sent ...", ok=True)
        self._run(lambda: self.engine.submit_close_position(symbol), self._order_sent(what))

    # ------------------------------------------------------------------------------------------
    # closing the window
    def request_close(self) -> None:
        if self._closing:
            return
        running = self.engine is not None and self.engine.running
        close_positions = False
        if running:
            snap = self.poller.latest
            if snap is not None and snap.mode == "LIVE" and snap.positions:
                choice = self.dialogs.ask_close_window(
                    f"The bot is trading LIVE with {len(snap.positions)} open position(s).\n\nKeep them open on "
                    "Bybit (stop-loss and take-profit stay there), or close all of them now at market?")
                if choice == CANCEL:
                    return
                close_positions = choice == CLOSE_ALL
        self._closing = True
        self.prefs = self.prefs.with_changes(geometry=self.root.geometry(), pair=self.pair or "",
                                             tab=self.view.charts.current_tab())
        prefs = self.prefs
        self._run(lambda: save_prefs(self.prefs_file, prefs),
                  lambda f: f.exception() and log.warning("window preferences not saved: %s", f.exception()))
        if running:
            self.view.status.set_state("Stopping", RED)
            self.stop_engine(close_positions=close_positions, then=self._destroy, for_good=True)
            # If the engine thread never returns, the window still closes (the stop is logged).
            self._close_guard = self.root.after(int(STOP_TIMEOUT_S * 1000) + 5000, self._destroy)
        else:
            app = self.app
            self._run(lambda: app.shutdown() if app is not None else None, lambda f: self._destroy())

    def _destroy(self) -> None:
        if self._destroyed:
            return
        self._destroyed = True
        # The helper threads end before the widgets go: Tk objects must be released on this
        # thread (Tcl aborts the process if its interpreter is freed from another one).
        self.stall.stop()
        self.renderer.stop(timeout=2.0)
        self.poller.stop(timeout=1.0)
        self.commands.shutdown(timeout=1.0)
        self.lessons.stop()
        if self.events is not None and self.engine is not None:
            try:
                self.engine.bus.unsubscribe(self.events)
            except Exception:
                pass
        self._tick_timer.cancel()
        if self._close_guard is not None:
            try:
                self.root.after_cancel(self._close_guard)
            except Exception:
                pass
        log.info("window closed")
        try:
            self.root.destroy()
        except Exception:
            pass

