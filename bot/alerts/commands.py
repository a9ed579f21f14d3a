"""Telegram commands: ask the bot how it is doing, pause it, stop it, from the phone.

`TelegramCommands` puts handlers on a python-telegram-bot `Application` that long-polls from the
notifier's own thread and asyncio loop (bot/alerts/telegram.py): a command never runs on, or waits
for, the engine thread; what blocks (closing positions, stopping) runs in an executor.

Only `TELEGRAM_CHAT_ID` is obeyed. An update from any other chat gets no answer and is logged
once per chat. `/closeall` and `/stop` ask for a confirmation button, valid `confirm_seconds`
(30 s); a press after that, or none, does nothing. Every command and its outcome is journaled
through the control object (`record`). There is no command that starts live trading.

The control object is the engine's `RemoteControl` (bot/engine/remote.py), passed in by the app
assembly: alerts never import the engine (the engine imports alerts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from bot.alerts.formats import fmt_price, fmt_qty
from bot.log_setup import redact

__all__ = ["TelegramCommands", "Control", "COMMANDS", "format_status", "format_trades", "format_profit"]

log = logging.getLogger("bot.alerts.commands")

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "mode, data source, equity, open positions with P&L and stops"),
    ("balance", "equity, wallet balance, available"),
    ("trades", "the last n closed trades (default 5): /trades 10"),
    ("profit", "net profit after fees over n days vs buy-and-hold (default 7): /profit 30"),
    ("pause", "no new decisions; open positions keep their stops"),
    ("resume", "decide again"),
    ("stop", "stop the bot; asks keep or close the positions (confirm within 30 s)"),
    ("closeall", "market-close every position (confirm within 30 s)"),
    ("help", "this list"),
)


class Control(Protocol):
    """What the commands need from the bot (the engine's RemoteControl has it)."""

    def status(self) -> dict[str, Any]: ...
    def trades(self, n: int = 10, since_ms: int | None = None) -> list[Any]: ...
    def profit(self, days: float = 7.0) -> Any: ...
    def pause(self) -> Any: ...
    def resume(self) -> Any: ...
    def close_all(self) -> Any: ...
    def stop(self, *, close_positions: bool) -> Any: ...
    def record(self, source: str, command: str, outcome: Any) -> None: ...


@dataclass(frozen=True)
class _Said:
    """An outcome for `Control.record` when the command only answered (same shape as CommandOutcome)."""

    ok: bool
    text: str


def _money(x: float) -> str:
    return f"{x:,.2f}"


def format_status(s: dict[str, Any]) -> str:
    lines = [f"📊 {s['mode']} · {s['status']} · {s['data_source']} data ({s['connection']}) · {s['strategy']}",
             f"Equity {_money(s['equity'])} USDT · balance {_money(s['balance'])} · available "
             f"{_money(s['available'])}"]
    pos = s.get("positions") or []
    if not pos:
        lines.append("No open position.")
    else:
        lines.append(f"Open positions ({len(pos)}):")
        for p in pos:
            stop = fmt_price(p["stop_loss"]) if p.get("stop_loss") else "none"
            tp = fmt_price(p["take_profit"]) if p.get("take_profit") else "none"
            stuck = "🚨 UNCLOSED (the bot could not close it: close it on Bybit) " if p.get("unclosed") else ""
            lines.append(f"• {stuck}{p['symbol']} {p['side']} {fmt_qty(p['size'])} @ {fmt_price(p['entry_price'])} · mark "
                         f"{fmt_price(p['mark_price'])} · P&L {p['unrealised_pnl']:+,.2f} · stop {stop} · TP {tp}")
    if s.get("circuit") not in (None, "closed"):
        lines.append(f"⚠️ circuit breaker {s['circuit']}")
    return "\n".join(lines)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def format_trades(trades: list[Any]) -> str:
    if not trades:
        return "No closed trade yet."
    lines = [f"Last {len(trades)} closed trade(s), net of fees:"]
    for t in trades:
        lines.append(f"• {_when(t.exit_ms)} {t.symbol} {t.side} {fmt_qty(t.qty)} {fmt_price(t.entry_price)} → "
                     f"{fmt_price(t.exit_price)} · {t.pnl:+,.2f} USDT (fees {t.fees:,.2f}) · {t.reason}")
    return "\n".join(lines)


def format_profit(r: Any) -> str:
    bh = f"{r.buy_hold_pct:+.2f} %" if r.buy_hold_pct is not None else "unknown (no prices yet)"
    return (f"💰 Last {r.days:g} day(s): {r.trades} closed trade(s), {r.wins} won\n"
            f"Net {r.net:+,.2f} USDT ({r.net_pct:+.2f} %) after {r.fees:,.2f} USDT fees\n"
            f"Buy-and-hold of the traded pairs over the same time: {bh}")


def help_text() -> str:
    return "Commands:\n" + "\n".join(f"/{name} — {doc}" for name, doc in COMMANDS) + \
        "\nLive trading is never started from Telegram."


def _int_arg(args: list[str], default: int, lo: int, hi: int) -> int | None:
    if not args:
        return default
    try:
        n = int(float(args[0]))
    except ValueError:
        return None
    return max(lo, min(hi, n))


class TelegramCommands:
    """The handlers, for an `Application` the notifier owns. `chat_id`: the only chat obeyed."""

    def __init__(self, control: Control, chat_id: str, *, confirm_seconds: float = 30.0) -> None:
        self.control = control
        self.chat_id = int(chat_id)
        self.confirm_seconds = confirm_seconds
        self._pending: dict[str, tuple[str, asyncio.Task[None]]] = {}   # nonce -> (command, its timeout)
        self._ignored: set[int] = set()
        self.ignored_updates = 0

    def install(self, application: Any) -> None:
        from telegram import Update
        from telegram.ext import (
            CallbackQueryHandler,
            CommandHandler,
            MessageHandler,
            TypeHandler,
            filters,
        )

        application.add_handler(TypeHandler(Update, self._gate), group=-1)
        simple = {"status": self._status, "balance": self._balance, "trades": self._trades, "profit": self._profit,
                  "pause": self._pause, "resume": self._resume, "help": self._help, "start": self._help,
                  "live": self._live}
        for name, fn in simple.items():
            application.add_handler(CommandHandler(name, fn))
        application.add_handler(CommandHandler("stop", self._stop))
        application.add_handler(CommandHandler("closeall", self._closeall))
        application.add_handler(CallbackQueryHandler(self._pressed))
        application.add_handler(MessageHandler(filters.ALL, self._unknown))

    async def set_menu(self, bot: Any) -> None:
        """The command list Telegram shows in the chat's menu."""
        from telegram import BotCommand

        await bot.set_my_commands([BotCommand(n, d[:256]) for n, d in COMMANDS])

    # -- who may talk to us ----------------------------------------------------------------------
    async def _gate(self, update: Any, context: Any) -> None:
        from telegram.ext import ApplicationHandlerStop

        chat = update.effective_chat
        if chat is not None and chat.id == self.chat_id:
            return
        self.ignored_updates += 1
        cid = chat.id if chat is not None else 0
        if cid not in self._ignored:
            self._ignored.add(cid)
            log.warning("Telegram: ignored an update from chat %s (only TELEGRAM_CHAT_ID is obeyed; further "
                        "updates from it are ignored silently)", cid)
        raise ApplicationHandlerStop

    # -- helpers ---------------------------------------------------------------------------------
    async def _off_loop(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a call that may block (the engine's command queue, a stop) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def _answer(self, update: Any, command: str, text: str, *, ok: bool = True, outcome: str = "") -> None:
        await update.effective_message.reply_text(redact(text))
        await self._off_loop(self.control.record, "telegram", command, _Said(ok, outcome or text.split("\n")[0]))

    # -- reads -----------------------------------------------------------------------------------
    async def _status(self, update: Any, context: Any) -> None:
        s = await self._off_loop(self.control.status)
        await self._answer(update, "/status", format_status(s), outcome="answered")

    async def _balance(self, update: Any, context: Any) -> None:
        s = await self._off_loop(self.control.status)
        await self._answer(update, "/balance", f"💼 {s['mode']}: equity {_money(s['equity'])} USDT · wallet balance "
                           f"{_money(s['balance'])} · available {_money(s['available'])}", outcome="answered")

    async def _trades(self, update: Any, context: Any) -> None:
        n = _int_arg(list(context.args or []), 5, 1, 50)
        if n is None:
            await self._answer(update, "/trades", "usage: /trades [n], n a number of trades (1-50)", ok=False)
            return
        trades = await self._off_loop(self.control.trades, n)
        await self._answer(update, f"/trades {n}", format_trades(trades), outcome=f"{len(trades)} trade(s) shown")

    async def _profit(self, update: Any, context: Any) -> None:
        days = _int_arg(list(context.args or []), 7, 1, 3650)
        if days is None:
            await self._answer(update, "/profit", "usage: /profit [days], days a number (1-3650)", ok=False)
            return
        r = await self._off_loop(self.control.profit, float(days))
        await self._answer(update, f"/profit {days}", format_profit(r), outcome="answered")

    async def _help(self, update: Any, context: Any) -> None:
        await self._answer(update, "/help", help_text(), outcome="answered")

    async def _live(self, update: Any, context: Any) -> None:
        await self._answer(update, "/live", "Live trading cannot be started from Telegram: use the window or "
                           "`python -m bot live` at the computer.", ok=False, outcome="refused")

    async def _unknown(self, update: Any, context: Any) -> None:
        text = (update.effective_message.text or "")[:40] if update.effective_message else ""
        await self._answer(update, f"unknown {text!r}", "Unknown command. " + help_text(), ok=False,
                           outcome="unknown command")

    # -- orders ----------------------------------------------------------------------------------
    async def _pause(self, update: Any, context: Any) -> None:
        out = await self._off_loop(self.control.pause)
        await self._answer(update, "/pause", ("⏸ " if out.ok else "❌ ") + out.text, ok=out.ok, outcome=out.text)

    async def _resume(self, update: Any, context: Any) -> None:
        out = await self._off_loop(self.control.resume)
        await self._answer(update, "/resume", ("▶️ " if out.ok else "❌ ") + out.text, ok=out.ok, outcome=out.text)

    async def _stop(self, update: Any, context: Any) -> None:
        await self._ask(update, "/stop", "Stop the bot? Open positions: keep them (with their stops) or close them?",
                        [("Stop, keep positions", "keep"), ("Stop and close all", "close"), ("Cancel", "cancel")])

    async def _closeall(self, update: Any, context: Any) -> None:
        s = await self._off_loop(self.control.status)
        n = len(s.get("positions") or [])
        if n == 0:
            await self._answer(update, "/closeall", "No open position: nothing to close.", outcome="nothing to close")
            return
        await self._ask(update, "/closeall", f"Market-close all {n} open position(s)?",
                        [(f"Close all {n}", "close"), ("Cancel", "cancel")])

    async def _ask(self, update: Any, command: str, question: str, choices: list[tuple[str, str]]) -> None:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        nonce = secrets.token_hex(6)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"{nonce}:{what}")]
                                         for label, what in choices])
        msg = await update.effective_message.reply_text(
            f"{question}\n(confirm within {self.confirm_seconds:g} s)", reply_markup=keyboard)
        self._pending[nonce] = (command, asyncio.create_task(self._expire(nonce, msg)))
        await self._off_loop(self.control.record, "telegram", command, _Said(True, "asked for confirmation"))

    async def _expire(self, nonce: str, msg: Any) -> None:
        await asyncio.sleep(self.confirm_seconds)
        entry = self._pending.pop(nonce, None)
        if entry is None:
            return
        text = f"⌛ Not confirmed within {self.confirm_seconds:g} s: nothing was done."
        try:
            await msg.edit_text(text)
        except Exception as exc:  # the chat may be gone; the outcome is journaled below all the same
            log.warning("Telegram: could not mark the confirmation as expired: %s", redact(str(exc)))
        await self._off_loop(self.control.record, "telegram", entry[0], _Said(False, "not confirmed in time"))

    async def _pressed(self, update: Any, context: Any) -> None:
        q = update.callback_query
        nonce, _, what = (q.data or "").partition(":")
        entry = self._pending.pop(nonce, None)
        if entry is None:
            await q.answer("This question has expired; nothing was done.")
            return
        command, timer = entry
        timer.cancel()
        await q.answer()
        if what == "cancel":
            await q.edit_message_text("Cancelled: nothing was done.")
            await self._off_loop(self.control.record, "telegram", command, _Said(True, "cancelled"))
            return
        await q.edit_message_text("⏳ working ...")
        if command == "/closeall":
            out = await self._off_loop(self.control.close_all)
        else:
            out = await self._off_loop(self.control.stop, close_positions=(what == "close"))
        text = ("✅ " if out.ok else "❌ ") + out.text
        await q.edit_message_text(redact(text))
        await self._off_loop(self.control.record, "telegram", f"{command} ({what})", out)

    async def shutdown(self) -> None:
        for _cmd, timer in self._pending.values():
            timer.cancel()
        self._pending.clear()
