"""The status bar on top: connection, mode, bot state, UTC clock, equity and balance."""

from __future__ import annotations

import time
import tkinter as tk

from bot.engine.snapshot import EngineSnapshot, EngineStatus
from bot.types import Connection
from bot.ui.tkcache import ConfigCache
from bot.ui.words import one_line

__all__ = ["StatusBar"]

BG = "#12151c"
FG = "#d8dee9"
MESSAGE_CHARS = 56   # what fits beside the values in a 1440 px wide window
GREEN, AMBER, RED, GREY = "#3ddc84", "#f0b429", "#ff4d4f", "#8a8f98"

_CONNECTION_COLOURS = {Connection.CONNECTED: GREEN, Connection.RECONNECTING: AMBER, Connection.POLLING: AMBER,
                       Connection.OFFLINE_REPLAY: AMBER}
_STATUS_COLOURS = {EngineStatus.RUNNING: GREEN, EngineStatus.STARTING: AMBER, EngineStatus.PAUSED: AMBER,
                   EngineStatus.RESTARTING: AMBER, EngineStatus.CIRCUIT_OPEN: RED,
                   EngineStatus.ERROR: RED, EngineStatus.STOPPED: GREY}


def money(x: float) -> str:
    return f"{x:,.2f} USDT"


class StatusBar(tk.Frame):
    """One row of labelled values; `update_from` paints a snapshot."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, background=BG, padx=8, pady=5)
        self.cache = ConfigCache()
        self.values: dict[str, tk.Label] = {}
        for key, title in (("connection", "Connection"), ("mode", "Mode"), ("state", "Bot"),
                           ("clock", "UTC"), ("equity", "Equity"), ("balance", "Balance")):
            tk.Label(self, text=title, background=BG, foreground=GREY,
                     font=("DejaVu Sans", 9)).pack(side="left", padx=(10, 3))
            lbl = tk.Label(self, text="-", background=BG, foreground=FG, font=("DejaVu Sans", 10, "bold"))
            lbl.pack(side="left", padx=(0, 10))
            self.values[key] = lbl
        self.message = tk.Label(self, text="", background=BG, foreground=AMBER, font=("DejaVu Sans", 9),
                                anchor="w")
        self.message.pack(side="left", fill="x", expand=True, padx=(12, 0))
        self.set_mode("PAPER")
        self.values["state"].configure(text="Loading", foreground=AMBER)
        self.cache.set(self.values["connection"], text="-", foreground=GREY)

    def set_mode(self, mode: str) -> None:
        live = mode == "LIVE"
        self.cache.set(self.values["mode"], text=mode, foreground=RED if live else GREEN,
                       background="#3a0d10" if live else BG)

    def set_state(self, text: str, colour: str = AMBER) -> None:
        self.cache.set(self.values["state"], text=text, foreground=colour)

    def set_message(self, text: str, *, error: bool = False) -> None:
        """The latest thing worth a glance (errors in red); the log panel has the full text."""
        self.cache.set(self.message, text=one_line(text, MESSAGE_CHARS), foreground=RED if error else AMBER)

    def tick_clock(self) -> None:
        self.cache.set(self.values["clock"], text=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))

    def update_from(self, snap: EngineSnapshot, *, running: bool) -> None:
        conn = snap.connection if running else "-"
        colour = _CONNECTION_COLOURS.get(conn, GREY)
        if running and snap.account_stream:   # live: the private streams (fills, positions, wallet) too
            if snap.account_stream != Connection.CONNECTED and colour == GREEN:
                colour = AMBER
            conn = f"{conn} · account {snap.account_stream}"
        self.cache.set(self.values["connection"], text=conn, foreground=colour)
        self.set_mode(snap.mode)
        state = snap.status
        if snap.circuit in ("open", "tripped") and state == EngineStatus.RUNNING:
            state = EngineStatus.CIRCUIT_OPEN
        text = state + (f"  (restarted {snap.restarts}x)" if snap.restarts else "")
        self.set_state(text, _STATUS_COLOURS.get(state, AMBER))
        self.show_money(snap.equity, snap.balance)

    def show_money(self, equity: float, balance: float) -> None:
        self.cache.set(self.values["equity"], text=money(equity))
        self.cache.set(self.values["balance"], text=money(balance))
