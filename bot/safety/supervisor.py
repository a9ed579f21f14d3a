"""Auto-restart for the headless bot: run it as a child process and restart it after a crash.

`python -m bot paper|live` calls `supervise(argv, settings)`, which runs
`python -m bot <command> --no-supervisor ...` as a child. After a *critical* exit (exit code 3,
or death by a signal such as SIGKILL, SIGSEGV or an out-of-memory kill) it waits, then starts
the child again: the first wait is RESTART_BACKOFF_SECONDS and it doubles with each restart in a
row (a child that ran stably for `stable_seconds` starts the doubling afresh); at most
RESTART_MAX_PER_HOUR restarts happen within any hour, after which the supervisor gives up with
exit code 3 and a `🚨 CRITICAL ERROR 🚨` alert. Every restart is published as an
`EventKind.RESTART` event (Telegram). Exit codes 0 (done), 1 (failed) and 2 (usage) are passed
through without a restart: a restart would not fix them. SIGINT / SIGTERM to the supervisor
reach the child as SIGTERM (its graceful stop), and nothing is restarted after them.

The child recovers on its own start (`bot.engine.recovery.recover`), so a restart is safe at any point.
`RestartPolicy` is the reusable part (backoff + hourly cap) for the desktop app's in-process
engine restart.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from bot.events import Event, EventBus, EventKind

__all__ = ["supervise", "Supervisor", "RestartPolicy", "child_args", "EXIT_CRITICAL"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CRITICAL = 0, 1, 2, 3
_DELIBERATE = {signal.SIGINT, signal.SIGTERM}  # someone stopped it on purpose: no restart


class RestartPolicy:
    """Exponential backoff with a cap on restarts per hour. Not thread-safe; one per supervisor/engine."""

    def __init__(self, *, backoff_seconds: float, max_per_hour: int, max_backoff_seconds: float = 300.0,
                 stable_seconds: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff_seconds = float(backoff_seconds)
        self.max_per_hour = int(max_per_hour)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.stable_seconds = float(stable_seconds)
        self.clock = clock
        self._restarts: deque[float] = deque()
        self._in_a_row = 0

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> "RestartPolicy":
        return cls(backoff_seconds=settings.RESTART_BACKOFF_SECONDS, max_per_hour=settings.RESTART_MAX_PER_HOUR,
                   **options)

    def restarts_last_hour(self) -> int:
        now = self.clock()
        while self._restarts and now - self._restarts[0] >= 3600.0:
            self._restarts.popleft()
        return len(self._restarts)

    def on_crash(self, ran_for_s: float | None = None) -> float | None:
        """A crash happened after running `ran_for_s` seconds: the delay before the next restart, or None
        when the hourly cap is reached (then stay down). Records the restart when it returns a delay."""
        if ran_for_s is not None and ran_for_s >= self.stable_seconds:
            self._in_a_row = 0
        if self.restarts_last_hour() >= self.max_per_hour:
            return None
        delay = min(self.max_backoff_seconds, self.backoff_seconds * (2 ** self._in_a_row))
        self._in_a_row += 1
        self._restarts.append(self.clock())
        return delay


def child_args(argv: Sequence[str]) -> list[str]:
    """`argv` (what follows `python -m bot`) with `--no-supervisor` right after the command name."""
    args = list(argv)
    if "--no-supervisor" in args:
        return args
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--env-file":
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return args[: i + 1] + ["--no-supervisor"] + args[i + 1:]
    raise ValueError(f"no command in {args!r}; expected e.g. ['paper'] or ['live', '--yes']")


def _describe(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return {EXIT_CRITICAL: "exit code 3 (critical error)"}.get(rc, f"exit code {rc}")


class Supervisor:
    """Runs the child, restarts it per `policy`. `run()` blocks; `stop()` (any thread) ends it."""

    def __init__(self, argv: Sequence[str], settings: Any, *, bus: EventBus | None = None,
                 policy: RestartPolicy | None = None, child_cmd: Sequence[str] | None = None,
                 cwd: str | None = None, env: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.args = child_args(argv) if child_cmd is None else list(argv)
        self.cmd = list(child_cmd) if child_cmd is not None else [sys.executable, "-m", "bot"]
        self.settings = settings
        self.bus = bus
        self.policy = policy or RestartPolicy.from_settings(settings, clock=clock)
        self.cwd, self.env, self.clock = cwd, env, clock
        self.runs = 0
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop for good: the child gets `sig`, and is not restarted."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)

    def _publish(self, kind: str, message: str, level: str, **data: Any) -> None:
        log.log(logging.getLevelName(level), "%s", message)
        if self.bus is not None:
            self.bus.publish(Event(kind=kind, message=message, level=level, data=data))

    def run(self) -> int:
        if self.cwd is None:
            from config import PROJECT_ROOT

            self.cwd = str(PROJECT_ROOT)
        while True:
            started = self.clock()
            with self._lock:
                if self._stopping.is_set():
                    return EXIT_OK
                self._proc = subprocess.Popen(self.cmd + self.args, cwd=self.cwd, env=self.env)
                self.runs += 1
            log.info("supervisor: started %s (pid %d, run %d)", " ".join(self.args), self._proc.pid, self.runs)
            rc = self._proc.wait()
            ran_for = self.clock() - started
            if self._stopping.is_set():
                log.info("supervisor: stopped on request; the bot ended with %s", _describe(rc))
                return rc if rc >= 0 else EXIT_OK
            if rc in (EXIT_OK, EXIT_FAILED, EXIT_USAGE):
                if rc != EXIT_OK:
                    log.error("supervisor: the bot ended with %s; not restarting (a restart would not fix it)",
                              _describe(rc))
                return rc
            if rc < 0 and -rc in _DELIBERATE:
                log.info("supervisor: the bot was %s; not restarting", _describe(rc))
                return EXIT_FAILED
            if rc != EXIT_CRITICAL and rc >= 0:
                log.error("supervisor: unexpected %s; not restarting", _describe(rc))
                return rc
            delay = self.policy.on_crash(ran_for)
            if delay is None:
                self._publish(EventKind.CRITICAL,
                              f"🚨 CRITICAL ERROR 🚨\nThe bot ended with {_describe(rc)} and has already been "
                              f"restarted {self.policy.max_per_hour} time(s) this hour; it stays down. "
                              "Please check the log and restart it by hand.", "CRITICAL", exit_code=rc)
                return EXIT_CRITICAL
            n = self.policy.restarts_last_hour()
            self._publish(EventKind.RESTART,
                          f"the bot ended with {_describe(rc)} after {ran_for:.0f} s; restarting in {delay:g} s "
                          f"(restart {n}/{self.policy.max_per_hour} this hour)", "WARNING",
                          exit_code=rc, delay_s=delay, restarts_last_hour=n)
            if self._stopping.wait(delay):
                return EXIT_OK


def supervise(argv: Sequence[str] | Any, settings: Any = None, /, *, bus: EventBus | None = None,
              **options: Any) -> int:
    """Run `python -m bot <argv> --no-supervisor` and restart it after critical exits; returns the
    final exit code. Without a `bus`, restart alerts go to Telegram through a notifier of its own.
    `options` go to `Supervisor` (policy, child_cmd, cwd, env, clock).

    Also accepted, as bot/cli/paper.py calls it: `supervise(settings, command="paper", argv=[...])`.
    """
    if settings is None and "argv" in options:
        settings, argv = argv, options.pop("argv")
        options.pop("command", None)
    notifier = None
    if bus is None:
        from bot.alerts.telegram import TelegramNotifier

        bus = EventBus()
        notifier = TelegramNotifier(settings, bus=bus).start()
    sup = Supervisor(argv, settings, bus=bus, **options)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Always SIGTERM: on Ctrl-C the child got its own SIGINT from the terminal already, and a
            # second SIGINT would interrupt its graceful stop (closing positions, flushing alerts).
            previous[sig] = signal.signal(sig, lambda _s, _f: sup.stop(signal.SIGTERM))
    try:
        return sup.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if notifier is not None:
            notifier.stop()
