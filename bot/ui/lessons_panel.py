"""The Lessons tab: what the review pipeline learnt from the journal, dated, and a switch to
reverse each lesson (the window's side of `python -m bot lessons` / `--off ID` / `--on ID`).

Which journal: the one the running engine uses (`engine.session_journal()`: the paper/live record, or a
replay session's own `replay_state.db`); with the engine stopped, the paper record
`settings.data_dir / "state.db"` (opened read-mostly by this tab, never created by it).

The Tk thread never touches SQLite: reading the lessons and switching one off or on run on a
`CommandRunner` of their own (a lessons read never waits behind a 30 s engine stop, nor a Start
behind a read), and come back as futures the controller polls (`track`). A refresh runs when the
engine announces a lesson on its bus (`lesson learned: ...`, with `lesson_id` in the event's
data), when the tab is opened, and every `period_s` seconds while it is visible.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk
from typing import Any

from bot.strategies.lessons import Lesson, lessons_text, parse_lessons
from bot.ui.tkcache import ConfigCache
from bot.ui.workers import CommandRunner

__all__ = ["LESSONS_TAB", "LessonsPanel", "LessonsKeeper", "LessonsShown"]

log = logging.getLogger("bot.ui")

LESSONS_TAB = "Lessons"
OFF_COLOUR, ERROR_COLOUR = "#8a8f98", "#b00020"
HINT = ("Active lessons tighten the analyst's rules for their pattern (within the config bounds) and go "
        "into the LLM reviewers' prompts. Switching one off reverses that from the next review on; "
        "the lesson stays in the journal and can be switched on again.")


@dataclass(frozen=True)
class LessonsShown:
    """One read of a journal's lessons (made on the worker thread, painted on the Tk thread)."""

    journal: Any                      # the journal read; a switch goes back to this one
    where: str                        # which journal, for people
    lessons: tuple[Lesson, ...] = ()
    lines: tuple[str, ...] = ()       # lessons_text() of each lesson, same order
    error: str = ""


