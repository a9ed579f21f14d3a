"""The questions the window asks the user, behind one small interface so tests can answer them.

`TkDialogs` shows real modal dialogs (they run a nested Tk event loop, so the window keeps
painting and polling while one is open). Tests pass `ScriptedDialogs` with the answers.
"""

from __future__ import annotations

import tkinter as tk
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from tkinter import messagebox, ttk
from typing import Protocol

__all__ = ["Dialogs", "TkDialogs", "ScriptedDialogs", "KEEP", "CLOSE_ALL", "CANCEL"]

KEEP = "keep"            # stop the bot, leave positions open
CLOSE_ALL = "close_all"  # stop the bot and close every position now
CANCEL = "cancel"        # do nothing


class Dialogs(Protocol):
    """Every question the window may ask. Each call returns only when it is answered."""

    def confirm_live(self, message: str) -> bool: ...
    def ask_stop(self, message: str) -> str: ...
    def ask_close_window(self, message: str) -> str: ...
    def error(self, title: str, message: str) -> None: ...


class _ChoiceDialog(tk.Toplevel):
    """A modal dialog with a message and one button per choice; Escape / close = cancel."""

    def __init__(self, parent: tk.Misc, title: str, message: str,
                 choices: Sequence[tuple[str, str]], *, danger: bool = False) -> None:
        super().__init__(parent)
        self.result = CANCEL
        self.title(title)
        self.transient(parent.winfo_toplevel())
        self.resizable(False, False)
        body = ttk.Frame(self, padding=16)
        body.pack(fill="both", expand=True)
        ttk.Label(body, text=message, wraplength=460, justify="left",
                  foreground="#b00020" if danger else "").pack(anchor="w", pady=(0, 12))
        buttons = ttk.Frame(body)
        buttons.pack(anchor="e")
        for label, value in choices:
            ttk.Button(buttons, text=label, command=lambda v=value: self._choose(v)).pack(side="left", padx=4)
        self.bind("<Escape>", lambda _e: self._choose(CANCEL))
        self.protocol("WM_DELETE_WINDOW", lambda: self._choose(CANCEL))

    def _choose(self, value: str) -> None:
        self.result = value
        self.grab_release()
        self.destroy()

    def run(self) -> str:
        self.update_idletasks()
        try:
            self.grab_set()
        except tk.TclError:  # another grab (or not viewable yet): still usable, just not modal
            pass
        self.wait_window(self)
        return self.result


class TkDialogs:
    """Real dialogs on top of `parent`."""

    def __init__(self, parent: tk.Misc) -> None:
        self.parent = parent

    def confirm_live(self, message: str) -> bool:
        d = _ChoiceDialog(self.parent, "Trade with real money?", message,
                          [("Stay in paper", CANCEL), ("Trade live", "live")], danger=True)
        return d.run() == "live"

    def ask_stop(self, message: str) -> str:
        d = _ChoiceDialog(self.parent, "Stop the bot", message,
                          [("Keep positions open", KEEP), ("Close all now", CLOSE_ALL), ("Cancel", CANCEL)])
        return d.run()

    def ask_close_window(self, message: str) -> str:
        d = _ChoiceDialog(self.parent, "Close the terminal", message,
                          [("Keep positions open", KEEP), ("Close all now", CLOSE_ALL), ("Cancel", CANCEL)],
                          danger=True)
        return d.run()

    def error(self, title: str, message: str) -> None:
        messagebox.showerror(title, message, parent=self.parent)


@dataclass
class ScriptedDialogs:
    """Dialogs answered from a script (tests). Records every question asked."""

    live: deque[bool] = field(default_factory=deque)
    stop: deque[str] = field(default_factory=deque)
    close: deque[str] = field(default_factory=deque)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.live, self.stop, self.close = deque(self.live), deque(self.stop), deque(self.close)

    def confirm_live(self, message: str) -> bool:
        self.asked.append(("confirm_live", message))
        return self.live.popleft() if self.live else False

    def ask_stop(self, message: str) -> str:
        self.asked.append(("ask_stop", message))
        return self.stop.popleft() if self.stop else CANCEL

    def ask_close_window(self, message: str) -> str:
        self.asked.append(("ask_close_window", message))
        return self.close.popleft() if self.close else CANCEL

    def error(self, title: str, message: str) -> None:
        self.asked.append(("error", f"{title}: {message}"))
