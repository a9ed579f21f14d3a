"""What a trader does to a chart: zoom, pan, a crosshair with a read-out, another timeframe.

The Tk thread only notes what the mouse did (`ChartView.push`, `ChartView.point`: cheap, under a
lock) and wakes the chart thread; the chart thread, which owns the figures, turns the pixels into
data coordinates (`take`) and redraws. So no matplotlib object is touched by two threads, and a
mouse move costs the Tk thread microseconds.

    wheel up / down      zoom in / out around the pointer (time axis; prices follow what is visible)
    drag with button 1   pan along time
    double-click         back to the whole range, following new candles
    pointer over a chart crosshair and the candle's (or equity point's) values
"""

from __future__ import annotations

import threading
import tkinter as tk
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

__all__ = ["ChartView", "bind_mouse", "TIMEFRAMES", "resample_chart"]

ZOOM_STEP = 0.8   # one wheel notch shows 80 % of the time span (or 125 % outwards)
# The timeframe switch: label -> Bybit interval ("" = the bot's own interval)
TIMEFRAMES = {"bot's interval": "", "4 h": "240", "1 d": "D"}


class ChartView:
    """One chart's view state, shared by the Tk thread (writes intents) and the chart thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[Any, ...]] = []
        self._pointer: tuple[float, float] | None = None
        self.xlim: tuple[float, float] | None = None   # chart thread: the user's time window (None: all)
        self.changes = 0                               # bumps on every intent (the chart thread redraws)

    # Tk thread ---------------------------------------------------------------------------------
    def push(self, *event: Any) -> None:
        with self._lock:
            self._events.append(event)
            self.changes += 1

    def point(self, pointer: tuple[float, float] | None) -> None:
        with self._lock:
            self._pointer = pointer
            self.changes += 1

    # chart thread ------------------------------------------------------------------------------
    def take(self) -> tuple[list[tuple[Any, ...]], tuple[float, float] | None]:
        with self._lock:
            events, self._events = self._events, []
            return events, self._pointer

    def apply(self, ax: Any, events: list[tuple[Any, ...]], full: tuple[float, float]) -> None:
        """Turn zoom / pan / reset intents (in pixels) into `self.xlim` (data), within `full` and a bit."""
        for ev in events:
            kind = ev[0]
            x0, x1 = self.xlim or ax.get_xlim()
            if kind == "reset":
                self.xlim = None
                continue
            if kind == "zoom":
                _, px, factor = ev
                x = float(ax.transData.inverted().transform((px, 0.0))[0])
                x0, x1 = x - (x - x0) * factor, x + (x1 - x) * factor
            elif kind == "pan":
                width = ax.bbox.width or 1.0
                dx = float(ev[1]) * (x1 - x0) / width
                x0, x1 = x0 - dx, x1 - dx
            lo, hi = full
            span = hi - lo or 1.0
            if x1 - x0 >= span * 1.05:   # zoomed out past everything: the whole range, following
                self.xlim = None
                continue
            shift = max(0.0, lo - span * 0.05 - x0) - max(0.0, x1 - hi - span * 0.05)
            self.xlim = (x0 + shift, x1 + shift)


def bind_mouse(widget: tk.Misc, view: ChartView, wake: Callable[[], None], height: Callable[[], int]) -> None:
    """Mouse on the Tk canvas -> intents for the chart thread (Tk y grows down, matplotlib's up)."""
    drag: dict[str, float] = {}

    def to_mpl(e: Any) -> tuple[float, float]:
        return float(e.x), float(height() - e.y)

    def motion(e: Any) -> None:
        view.point(to_mpl(e))
        wake()

    def leave(_e: Any) -> None:
        view.point(None)
        wake()

    def press(e: Any) -> None:
        drag["x"] = float(e.x)

    def dragged(e: Any) -> None:
        if "x" in drag:
            view.push("pan", float(e.x) - drag["x"])
            drag["x"] = float(e.x)
        view.point(to_mpl(e))
        wake()

    def release(_e: Any) -> None:
        drag.pop("x", None)

    def wheel(e: Any, direction: int = 0) -> None:
        up = direction > 0 or getattr(e, "delta", 0) > 0
        view.push("zoom", float(e.x), ZOOM_STEP if up else 1 / ZOOM_STEP)
        wake()

    def reset(_e: Any) -> None:
        view.push("reset")
        wake()

    widget.bind("<Motion>", motion)
    widget.bind("<Leave>", leave)
    widget.bind("<ButtonPress-1>", press)
    widget.bind("<B1-Motion>", dragged)
    widget.bind("<ButtonRelease-1>", release)
    widget.bind("<Double-Button-1>", reset)
    widget.bind("<MouseWheel>", wheel)                          # Windows, macOS
    widget.bind("<Button-4>", lambda e: wheel(e, 1))            # X11 wheel up
    widget.bind("<Button-5>", lambda e: wheel(e, -1))           # X11 wheel down


def resample_chart(data: Any, target: str) -> Any:
    """The engine's ChartData at `target` ("240", "D"): closed candles only (bot.market.timeframes),
    EMA 21/50 and Bollinger 20/2 computed on them. The bot's own interval: `data` unchanged."""
    if not target or data is None or target == str(data.interval):
        return data
    from bot.analysis import indicators as ind
    from bot.market.timeframes import resample

    frame = resample(data.candles, str(data.interval), target)
    c = frame["close"].to_numpy(dtype=float)
    if len(c) == 0:
        empty = np.asarray([], dtype=float)
        return replace(data, interval=target, candles=frame, ema21=empty, ema50=empty, bb_upper=empty,
                       bb_lower=empty)
    bb = ind.bollinger(c, 20, 2.0)
    return replace(data, interval=target, candles=frame, ema21=ind.ema(c, 21), ema50=ind.ema(c, 50),
                   bb_upper=bb[0], bb_lower=bb[2])


class Crosshair:
    """Dotted lines through the pointed-at candle (or point) and a read-out of its values."""

    def __init__(self, ax: Any) -> None:
        self.ax = ax
        self.vline = ax.axvline(0.0, color="#555555", lw=0.7, ls=":", zorder=7, visible=False)
        self.hline = ax.axhline(0.0, color="#555555", lw=0.7, ls=":", zorder=7, visible=False)
        self.text = ax.text(0.005, 0.99, "", transform=ax.transAxes, ha="left", va="top", fontsize=8,
                            family="DejaVu Sans Mono", zorder=8, visible=False,
                            bbox={"facecolor": "white", "alpha": 0.9, "edgecolor": "#c8ccd2", "pad": 3})
        self.shown = ""   # the read-out on the last frame (tests read it)

    def hide(self) -> None:
        for artist in (self.vline, self.hline, self.text):
            artist.set_visible(False)
        self.shown = ""

    def show(self, pointer: tuple[float, float] | None, t: np.ndarray,
             describe: Callable[[int, float], str]) -> None:
        """At the pointer (display pixels): the nearest of the times `t` (date numbers) that is in view."""
        ax = self.ax
        if pointer is None or len(t) == 0 or not ax.bbox.contains(*pointer):
            self.hide()
            return
        x, y = (float(v) for v in ax.transData.inverted().transform(pointer))
        i = int(np.argmin(np.abs(t - x)))
        self.vline.set_xdata([t[i], t[i]])
        self.hline.set_ydata([y, y])
        self.shown = describe(i, y)
        self.text.set_text(self.shown)
        for artist in (self.vline, self.hline, self.text):
            artist.set_visible(True)