class LessonsPanel(ttk.Frame):
    """Widgets only: the list of lessons, the selected one in full, and the off/on switch."""

    def __init__(self, master: tk.Misc) -> None:
        super().__init__(master, padding=6)
        self.on_toggle: Callable[[int], None] = lambda lesson_id: None
        self.header = ttk.Label(self, text="reading the journal ...", font=("DejaVu Sans", 9, "bold"))
        self.header.pack(fill="x")
        box = ttk.Frame(self)
        box.pack(fill="both", expand=True, pady=(4, 4))
        self.tree = ttk.Treeview(box, columns=("lesson",), show="headings", selectmode="browse", height=8)
        self.tree.heading("lesson", text="Lesson (#id [state] date: finding; rule)", anchor="w")
        self.tree.column("lesson", anchor="w", stretch=True, width=600)
        self.tree.tag_configure("off", foreground=OFF_COLOUR)
        scroll = ttk.Scrollbar(box, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        scroll.pack(side="right", fill="y")
        self.tree.pack(side="left", fill="both", expand=True)
        self.tree.bind("<<TreeviewSelect>>", lambda _e: self._selection_changed())
        self.detail = ttk.Label(self, text="", wraplength=620, justify="left")
        self.detail.pack(fill="x", pady=(0, 4))
        bar = ttk.Frame(self)
        bar.pack(fill="x")
        self.toggle_button = ttk.Button(bar, text="Switch off", state="disabled", width=12,
                                        command=self._toggle_clicked)
        self.toggle_button.pack(side="left")
        self.result = ttk.Label(bar, text="")
        self.result.pack(side="left", padx=8)
        self.hint = ttk.Label(self, text=HINT, wraplength=620, justify="left", foreground=OFF_COLOUR)
        self.hint.pack(fill="x", pady=(6, 0))
        self.bind("<Configure>", self._resized)
        self.shown: LessonsShown | None = None
        self.busy = False
        self._rows: tuple[tuple[str, bool], ...] = ()
        self._cache = ConfigCache()

    def _resized(self, event: Any) -> None:
        width = max(200, int(event.width) - 20)
        self._cache.set(self.detail, wraplength=width)
        self._cache.set(self.hint, wraplength=width)

    def selected(self) -> Lesson | None:
        sel = self.tree.selection()
        if not sel or self.shown is None:
            return None
        return next((lz for lz in self.shown.lessons if str(lz.id) == sel[0]), None)

    def select(self, lesson_id: int) -> None:
        self.tree.selection_set(str(lesson_id))
        self.tree.see(str(lesson_id))

    def lines(self) -> list[str]:
        """The rows as shown (tests read them)."""
        return [self.tree.set(iid, "lesson") for iid in self.tree.get_children()]

    def show(self, shown: LessonsShown) -> None:
        self.shown = shown
        n, active = len(shown.lessons), sum(lz.active for lz in shown.lessons)
        if shown.error:
            self._cache.set(self.header, text=f"{shown.where}: {shown.error}", foreground=ERROR_COLOUR)
        else:
            self._cache.set(self.header, text=f"{shown.where}: {n} lesson(s), {active} active", foreground="")
        rows = tuple((line, lz.active) for lz, line in zip(shown.lessons, shown.lines, strict=True))
        if rows != self._rows:  # repaint the list only when a lesson came, went or changed
            keep = self.tree.selection()
            self.tree.delete(*self.tree.get_children())
            for lz, (line, on) in zip(shown.lessons, rows, strict=True):
                self.tree.insert("", "end", iid=str(lz.id), values=(line,), tags=() if on else ("off",))
            self._rows = rows
            still = [i for i in keep if self.tree.exists(i)]
            if still:
                self.tree.selection_set(still)
        self._selection_changed()

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy = busy
        if text:
            self._cache.set(self.result, text=text, foreground="")
        self._selection_changed()

    def show_result(self, text: str, *, ok: bool) -> None:
        self._cache.set(self.result, text=text, foreground="" if ok else ERROR_COLOUR)

    def _selection_changed(self) -> None:
        lesson = self.selected()
        if lesson is None:
            empty = self.shown is not None and not self.shown.lessons and not self.shown.error
            self._cache.set(self.detail, text="no lessons yet: they need LESSON_MIN_SAMPLES closed trades (or "
                                              "vetoes) of one regime x setup x side" if empty else
                                              "select a lesson to switch it off or on")
            self._cache.set(self.toggle_button, state="disabled", text="Switch off")
            return
        line = self.tree.set(str(lesson.id), "lesson")
        self._cache.set(self.detail, text=line)
        self._cache.set(self.toggle_button, state="disabled" if self.busy else "normal",
                        text="Switch off" if lesson.active else "Switch on")

    def _toggle_clicked(self) -> None:
        lesson = self.selected()
        if lesson is not None and lesson.id is not None and not self.busy:
            self.on_toggle(int(lesson.id))


class LessonsKeeper:
    """The tab's logic: which journal, when to read it, and the off/on switch, all off the Tk thread."""

    def __init__(self, panel: LessonsPanel, settings: Any, *, engine: Callable[[], Any],
                 visible: Callable[[], bool], track: Callable[[cf.Future, Callable[[cf.Future], None]], None],
                 period_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.panel = panel
        self.settings = settings
        self.engine = engine
        self.visible = visible
        self.track = track
        self.period_s = period_s
        self.clock = clock
        self.runner = CommandRunner(name="ui-lessons")
        self.reads = 0               # finished reads (tests read them)
        self.event_reads = 0         # reads started because the engine announced a lesson
        self._own_journal: Any = None
        self._in_flight = 0          # reads and switches queued on the runner
        self._dirty = True           # read at the first chance
        self._dirty_by_event = False
        self._last_read = float("-inf")
        self._was_visible = False
        self._last_error = ""
        panel.on_toggle = self.toggle

    # ------------------------------------------------------------------------------------------
    # Tk thread
    def on_event(self, event: Any) -> None:
        """Every engine event passes here; a learnt lesson (its id in the data) triggers a read."""
        if isinstance(getattr(event, "data", None), dict) and event.data.get("lesson_id") is not None:
            self._dirty = self._dirty_by_event = True

    def tick(self) -> None:
        """Called by the controller's tick (10 a second): start a read when one is due."""
        visible = self.visible()
        if visible and not self._was_visible:
            self._dirty = True      # the tab was just opened: show it fresh
        self._was_visible = visible
        if self._in_flight:
            return
        if self._dirty or (visible and self.clock() - self._last_read >= self.period_s):
            if self._dirty_by_event:
                self.event_reads += 1
            self._dirty = self._dirty_by_event = False
            self._start(self._read)

    def toggle(self, lesson_id: int) -> None:
        """Switch lesson `lesson_id` of the shown journal off (if active) or on, then re-read."""
        shown = self.panel.shown
        lesson = next((lz for lz in shown.lessons if lz.id == lesson_id), None) if shown else None
        if lesson is None or shown is None or shown.journal is None or self.panel.busy:
            return
        active = not lesson.active
        journal = shown.journal
        word = "on" if active else "off"
        self.panel.set_busy(True, f"switching lesson #{lesson_id} {word} ...")

        def work() -> LessonsShown:
            journal.set_lesson_active(lesson_id, active)
            log.info("lesson #%d switched %s from the window (%s)", lesson_id, word, shown.where)
            return self._read()

        def done(fut: cf.Future) -> None:
            self.panel.set_busy(False)
            if fut.exception() is None:
                self.panel.show_result(f"lesson #{lesson_id} switched {word}", ok=True)
            else:
                self.panel.show_result(f"lesson #{lesson_id} could not be switched {word}: {fut.exception()}",
                                       ok=False)
                self._dirty = True

        self._start(work, then=done)

    def stop(self) -> None:
        """Window closing: the worker closes the journal this tab opened, then ends."""
        self.runner.submit(self._close_own)
        self.runner.shutdown(timeout=1.0)

    def _start(self, work: Callable[[], LessonsShown],
               then: Callable[[cf.Future], None] | None = None) -> None:
        self._in_flight += 1

        def done(fut: cf.Future) -> None:
            self._in_flight -= 1
            self._last_read = self.clock()
            exc = fut.exception()
            if exc is None:
                self.reads += 1
                self._last_error = ""
                self.panel.show(fut.result())
            elif then is None:
                if str(exc) != self._last_error:   # once per distinct failure, not every 3 s
                    log.warning("could not read the lessons: %s", exc)
                self._last_error = str(exc)
                self.panel.show(LessonsShown(journal=None, where="Lessons", error=str(exc)))
            if then is not None:
                then(fut)

        self.track(self.runner.submit(work), done)

    # ------------------------------------------------------------------------------------------
    # worker thread
    def _journal(self) -> tuple[Any, str]:
        engine = self.engine()
        journal = engine.session_journal() if engine is not None else None
        if journal is not None:
            return journal, f"{_name(journal)} (the running session's journal)"
        from bot.engine.records import open_record_journal, record_journal_path

        path = record_journal_path(self.settings)
        if self._own_journal is None:
            self._own_journal = open_record_journal(self.settings)
            if self._own_journal is None:
                return None, f"{path.name} (the paper record; not created yet)"
        return self._own_journal, f"{path.name} (the paper record; the bot is stopped)"

    def _read(self) -> LessonsShown:
        journal, where = self._journal()
        if journal is None:
            return LessonsShown(journal=None, where=where)
        lessons = parse_lessons(journal.lessons(active_only=False))
        lines = lessons_text(lessons, include_inactive=True)
        return LessonsShown(journal=journal, where=where, lessons=tuple(lessons), lines=tuple(lines))

    def _close_own(self) -> None:
        if self._own_journal is not None:
            self._own_journal.close()
            self._own_journal = None


def _name(journal: Any) -> str:
    path = getattr(journal, "path", None)
    return Path(path).name if path is not None else type(journal).__name__
