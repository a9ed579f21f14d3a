"""Alerts to the phone over Telegram, without ever slowing the trading loop.

`TelegramNotifier` owns a thread with its own asyncio loop running python-telegram-bot's
plain `Bot`. Callers (`notify(text)`, or `on_event(event)` as an `EventBus` callback) only
put the text on a queue and return at once. The sender honours Telegram's flood control
(429 with `retry_after`), retries transient failures (network errors, time-outs) with
exponential backoff, drops a flood of identical error texts within `dedup_seconds` (and
says how many it dropped when the text comes back), and logs instead of raising when
Telegram is down. With no token or no chat id it is disabled and says so once. It only ever
messages `TELEGRAM_CHAT_ID`: no method takes a chat id.

Message formats (see `format_trade`, `format_event`):
`🟢 BUY BTCUSDT 0.0016 @ 61,234.50 · 100.00 USDT · PAPER` (🔴 for SELL), stop-loss,
take-profit, mode change, restart, reconcile, circuit breaker, and `🚨 CRITICAL ERROR 🚨`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from bot.alerts.formats import fmt_price, fmt_qty
from bot.events import Event, EventBus, EventKind
from bot.log_setup import redact

__all__ = ["TelegramNotifier", "format_trade", "format_event", "fmt_price", "fmt_qty"]

log = logging.getLogger(__name__)

_STOP = object()
_DEDUPE_KINDS = frozenset({EventKind.ERROR, EventKind.CRITICAL, EventKind.ORDER_FAILED, EventKind.CIRCUIT})


def format_trade(symbol: str, side: str, qty: float, price: float, mode: str, *,
                 notional: float | None = None, quote: str = "USDT") -> str:
    """`🟢 BUY BTCUSDT 0.0016 @ 61,234.50 · 100.00 USDT · PAPER` (🔴 for a sell)."""
    buy = side.lower() in ("buy", "long")
    value = abs(qty * price) if notional is None else notional
    return (f"{'🟢 BUY' if buy else '🔴 SELL'} {symbol} {fmt_qty(qty)} @ {fmt_price(price)} · "
            f"{value:,.2f} {quote} · {mode.upper()}")


def _exit_text(icon: str, label: str, ev: Event) -> str:
    d = ev.data
    if "symbol" in d and "price" in d:
        parts = [f"{icon} {label} {d['symbol']}"]
        if d.get("side"):
            parts[0] += f" {d['side']}"
        if d.get("qty") is not None:
            parts[0] += f" {fmt_qty(d['qty'])}"
        parts[0] += f" @ {fmt_price(d['price'])}"
        if d.get("pnl") is not None:
            parts.append(f"P&L {float(d['pnl']):+,.2f} USDT")
        if d.get("mode"):
            parts.append(str(d["mode"]).upper())
        return " · ".join(parts)
    return f"{icon} {label}: {ev.message}"


def format_event(ev: Event) -> str | None:
    """The Telegram text for an event, or None for kinds that stay in the log (info, vetoes, routine data)."""
    k, d = ev.kind, ev.data
    if k == EventKind.TRADE:
        if all(x in d for x in ("symbol", "side", "qty", "price")):
            return format_trade(d["symbol"], d["side"], float(d["qty"]), float(d["price"]), d.get("mode", ""),
                                notional=d.get("notional"))
        return ev.message
    if k == EventKind.STOP_LOSS:
        return _exit_text("🛑", "STOP-LOSS", ev)
    if k == EventKind.TAKE_PROFIT:
        return _exit_text("🎯", "TAKE-PROFIT", ev)
    if k == EventKind.CRITICAL:
        return ev.message if ev.message.startswith("🚨") else f"🚨 CRITICAL ERROR 🚨\n{ev.message}"
    prefixes = {EventKind.MODE: "🔁 MODE: ", EventKind.RESTART: "♻️ RESTART: ", EventKind.RECONCILE: "🔎 RECONCILE: ",
                EventKind.PROMOTION: "🏁 PROMOTION: ", EventKind.ORDER_FAILED: "❌ ORDER FAILED: ",
                EventKind.CIRCUIT: ""}
    if k in prefixes:
        return prefixes[k] + ev.message
    if k == EventKind.ERROR and ev.level in ("ERROR", "CRITICAL"):
        return f"⚠️ {ev.message}"
    if k == EventKind.DATA and (ev.level in ("WARNING", "ERROR", "CRITICAL") or d.get("alert")):
        return f"📡 {ev.message}"      # market data lost / back (a stream down, REST polling)
    return None


def _seconds(retry_after: Any) -> float:
    if isinstance(retry_after, dt.timedelta):
        return retry_after.total_seconds()
    return float(retry_after)


class TelegramNotifier:
    """Sends alerts from its own thread; `notify` and `on_event` never block and never raise."""

    def __init__(self, settings: Any, *, bus: EventBus | None = None, dedup_seconds: float = 60.0,
                 max_attempts: int = 5, backoff_seconds: float = 1.0, request_timeout: float = 10.0,
                 max_queue: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = settings.TELEGRAM_BOT_TOKEN
        self._chat_id = str(settings.TELEGRAM_CHAT_ID).strip()
        base = settings.TELEGRAM_BASE_URL.rstrip("/")
        self._base_url = (base if base.endswith("/bot") else base + "/bot") if base else ""
        self.enabled = bool(self._token and self._chat_id)
        self.bus = bus
        self.dedup_seconds = dedup_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.request_timeout = request_timeout
        self.max_queue = max_queue
        self.clock = clock
        self._q: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}   # text -> (first sent, suppressed since)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self._running = False
        self._bot: Any = None
        self._bad_token = False
        self._commands: Any = None        # TelegramCommands when commands are served (serve_commands)
        self._application: Any = None     # python-telegram-bot Application that long-polls for them
        self._poller: asyncio.Task | None = None
        self.commands_ready = threading.Event()   # set once command polling runs
        self.poll_timeout = 10.0
        # Counters for the UI and tests.
        self.sent = 0
        self.failed = 0
        self.suppressed = 0
        self.rate_limited = 0

    # -- life ------------------------------------------------------------------------------------
    def serve_commands(self, control: Any, *, confirm_seconds: float = 30.0, poll_timeout: float = 10.0) -> None:
        """Also answer commands from TELEGRAM_CHAT_ID (bot/alerts/commands.py) by long polling,
        on this notifier's thread and loop. Call before `start`."""
        from bot.alerts.commands import TelegramCommands

        if not self.enabled:
            return
        self._commands = TelegramCommands(control, self._chat_id, confirm_seconds=confirm_seconds)
        self.poll_timeout = poll_timeout

    @property
    def serving_commands(self) -> bool:
        return self._commands is not None

    def start(self) -> "TelegramNotifier":
        if not self.enabled:
            log.info("Telegram alerts are off (TELEGRAM_BOT_TOKEN or TELEGRAM_CHAT_ID is empty)")
            return self
        if self._thread is not None:
            return self
        self._running = True
        self._thread = threading.Thread(target=self._run, name="telegram-notifier", daemon=True)
        self._thread.start()
        self._ready.wait(5)
        if self.bus is not None:
            self.bus.add_callback(self.on_event)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to `timeout` seconds), then stop the thread."""
        if self._thread is None:
            return
        self._running = False
        self._q.put(_STOP)
        self._wakeup()
        self._thread.join(timeout)
        if self._thread.is_alive() and self._loop is not None and self._task is not None:
            log.warning("Telegram still busy after %.0f s; %d queued alert(s) dropped", timeout, self._q.qsize())
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:
                pass
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> "TelegramNotifier":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- producers (any thread) ------------------------------------------------------------------
    def notify(self, text: str, *, dedupe: bool = False) -> bool:
        """Queue `text` for the configured chat; True if queued. Never blocks, never raises."""
        try:
            if not self.enabled:
                return False
            if not self._running:
                log.warning("Telegram notifier not running; alert not sent: %s", redact(text))
                return False
            text = redact(text)
            if dedupe:
                text = self._dedupe(text)
                if text is None:
                    return False
            if self._q.qsize() >= self.max_queue:
                log.error("Telegram queue full (%d); alert dropped: %s", self.max_queue, text)
                self.failed += 1
                return False
            self._q.put_nowait(text)
            self._wakeup()
            return True
        except Exception:  # an alert must never take the trading loop down
            log.exception("could not queue a Telegram alert")
            return False

    def on_event(self, event: Event) -> None:
        """EventBus callback: the events worth a phone message are formatted and queued."""
        try:
            text = format_event(event)
        except Exception:
            log.exception("could not format %s event for Telegram", event.kind)
            text = event.message
        if text:
            self.notify(text, dedupe=event.kind in _DEDUPE_KINDS)

    def _dedupe(self, text: str) -> str | None:
        now = self.clock()
        with self._lock:
            first, dropped = self._seen.get(text, (None, 0))
            if first is not None and now - first < self.dedup_seconds:
                self._seen[text] = (first, dropped + 1)
                self.suppressed += 1
                return None
            self._seen[text] = (now, 0)
            if len(self._seen) > 500:  # forget the oldest texts
                for key in sorted(self._seen, key=lambda k: self._seen[k][0])[:250]:
                    del self._seen[key]
        return f"{text}\n(+{dropped} identical alerts suppressed)" if dropped else text

    def _wakeup(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop already closed
                pass

    # -- the sender thread -----------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._main())
            if self._commands is not None:
                self._poller = loop.create_task(self._serve_commands())
            self._ready.set()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("Telegram notifier thread failed")
        finally:
            try:
                loop.run_until_complete(self._stop_commands())
            except Exception:
                log.debug("Telegram command polling did not stop cleanly", exc_info=True)
            try:
                if self._bot is not None:
                    loop.run_until_complete(self._bot.shutdown())
            except Exception:
                log.debug("Telegram bot shutdown failed", exc_info=True)
            self._loop = None
            loop.close()

    async def _serve_commands(self) -> None:
        """Long-poll for commands; if Telegram cannot be reached, try again every 30 s."""
        from telegram.ext import ApplicationBuilder
        from telegram.request import HTTPXRequest

        delay = 1.0
        while self._running:
            try:
                t = self.request_timeout
                builder = (ApplicationBuilder().token(self._token)
                           .request(HTTPXRequest(connect_timeout=min(5.0, t), read_timeout=t, write_timeout=t,
                                                 pool_timeout=t))
                           .get_updates_request(HTTPXRequest(connect_timeout=min(5.0, t), read_timeout=t,
                                                             write_timeout=t, pool_timeout=t)))
                if self._base_url:
                    builder = builder.base_url(self._base_url)
                app = builder.build()
                self._commands.install(app)
                await app.initialize()
                self._application = app
                try:
                    await self._commands.set_menu(app.bot)
                except Exception as exc:
                    log.warning("Telegram: the command menu was not set (%s)", redact(str(exc)))
                await app.updater.start_polling(timeout=self.poll_timeout, drop_pending_updates=True)
                await app.start()
                self.commands_ready.set()
                log.info("Telegram commands on: /help in the chat lists them")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Telegram commands not available yet (%s: %s); retrying in %.0f s", type(exc).__name__,
                            redact(str(exc)), delay)
                await self._shutdown_application()
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def _shutdown_application(self) -> None:
        app, self._application = self._application, None
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def _stop_commands(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except (asyncio.CancelledError, Exception):
                pass
        if self._commands is not None:
            await self._commands.shutdown()
        await self._shutdown_application()

    async def _main(self) -> None:
        assert self._wake is not None
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                self._wake.clear()
                if self._q.empty():
                    await self._wake.wait()
                continue
            if item is _STOP:
                return
            await self._deliver(item)

    async def _ensure_bot(self) -> Any:
        if self._bot is None:
            from telegram import Bot
            from telegram.request import HTTPXRequest

            request = HTTPXRequest(connect_timeout=min(5.0, self.request_timeout), read_timeout=self.request_timeout,
                                   write_timeout=self.request_timeout, pool_timeout=self.request_timeout)
            kwargs: dict[str, Any] = {"request": request}
            if self._base_url:
                kwargs["base_url"] = self._base_url
            self._bot = Bot(self._token, **kwargs)
        await self._bot.initialize()  # getMe; retried below when Telegram is down
        return self._bot

    async def _deliver(self, text: str) -> None:
        from telegram.error import (
            BadRequest,
            Forbidden,
            InvalidToken,
            NetworkError,
            RetryAfter,
            TelegramError,
        )

        if self._bad_token:
            self.failed += 1
            return
        attempt = 0
        floods = 0
        while True:
            try:
                bot = await self._ensure_bot()
                await bot.send_message(chat_id=self._chat_id, text=text)
                self.sent += 1
                return
            except RetryAfter as exc:
                floods += 1
                self.rate_limited += 1
                with warnings.catch_warnings():  # PTB 22 deprecates the int form; we accept both
                    warnings.simplefilter("ignore")
                    delay = _seconds(exc.retry_after)
                if floods > 10:
                    log.error("Telegram keeps asking to slow down; alert dropped: %s", text)
                    self.failed += 1
                    return
                log.warning("Telegram flood control: waiting %.1f s as asked (retry_after)", delay)
                await asyncio.sleep(delay)
            except (InvalidToken, Forbidden) as exc:
                self._bad_token = isinstance(exc, InvalidToken)
                log.error("Telegram refused the bot (%s: %s); alerts are not delivered", type(exc).__name__,
                          redact(str(exc)))
                self.failed += 1
                return
            except BadRequest as exc:  # a subclass of NetworkError, but retrying will not help
                log.error("Telegram rejected an alert (%s): %s", redact(str(exc)), text)
                self.failed += 1
                return
            except NetworkError as exc:  # includes TimedOut
                attempt += 1
                if attempt >= self.max_attempts or not self._running and self._q.qsize() > 100:
                    log.error("Telegram unreachable after %d attempt(s) (%s); alert dropped: %s", attempt,
                              redact(str(exc)), text)
                    self.failed += 1
                    return
                delay = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning("Telegram unreachable (%s); retry %d/%d in %.1f s", redact(str(exc)), attempt,
                            self.max_attempts - 1, delay)
                await asyncio.sleep(delay)
            except TelegramError as exc:
                log.error("Telegram error %s; alert dropped: %s", redact(str(exc)), text)
                self.failed += 1
                return
