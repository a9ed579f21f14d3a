"""Work other threads hand to the engine thread (a person's orders, closes, the training switch).

The window's thread never touches the engine's parts: it queues a function here and gets a
future back; the session loop runs the queue between batches of candles (`drain`), so a command
and a candle never interleave.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
from collections.abc import Callable
from typing import TypeVar

__all__ = ["EngineCommands", "run_now"]

T = TypeVar("T")


def run_now(fn: Callable[[], T]) -> cf.Future[T]:
    """`fn` run on the calling thread, its result (or exception) in a finished future."""
    fut: cf.Future[T] = cf.Future()
    fut.set_running_or_notify_cancel()
    try:
        fut.set_result(fn())
    except Exception as exc:  # the caller reads it from the future
        fut.set_exception(exc)
    return fut


class EngineCommands:
    """A queue of functions for the engine thread, each with the future of its result."""

    def __init__(self) -> None:
        self._q: queue.Queue[tuple[Callable[[], object], cf.Future[object]]] = queue.Queue()

    def put(self, fn: Callable[[], T]) -> cf.Future[T]:
        fut: cf.Future[T] = cf.Future()
        self._q.put((fn, fut))  # type: ignore[arg-type]  # one queue for every result type
        return fut

    def drain(self) -> int:
        """Run every queued command here (the engine thread); how many ran."""
        ran = 0
        while True:
            try:
                fn, fut = self._q.get_nowait()
            except queue.Empty:
                return ran
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except Exception as exc:
                fut.set_exception(exc)
            ran += 1
