"""The right panel: manual order form, open positions table and recently closed trades."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable, Collection, Sequence
from tkinter import ttk
from typing import Any

from bot.types import ClosedTrade, Position
from bot.ui.words import one_line

__all__ = ["OrdersPanel", "parse_usdt", "describe_result"]

GAIN, LOSS = "#0a7d32", "#b00020"
UNCLOSED_GROUND = "#fbd3d3"   # a position the bot could not close: act on Bybit by hand
RESULT_CHARS = 58   # the order result line


def parse_usdt(text: str) -> float:
    """The amount typed in the USDT box, or ValueError naming what is wrong with it."""
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"amount {text!r} is not a number; type the order size in USDT, e.g. 50") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"amount {text!r} must be a positive number of USDT")
    return value


def describe_result(result: Any) -> tuple[bool, str]:
    """(ok, text) for a manual order's result (the engine's ManualOrderResult)."""
    ok = bool(getattr(result, "ok", result is not None))
    qty, price = getattr(result, "qty", 0) or 0, getattr(result, "price", 0) or 0
    if ok and qty and price:
        return ok, f"{getattr(result, 'message', 'filled')} {qty:g} at {price:,.2f}"
    for name in ("message", "text", "reason", "error"):
        text = getattr(result, name, "")
        if text:
            return ok, str(text)
    return ok, "done" if ok else str(result)


def _price(x: float | None) -> str:
    if x is None or x == 0:
        return "-"
    if x >= 1000:
        return f"{x:,.0f}"
    return f"{x:.2f}" if x >= 10 else f"{x:.4g}"


class OrdersPanel(ttk.Frame):
    def __init__(self, master: tk.Misc, *, default_usdt: float) -> None:
        super().__init__(master, padding=6)
        self.on_order: Callable[[str, str, str], None] = lambda symbol, side, usdt: None
        self.on_close: Callable[[str], None] = lambda symbol: None

        box = ttk.LabelFrame(self, text="Manual order", padding=6)
        box.pack(fill="x")
        ttk.Label(box, text="Symbol").grid(row=0, column=0, sticky="w")
        self.symbol = tk.StringVar()
        self.symbol_box = ttk.Combobox(box, textvariable=self.symbol, width=12)
        self.symbol_box.grid(row=0, column=1, sticky="ew", padx=4, pady=2)
        ttk.Label(box, text="Amount (USDT)").grid(row=1, column=0, sticky="w")
        self.amount = tk.StringVar(value=f"{default_usdt:g}")
        self.amount_entry = ttk.Entry(box, textvariable=self.amount, width=12)
        self.amount_entry.grid(row=1, column=1, sticky="ew", padx=4, pady=2)
        buttons = ttk.Frame(box)
        buttons.grid(row=2, column=0, columnspan=2, sticky="ew", pady=(6, 0))
        self.buy_button = ttk.Button(buttons, text="Buy", style="Buy.TButton",
                                     command=lambda: self.on_order(self.symbol.get(), "Buy", self.amount.get()))
        self.sell_button = ttk.Button(buttons, text="Sell", style="Sell.TButton",
                                      command=lambda: self.on_order(self.symbol.get(), "Sell", self.amount.get()))
        self.close_button = ttk.Button(buttons, text="Close position",
                                       command=lambda: self.on_close(self.symbol.get()))
        for i, b in enumerate((self.buy_button, self.sell_button, self.close_button)):
            b.grid(row=0, column=i, sticky="ew", padx=2)
            buttons.columnconfigure(i, weight=1)
        box.columnconfigure(1, weight=1)
        # One line, always: a long refusal must not push the tables down (the log has it whole).
        self.result = ttk.Label(box, text="", width=RESULT_CHARS, anchor="w")
        self.result.grid(row=3, column=0, columnspan=2, sticky="w", pady=(6, 0))

        box = ttk.LabelFrame(self, text="Open positions", padding=4)
        box.pack(fill="both", expand=True, pady=(8, 0))
        cols = ("side", "size", "entry", "mark", "upnl", "stop", "tp")
        self.positions = ttk.Treeview(box, columns=cols, height=6, selectmode="browse")
        self.positions.heading("#0", text="Symbol")
        self.positions.column("#0", width=100, stretch=False)
        for col, title, width in zip(cols, ("Side", "Size", "Entry", "Mark", "uP&L", "Stop", "TP"),
                                     (44, 50, 54, 54, 52, 54, 54), strict=True):
            self.positions.heading(col, text=title)
            self.positions.column(col, width=width, anchor="e", stretch=True)
        self.positions.tag_configure("gain", foreground=GAIN)
        self.positions.tag_configure("loss", foreground=LOSS)
        self.positions.tag_configure("unclosed", foreground=LOSS, background=UNCLOSED_GROUND)
        self.positions.pack(fill="both", expand=True)
        self.positions.bind("<<TreeviewSelect>>", self._position_selected)

        box = ttk.LabelFrame(self, text="Recently closed trades", padding=4)
        box.pack(fill="both", expand=True, pady=(8, 0))
        cols = ("symbol", "side", "entry", "exit", "pnl", "why")
        self.trades = ttk.Treeview(box, columns=cols, height=6, selectmode="none")
        self.trades.heading("#0", text="Closed UTC")
        self.trades.column("#0", width=104, stretch=False)   # "09-23 05:00" whole
        for col, title, width in zip(cols, ("Symbol", "Side", "Entry", "Exit", "P&L", "Why"),
                                     (72, 42, 50, 50, 50, 72), strict=True):
            self.trades.heading(col, text=title)
            self.trades.column(col, width=width, anchor="e", stretch=True)
        self.trades.tag_configure("gain", foreground=GAIN)
        self.trades.tag_configure("loss", foreground=LOSS)
        self.trades.pack(fill="both", expand=True)
        self._positions_shown: tuple = ()
        self._symbols: list[str] = []
        self.rows_seen = 0  # snapshots that had open positions (tests read it)
        self._trades_shown: list[str] = []

    def _position_selected(self, _event: object) -> None:
        sel = self.positions.selection()
        if sel:
            self.symbol.set(sel[0])

    def set_symbols(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        if symbols == self._symbols:
            return
        self._symbols = symbols
        self.symbol_box.configure(values=symbols)
        if not self.symbol.get() and symbols:
            self.symbol.set(symbols[0])

    def set_busy(self, busy: bool) -> None:
        for b in (self.buy_button, self.sell_button, self.close_button):
            b.configure(state="disabled" if busy else "normal")

    def show_result(self, text: str, *, ok: bool) -> None:
        self.result.configure(text=one_line(text, RESULT_CHARS), foreground=GAIN if ok else LOSS)

    def show_positions(self, positions: Sequence[Position], unclosed: Collection[str] = ()) -> None:
        """`unclosed`: symbols a close could not get out of by its deadline: their rows are red
        (on a red ground, marked ⚠) until a close gets through."""
        rows = tuple((p.symbol, p.side, p.size, p.entry_price, p.mark_price, round(p.unrealised_pnl, 2),
                      p.stop_loss, p.take_profit, p.symbol in unclosed) for p in positions)
        if rows:
            self.rows_seen += 1
        if rows == self._positions_shown:
            return

        def cells(row: tuple) -> dict:
            sym, side, size, entry, mark, upnl, stop, tp, stuck = row
            tag = "unclosed" if stuck else "gain" if upnl >= 0 else "loss"
            return {"tags": (tag,), "text": f"⚠ {sym}" if stuck else sym,
                    "values": (side, f"{size:g}", _price(entry), _price(mark), f"{upnl:+,.2f}", _price(stop),
                               _price(tp))}

        old = self._positions_shown
        if [r[0] for r in rows] == [r[0] for r in old]:  # same positions, new marks: update in place
            for row, before in zip(rows, old, strict=True):
                if row != before:
                    self.positions.item(row[0], **cells(row))
        else:
            selected = self.positions.selection()
            self.positions.delete(*(r[0] for r in old))
            for row in rows:
                self.positions.insert("", "end", iid=row[0], **cells(row))
            keep = [s for s in selected if s in {r[0] for r in rows}]
            if keep:
                self.positions.selection_set(keep)
        self._positions_shown = rows

    def show_trades(self, trades: Sequence[ClosedTrade], *, limit: int = 40) -> None:
        """Newest first. Only trades not shown yet are inserted (a full rebuild is ~limit Tcl calls)."""
        newest = sorted(trades, key=lambda t: t.exit_ms, reverse=True)[:limit]
        keys, seen = [], {}
        for t in newest:  # unique row ids even for two round trips with the same times
            base = f"{t.symbol}|{t.entry_ms}|{t.exit_ms}|{t.side}|{t.qty:g}"
            seen[base] = seen.get(base, 0) + 1
            keys.append(f"{base}|{seen[base]}")
        if keys == self._trades_shown:
            return
        try:
            self._insert_trades(keys, newest)
        except tk.TclError:  # out of step with the widget somehow: rebuild from scratch
            self.trades.delete(*self.trades.get_children())
            self._trades_shown = []
            self._insert_trades(keys, newest)
        self._trades_shown = keys

    def _insert_trades(self, keys: list[str], newest: list[ClosedTrade]) -> None:
        wanted = set(keys)
        gone = [k for k in self._trades_shown if k not in wanted]
        if gone:
            self.trades.delete(*gone)
        shown = set(self._trades_shown) - set(gone)
        for i, (key, t) in enumerate(zip(keys, newest, strict=True)):
            if key in shown:
                continue
            when = time.strftime("%m-%d %H:%M", time.gmtime(t.exit_ms / 1000)) if t.exit_ms else "-"
            self.trades.insert("", i, iid=key, text=when, tags=("gain" if t.pnl >= 0 else "loss",),
                               values=(t.symbol, t.side, _price(t.entry_price), _price(t.exit_price),
                                       f"{t.pnl:+,.2f}", t.reason))

    def position_symbols(self) -> list[str]:
        """The symbols in the positions table, as shown on screen."""
        return list(self.positions.get_children())
