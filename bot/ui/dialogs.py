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
    def confirm_override(self, message: str, word: str) -> bool: ...
    def ask_stop(self, message: str) -> str: ...
    def ask_close_window(self, message: str) -> str: ...
    def error(self, title: str, message: str) -> None: ...


def _centre(dialog: tk.Toplevel, parent: tk.Misc) -> None:
    """Over the middle of the main window (a window manager may still move it)."""
    dialog.update_idletasks()
    top = parent.winfo_toplevel()
    x = top.winfo_rootx() + max(0, (top.winfo_width() - dialog.winfo_reqwidth()) // 2)
    y = top.winfo_rooty() + max(0, (top.winfo_height() - dialog.winfo_reqheight()) // 3)
    dialog.geometry(f"+{x}+{y}")


class _Modal(tk.Toplevel):
    """A modal dialog over the main window: a message, then what the subclass adds to `body`;
    Escape or the window's close button answer `no`."""

    def __init__(self, parent: tk.Misc, title: str, message: str, *, danger: bool, no: object) -> None:
        super().__init__(parent)
        self.result: object = no
        self.title(title)
        self.transient(parent.winfo_toplevel())
        self.resizable(False, False)
        self.body = ttk.Frame(self, padding=16)
        self.body.pack(fill="both", expand=True)
        ttk.Label(self.body, text=message, wraplength=460, justify="left",
                  foreground="#b00020" if danger else "").pack(anchor="w", pady=(0, 10))
        self.bind("<Escape>", lambda _e: self._finish(no))
        self.protocol("WM_DELETE_WINDOW", lambda: self._finish(no))

    def _finish(self, result: object) -> None:
        self.result = result
        self.grab_release()
        self.destroy()

    def _show(self, focus: tk.Misc | None = None) -> None:
        _centre(self, self.master)
        try:
            self.grab_set()
        except tk.TclError:  # another grab (or not viewable yet): still usable, just not modal
            pass
        if focus is not None:
            focus.focus_set()
        self.wait_window(self)


class _ChoiceDialog(_Modal):
    """A message and one button per choice; Escape / close = cancel."""

    def __init__(self, parent: tk.Misc, title: str, message: str,
                 choices: Sequence[tuple[str, str]], *, danger: bool = False) -> None:
        super().__init__(parent, title, message, danger=danger, no=CANCEL)
        buttons = ttk.Frame(self.body)
        buttons.pack(anchor="e")
        for label, value in choices:
            ttk.Button(buttons, text=label, command=lambda v=value: self._finish(v)).pack(side="left", padx=4)

    def run(self) -> str:
        self._show()
        return str(self.result)


class _TypedDialog(_Modal):
    """Goes ahead only when `word` is typed exactly (its button stays disabled until then)."""

    def __init__(self, parent: tk.Misc, title: str, message: str, word: str) -> None:
        super().__init__(parent, title, message, danger=True, no=False)
        self.word = word
        self.typed = tk.StringVar()
        self.entry = ttk.Entry(self.body, textvariable=self.typed, width=24)
        self.entry.pack(anchor="w", pady=(0, 10))
        buttons = ttk.Frame(self.body)
        buttons.pack(anchor="e")
        self.stay_button = ttk.Button(buttons, text="Stay in paper", command=lambda: self._finish(False))
        self.stay_button.pack(side="left", padx=4)
        self.go_button = ttk.Button(buttons, text="Trade live anyway", state="disabled",
                                    command=lambda: self._finish(self.typed.get().strip() == word))
        self.go_button.pack(side="left", padx=4)
        self.typed.trace_add("write", lambda *_a: self.go_button.configure(
            state="normal" if self.typed.get().strip() == word else "disabled"))

    def run(self) -> bool:
        self._show(focus=self.entry)
        return self.result is True


class TkDialogs:
    """Real dialogs on top of `parent`."""

    def __init__(self, parent: tk.Misc) -> None:
        self.parent = parent
        self.open_dialog: _TypedDialog | None = None   # the typed confirmation on screen (tests click it)

    def confirm_live(self, message: str) -> bool:
        d = _ChoiceDialog(self.parent, "Trade with real money?", message,
                          [("Stay in paper", CANCEL), ("Trade live", "live")], danger=True)
        return d.run() == "live"

    def confirm_override(self, message: str, word: str) -> bool:
        self.open_dialog = _TypedDialog(self.parent, "Override the promotion gate?", message, word)
        try:
            return self.open_dialog.run()
        finally:
            self.open_dialog = None

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
    override: deque[str] = field(default_factory=deque)   # what the user types into the override box
    stop: deque[str] = field(default_factory=deque)
    close: deque[str] = field(default_factory=deque)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.live, self.stop, self.close = deque(self.live), deque(self.stop), deque(self.close)
        self.override = deque(self.override)

    def confirm_live(self, message: str) -> bool:
        self.asked.append(("confirm_live", message))
        return self.live.popleft() if self.live else False

    def confirm_override(self, message: str, word: str) -> bool:
        self.asked.append(("confirm_override", message))
        return (self.override.popleft() if self.override else "").strip() == word

    def ask_stop(self, message: str) -> str:
        self.asked.append(("ask_stop", message))
        return self.stop.popleft() if self.stop else CANCEL

    def ask_close_window(self, message: str) -> str:
        self.asked.append(("ask_close_window", message))
        return self.close.popleft() if self.close else CANCEL

    def error(self, title: str, message: str) -> None:
        self.asked.append(("error", f"{title}: {message}"))
