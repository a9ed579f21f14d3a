"""The Paper / Live choice, and the record the window shows before Start (part of the controller).

Choosing Live reads the Bybit balance and the promotion gate on the command thread, asks for the
consent with the gate's checklist and, when the gate has not passed, for the typed override
(bot/ui/live_mode.py, README "Live needs three things"). Before Start, and after a change of
mode, the selected mode's wallet and journal are read (bot/engine/past.py) and shown.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
from typing import TYPE_CHECKING, Any

from bot.ui.live_mode import live_confirmation, read_live_facts

if TYPE_CHECKING:
    from bot.engine.past import PastRecord

__all__ = ["ModeChoice"]

log = logging.getLogger("bot.ui")


class ModeChoice:
    """Mixed into `Controller`: uses its view, dialogs, settings, engine, history, renderer, `_run`
    and `_busy`."""

    selected_mode: str
    past: PastRecord | None
    settings: Any
    view: Any
    dialogs: Any
    history: Any
    renderer: Any
    engine: Any
    _shown_snapshot: Any

    def _run(self, fn: Any, done: Any) -> cf.Future: ...   # the controller's
    def _busy(self, busy: bool, text: str = "") -> None: ...   # the controller's

    def choose_mode(self, mode: str) -> None:
        controls = self.view.controls
        if mode == "PAPER":
            changed = self.selected_mode != "PAPER"
            self.selected_mode = "PAPER"
            self.view.status.set_mode("PAPER")
            if changed:
                self.load_past()
            return
        controls.mode.set(self.selected_mode)  # stays paper until every condition is met
        if not self.settings.has_bybit_keys:
            self.dialogs.error("Live trading needs API keys",
                               "Set BYBIT_API_KEY and BYBIT_API_SECRET in the .env file (see .env.example), "
                               "then restart the terminal. The bot stays in paper trading.")
            return
        self._busy(True, "reading your Bybit balance and the paper record ...")
        settings = self.settings

        def confirm(fut: cf.Future) -> None:
            self._busy(False)
            from bot.engine.promotion import GATE_OVERRIDE_WORD, gate_checklist, override_request

            try:
                value, gate = fut.result()
            except Exception as exc:
                log.warning("the paper record could not be read for the live confirmation: %s", exc)
                self.dialogs.error("Live trading not selected", f"the paper record could not be read: {exc}")
                return
            if isinstance(value, Exception):
                log.warning("could not read the Bybit balance for the live confirmation: %s", value)
                balance = f"your whole Bybit USDT balance (it could not be read just now: {value})"
            else:
                balance = f"{value:,.2f} USDT"
            ok = self.dialogs.confirm_live(live_confirmation(settings, balance, gate_checklist(gate)))
            unmet: tuple[str, ...] = ()
            if ok and not gate.passed:
                unmet = tuple(gate.missing)
                ok = self.dialogs.confirm_override(override_request(gate), GATE_OVERRIDE_WORD)
                if not ok:
                    log.info("live trading with the promotion gate unmet: override not typed; staying in paper")
            if not ok:
                log.info("live trading refused by the user; staying in paper")
                self.view.status.set_message("live trading refused: staying in paper")
                return
            if unmet:
                log.warning("promotion gate overridden by the user (unmet: %s)", ", ".join(unmet))
            self._run(lambda: self.engine.give_live_consent(gate_unmet=unmet), self._consent_stored)

        self._run(lambda: read_live_facts(settings), confirm)

    def _consent_stored(self, fut: cf.Future) -> None:
        exc = fut.exception()
        if exc is not None:
            self.dialogs.error("Live consent could not be stored", str(exc))
            return
        self.selected_mode = "LIVE"
        self.view.controls.mode.set("LIVE")
        self.view.status.set_mode("LIVE")
        self.view.status.set_message("LIVE selected: Start Bot trades real money", error=True)
        self.load_past()

    def load_past(self) -> None:
        """Before Start: read the selected mode's wallet and journal on the command thread and show
        them (balance, open positions, closed trades, P&L and equity curves, learner curves)."""
        if self.engine is None or self.engine.running:
            return
        mode, settings = self.selected_mode, self.settings
        replay = True if getattr(self.engine, "force_replay", False) else None

        def read() -> tuple[PastRecord, list, str]:
            from bot.engine.past import latest_checkpoint, read_learner_curve, read_past

            past = read_past(settings, mode, replay=replay)
            return past, read_learner_curve(settings), latest_checkpoint(settings)

        def done(fut: cf.Future) -> None:
            if self.engine is None or self.engine.running or self.selected_mode != mode:
                return   # started (or switched) meanwhile: the session's own state wins
            try:
                past, curve, checkpoint = fut.result()
            except Exception as exc:
                log.warning("the %s record could not be read: %s", mode.lower(), exc)
                self.view.status.set_message(f"could not read the {mode.lower()} wallet: {exc}", error=True)
                return
            self.past = past
            self.history.load_past(past.equity_points, past.trades, curve)
            self.renderer.wake(force=True)
            self._shown_snapshot = None   # repaint with the record
            log.info("%s: %s, %s USDT, %d open position(s), %d closed trade(s)", mode, past.where,
                     f"{past.equity:,.2f}", len(past.positions), len(past.trades))
            self.view.status.set_message(f"{mode}: {past.where}, {len(past.trades)} closed trade(s)")
            if checkpoint:
                steps = f", {int(curve[-1][0])} learner steps, epsilon {curve[-1][3]:.3f}" if curve else ""
                log.info("the agent resumes from checkpoint %s%s", checkpoint, steps)
                self.view.controls.show_checkpoint(f"resumes {checkpoint}{steps}")

        self._run(read, done)
