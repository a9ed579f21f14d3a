"""The left panel: Start/Stop, Paper/Live, training on/off, hot pairs, promotion progress.

Widgets only; what the buttons do is the controller's business (it sets the callbacks).
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from bot.engine.snapshot import EngineSnapshot
from bot.ui.tkcache import ConfigCache

__all__ = ["ControlPanel"]


class ControlPanel(ttk.Frame):
    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, padding=6)
        self.cache = ConfigCache()
        self.on_start_stop: Callable[[], None] = lambda: None
        self.on_mode: Callable[[str], None] = lambda mode: None
        self.on_training: Callable[[bool], None] = lambda on: None
        self.on_pair: Callable[[str], None] = lambda symbol: None

        self.start_button = ttk.Button(self, text="Start Bot", style="Start.TButton",
                                       command=lambda: self.on_start_stop())
        self.start_button.pack(fill="x", pady=(0, 4), ipady=4)
        self.on_pause: Callable[[], None] = lambda: None
        self.pause_button = ttk.Button(self, text="Pause", command=lambda: self.on_pause(), state="disabled")
        self.pause_button.pack(fill="x", pady=(0, 8))

        box = ttk.LabelFrame(self, text="Mode", padding=4)
        box.pack(fill="x", pady=4)
        self.mode = tk.StringVar(value="PAPER")
        self.paper_radio = ttk.Radiobutton(box, text="Paper Trading", value="PAPER", variable=self.mode,
                                           command=lambda: self.on_mode("PAPER"))
        self.live_radio = ttk.Radiobutton(box, text="Live Trading", value="LIVE", variable=self.mode,
                                          command=lambda: self.on_mode("LIVE"))
        self.paper_radio.pack(anchor="w")
        self.live_radio.pack(anchor="w")

        box = ttk.LabelFrame(self, text="Learning", padding=4)
        box.pack(fill="x", pady=4)
        self.training = tk.BooleanVar(value=True)
        self.training_check = ttk.Checkbutton(box, text="Training on", variable=self.training,
                                              command=self._training_clicked)
        self.training_check.pack(anchor="w")
        self.epsilon_label = ttk.Label(box, text="epsilon -")
        self.epsilon_label.pack(anchor="w")
        self.learner_label = ttk.Label(box, text="", foreground="#5c6370", wraplength=215)
        self.learner_label.pack(anchor="w")

        box = ttk.LabelFrame(self, text="Hot pairs", padding=4)
        box.pack(fill="x", pady=4)
        self.pairs = ttk.Treeview(box, columns=("score",), height=5, selectmode="browse")
        self.pairs.heading("#0", text="Pair")
        self.pairs.heading("score", text="Score")
        self.pairs.column("#0", width=170, stretch=True)
        self.pairs.column("score", width=70, anchor="e", stretch=False)
        self.pairs.tag_configure("active", foreground="#0a7d32")
        self.pairs.pack(fill="both", expand=True)
        self.pairs.bind("<<TreeviewSelect>>", self._pair_selected)

        box = ttk.LabelFrame(self, text="Promotion to live", padding=4)
        box.pack(fill="both", expand=True, pady=4)
        # A wrapping text, not a table: criterion names and thresholds are too long for columns.
        self.promotion = tk.Text(box, height=12, width=30, wrap="word", borderwidth=0, background="#f7f7f7",
                                 font=("DejaVu Sans", 9), cursor="arrow", state="disabled")
        self.promotion.tag_configure("met", foreground="#0a7d32")
        self.promotion.tag_configure("unmet", foreground="#b00020")
        self.promotion.tag_configure("detail", foreground="#5c6370")
        self.promotion.tag_configure("waiting", foreground="#8a8f98")
        self.promotion.pack(fill="both", expand=True)
        self._pairs_shown: tuple = ()
        self._promotion_shown: tuple = ()
        self._promotion_drawn = False

    def _training_clicked(self) -> None:
        self.cache.forget(self.training)  # the user set it; the engine's answer repaints it
        self.on_training(bool(self.training.get()))

    def _pair_selected(self, _event: object) -> None:
        sel = self.pairs.selection()
        if sel:
            self.on_pair(sel[0])

    def set_running(self, running: bool, *, busy: bool = False) -> None:
        self.cache.set(self.start_button, text="Stop Bot" if running else "Start Bot",
                       style="Stop.TButton" if running else "Start.TButton",
                       state="disabled" if busy else "normal")
        self.cache.set(self.pause_button, state="normal" if running and not busy else "disabled")
        state = "disabled" if running or busy else "normal"
        self.cache.set(self.paper_radio, state=state)
        self.cache.set(self.live_radio, state=state)

    def update_from(self, snap: EngineSnapshot, *, running: bool) -> None:
        if running:
            self.cache.set_var(self.training, snap.training)
        self.cache.set(self.pause_button, text="Resume" if snap.status == "Paused" else "Pause")
        learner = snap.learner or {}
        self.cache.set(self.epsilon_label, text=f"epsilon {snap.epsilon:.3f}" if running else "epsilon -")
        # steps are a count (55008, not 5.501e+04); loss and reward four significant digits
        parts = [f"{key} {learner[key]:{'.0f' if key == 'steps' else '.4g'}}"
                 for key in ("steps", "loss", "reward") if learner.get(key)]
        if running or parts:   # stopped with nothing to say: the checkpoint note stays
            self.cache.set(self.learner_label, text="  ".join(parts) if parts else "learner warming up")
        scores = dict(snap.pair_scores)
        rows = tuple((p, scores.get(p)) for p in snap.active_pairs) + tuple(
            (p, s) for p, s in snap.pair_scores if p not in snap.active_pairs)
        if snap.last_prices:   # the session has prices: a pair without one has no candles here
            rows = tuple((p, s if p in snap.last_prices else "no data") for p, s in rows)
        if rows != self._pairs_shown:  # rebuild only on change: keeps the selection and costs nothing
            selected = self.pairs.selection()
            self.pairs.delete(*self.pairs.get_children())
            for pair, score in rows:
                self.pairs.insert("", "end", iid=pair, text=pair,
                                  values=("-" if score is None else score if isinstance(score, str)
                                          else f"{score:.2f}",),
                                  tags=("active",) if pair in snap.active_pairs else ())
            keep = [s for s in selected if self.pairs.exists(s)]
            if keep:
                self.pairs.selection_set(keep)
            self._pairs_shown = rows
        crit = tuple((c.name, c.actual, c.required, c.met) for c in snap.promotion)
        replaying = running and snap.data_source == "REPLAY"
        if (crit, replaying) != self._promotion_shown or not self._promotion_drawn:
            args: list[str] = []
            for name, actual, required, met in crit:
                args += [("\u2714 " if met else "\u2718 ") + name, "met" if met else "unmet",
                         f"  {actual} (needs {required})\n", "detail"]
            if not crit:
                args = ["not checked yet", "waiting"]
            else:
                n_met = sum(1 for c in crit if c[3])
                args += [f"{n_met} of {len(crit)} met" + ("" if n_met < len(crit) else ": ready for live"),
                         "met" if n_met == len(crit) else "waiting"]
            args += ["\nthis replay session does not count (recorded candles)" if replaying
                     else "\nreplay sessions (recorded candles) never count", "detail"]
            self.promotion.configure(state="normal")
            self.promotion.delete("1.0", "end")
            self.promotion.insert("end", *args)
            self.promotion.configure(state="disabled")
            self._promotion_shown = (crit, replaying)
            self._promotion_drawn = True

    def show_checkpoint(self, text: str) -> None:
        """Before Start: which checkpoint the agent will resume from."""
        self.cache.set(self.learner_label, text=text)

    def select_pair(self, symbol: str) -> None:
        if self.pairs.exists(symbol) and self.pairs.selection() != (symbol,):
            self.pairs.selection_set(symbol)
