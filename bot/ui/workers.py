"""The window's helpers off the Tk thread, and the heartbeat that proves the Tk thread is free.

- `CommandRunner`: one daemon thread that runs whatever might block (engine start/stop, orders,
  reading the live balance, saving prefs) and hands back a `concurrent.futures.Future`; the Tk
  thread polls the futures with `after()` and never waits on them.
- `SnapshotPoller`: reads `engine.snapshot()` a few times a second on its own thread, so even an
  engine holding its lock for a while cannot stall the window.
- `StallMeter`: an `after()` heartbeat; the gap between beats beyond the interval is the time the
  Tk thread was busy (a stall). The longest stall is the figure the tests assert on.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
import tkinter as tk
from collections.abc import Callable
from typing import Any

__all__ = ["CommandRunner", "SnapshotPoller", "StallMeter", "TkTimer"]

log = logging.getLogger(__name__)


class CommandRunner:
    """Runs callables one at a time on a daemon thread; `submit` returns a Future."""

    def __init__(self, name: str = "ui-commands") -> None:
        self._q: queue.Queue[tuple[Callable[[], Any], cf.Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self._q.put((fn, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the Tk thread through the future
                fut.set_exception(exc)

    def busy(self) -> bool:
        return not self._q.empty()

    def shutdown(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)


class SnapshotPoller:
    """Keeps `latest` = the engine's most recent snapshot, refreshed every `interval` seconds."""

    def __init__(self, engine: Callable[[], Any], *, interval: float = 0.2) -> None:
        self.engine = engine
        self.interval = interval
        self.latest: Any = None
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ui-snapshots", daemon=True)
        self._failed = False

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Read a fresh snapshot now (after a command changed the engine)."""
        self._kick.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            eng = self.engine()
            if eng is not None:
                try:
                    self.latest = eng.snapshot()
                    self._failed = False
                except Exception:
                    if not self._failed:  # once per failure streak, not five times a second
                        log.exception("could not read the engine's snapshot")
                    self._failed = True
            self._kick.wait(self.interval)
            self._kick.clear()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._kick.set()
        self._thread.join(timeout)


class TkTimer:
    """A repeating `after()` whose Tcl command is registered once.

    `widget.after(ms, fn)` creates and later deletes a Tcl command on every call (three Tcl calls,
    each a GIL hand-off); a timer that fires 50 times a second should cost one call per firing.
    """

    def __init__(self, root: tk.Misc, fn: Callable[[], None], interval_ms: int) -> None:
        self.root = root
        self.fn = fn
        self.interval_ms = interval_ms
        self._name = root.register(self._fire)
        self._job: str | None = None

    def schedule(self, delay_ms: int | None = None) -> None:
        self._job = self.root.tk.call("after", self.interval_ms if delay_ms is None else delay_ms, self._name)

    def _fire(self) -> None:
        self._job = None
        self.fn()

    def cancel(self) -> None:
        if self._job is not None:
            try:
                self.root.tk.call("after", "cancel", self._job)
            except tk.TclError:
                pass
            self._job = None


class StallMeter:
    """Measures how long the Tk thread goes without running its event loop."""

    def __init__(self, root: tk.Misc, *, interval_ms: int = 20) -> None:
        self.root = root
        self.interval_ms = interval_ms
        self._timer = TkTimer(root, self._beat, interval_ms)
        self.reset()

    def start(self) -> None:
        self.reset()
        self._timer.schedule()

    def reset(self) -> None:
        self.longest_ms = 0.0
        self.longest_cpu_ms = 0.0   # the Tk thread's own CPU time in its longest busy gap
        self.beats = 0
        self.stalls_over_50ms = 0
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()

    def _beat(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        stall = (now - self._last) * 1000 - self.interval_ms
        # CPU the Tk thread itself burnt between beats: its own work, as opposed to waiting for
        # a core or for the GIL (what other threads and processes cost it).
        busy = (cpu - self._last_cpu) * 1000
        self._last, self._last_cpu = now, cpu
        self.beats += 1
        self.longest_cpu_ms = max(self.longest_cpu_ms, busy)
        if stall > self.longest_ms:
            self.longest_ms = stall
        if stall > 50:
            self.stalls_over_50ms += 1
        self._timer.schedule()

    def stop(self) -> None:
        self._timer.cancel()
