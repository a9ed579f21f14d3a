"""The bottom log panel: records from the logging system, coloured by level, capped in length.

Any thread may log. `QueueLogHandler` formats the record in the logging thread (behind the
redaction filter) and drops the text on a bounded queue; the Tk thread drains a bounded number
of lines per tick, so a burst of log lines can never stall the window.
"""

from __future__ import annotations

import logging
import queue
import re
import time
import tkinter as tk
from tkinter import ttk

from bot.log_setup import install_filter_on

__all__ = ["QueueLogHandler", "LogPanel"]

# Emoji (outside the Basic Multilingual Plane) are for Telegram; Tk 8.6 fonts show them as boxes.
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]\uFE0F? ?")

_LEVEL_TAGS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
               logging.ERROR: "error", logging.CRITICAL: "critical"}
_COLOURS = {"debug": "#8a8f98", "info": "#d8dee9", "warning": "#f0b429", "error": "#ff6b6b",
            "critical": "#ff3b3b", "dropped": "#f0b429"}


# Append text/tag pairs, cap the length, follow the tail unless the user scrolled up to read.
_APPEND_PROC = "::ai_terminal_log_append"
_APPEND_TCL = """
proc %s {w max args} {
    set bottom [expr {[lindex [$w yview] 1] >= 0.999}]
    $w configure -state normal
    $w insert end {*}$args
    set n [expr {int([$w index end-1c]) - 1}]
    if {$n > $max} { $w delete 1.0 [expr {$n - $max + 1}].0 }
    $w configure -state disabled
    if {$bottom} { $w see end }
}
""" % _APPEND_PROC


class QueueLogHandler(logging.Handler):
    """A logging handler that hands formatted lines to the UI thread through a queue."""

    def __init__(self, *, level: int = logging.INFO, maxsize: int = 5000) -> None:
        super().__init__(level=level)
        self.queue: queue.Queue[tuple[int, str]] = queue.Queue(maxsize=maxsize)
        self.dropped = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                            datefmt="%H:%M:%S"))
        install_filter_on(self)  # secrets never reach the screen

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = _ASTRAL.sub("", self.format(record))
        except Exception:
            self.handleError(record)
            return
        try:
            self.queue.put_nowait((record.levelno, line))
        except queue.Full:
            # Counted and reported in the panel: nothing is dropped silently (the file log has it).
            self.dropped += 1


class LogPanel(ttk.Frame):
    """A read-only scrolling text of log lines, newest at the bottom."""

    def __init__(self, master: tk.Misc, handler: QueueLogHandler, *, max_lines: int = 2000,
                 lines_per_tick: int = 200) -> None:
        super().__init__(master)
        self.handler = handler
        self.max_lines = max_lines
        self.lines_per_tick = lines_per_tick
        self._reported_drops = 0
        self.shown = 0   # lines shown since start (tests read it)
        self.text = tk.Text(self, height=9, wrap="none", background="#1e2129", foreground="#d8dee9",
                            insertbackground="#d8dee9", font=("DejaVu Sans Mono", 9), borderwidth=0,
                            state="disabled")
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.text.yview)
        self.text.configure(yscrollcommand=scroll.set)
        self.text.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        for tag, colour in _COLOURS.items():
            self.text.tag_configure(tag, foreground=colour)
        self.text.tk.eval(_APPEND_TCL)

    def drain(self) -> int:
        """Move up to `lines_per_tick` queued lines into the panel; returns how many."""
        batch: list[tuple[str, str]] = []
        try:
            for _ in range(self.lines_per_tick):
                levelno, line = self.handler.queue.get_nowait()
                tag = _LEVEL_TAGS.get(levelno, "critical" if levelno > logging.CRITICAL else "info")
                batch.append((line, tag))
        except queue.Empty:
            pass
        if self.handler.dropped != self._reported_drops:
            n = self.handler.dropped - self._reported_drops
            self._reported_drops = self.handler.dropped
            batch.append((f"{time.strftime('%H:%M:%S')} {n} log lines not shown here (too many at once); "
                          "the log file has them", "dropped"))
        if not batch:
            return 0
        # One Tcl call for the whole batch (each call from Python costs a GIL hand-off).
        args: list[str] = []
        for line, tag in batch:
            args += [line + "\n", tag]
        self.text.tk.call(_APPEND_PROC, self.text._w, self.max_lines, *args)
        self.shown += len(batch)
        return len(batch)

    def contents(self) -> str:
        return self.text.get("1.0", "end-1c")
