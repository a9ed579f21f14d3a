"""The centre chart tabs: matplotlib figures embedded with FigureCanvasTkAgg, drawn off the Tk thread.

An Agg render of a candlestick chart takes tens of milliseconds; done on the Tk thread it would
freeze the window once a second. So the figures belong to one chart thread: it fetches the data
(the engine's `chart_data`, the session history), updates the visible figure in place, renders
it to a pixel buffer, and hands the buffer over. The Tk thread only copies the finished pixels
into the canvas's PhotoImage (`blit`, a few milliseconds). Only the visible tab is redrawn, at
most about once a second, and only when its data changed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from typing import Any

import numpy as np
from matplotlib.backends import _backend_tk
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg

from bot.ui.chart_figures import EquityFigure, PnlFigure, PriceFigure, TrainingFigure
from bot.ui.chart_view import TIMEFRAMES, ChartView, bind_mouse, resample_chart
from bot.ui.history import SessionHistory

__all__ = ["ChartTabs", "ChartRenderer", "ThreadedCanvas", "TAB_NAMES"]

log = logging.getLogger(__name__)

TAB_NAMES = ("Price", "Equity", "P&L", "Training")
_MOUSE_EVENTS = ("<Motion>", "<Enter>", "<Leave>", "<Key>", "<KeyRelease>", "<Button-1>", "<Button-2>",
                 "<Button-3>", "<Button-4>", "<Button-5>", "<Double-Button-1>", "<Double-Button-2>",
                 "<Double-Button-3>", "<ButtonRelease-1>", "<ButtonRelease-2>", "<ButtonRelease-3>")


class ThreadedCanvas(FigureCanvasTkAgg):
    """A FigureCanvasTkAgg whose figure is rendered by the chart thread, never by the Tk thread."""

    def __init__(self, figure: Any, master: tk.Misc, renderer: "ChartRenderer",
                 view: ChartView | None = None) -> None:
        self._renderer = renderer
        self.pending_size: tuple[int, int] | None = None
        super().__init__(figure, master)
        # matplotlib's own mouse handlers would read the figure while the chart thread changes it:
        # they go; ours only note what the mouse did for the chart thread (bot/ui/chart_view.py).
        for seq in _MOUSE_EVENTS:
            self._tkcanvas.unbind(seq)
        if view is not None:
            bind_mouse(self._tkcanvas, view, lambda: renderer.wake(force=True),
                       height=lambda: self._photo_size[1] or self._tkcanvas.winfo_height())
        self._tkcanvas.configure(width=300, height=200, background="white")
        self._tkcanvas.delete(self._tkcanvas_image_region)
        self._tkcanvas_image_region = self._tkcanvas.create_image(0, 0, anchor="nw", image=self._tkphoto)
        self.painted = 0  # buffers shown so far (tests read it)
        self._photo_size = (0, 0)

    # The Tk backend calls these on the Tk thread; each only asks the chart thread for a frame.
    def draw(self) -> None:
        self._renderer.wake(force=True)

    def draw_idle(self) -> None:
        self._renderer.wake(force=True)

    def _update_device_pixel_ratio(self, event: Any = None) -> None:
        pass  # a DPI change would resize the figure under the chart thread; we render at fixed dpi

    def _resize_figure_for_canvas_size(self, width: int, height: int) -> None:
        if width > 1 and height > 1:
            self.pending_size = (int(width), int(height))
            self._renderer.wake(force=True)

    def apply_size(self) -> None:
        """Chart thread: the figure takes the canvas's size (before the data and the mouse are applied)."""
        size = self.pending_size
        if size is not None:
            dpi = self.figure.dpi
            self.figure.set_size_inches(size[0] / dpi, size[1] / dpi, forward=False)

    def render(self) -> np.ndarray:
        """Chart thread: apply a pending resize, render with Agg, return a copy of the pixels."""
        self.apply_size()
        FigureCanvasAgg.draw(self)
        return np.array(self.get_renderer().buffer_rgba(), copy=True)

    def paint(self, pixels: np.ndarray) -> None:
        """Tk thread: show a finished frame."""
        h, w = pixels.shape[:2]
        if self._photo_size != (w, h):
            self._tkphoto.configure(width=w, height=h)
            self._photo_size = (w, h)
        _backend_tk.blit(self._tkphoto, pixels, (0, 1, 2, 3))
        self.painted += 1


class ChartRenderer:
    """The chart thread: redraws the visible tab at most every `interval` seconds when its data moved."""

    def __init__(self, *, history: SessionHistory, engine: Callable[[], Any], interval: float = 1.0,
                 candles: int = 150) -> None:
        self.history = history
        self.engine = engine
        self.interval = interval
        self.candles = candles
        self.figures: dict[str, Any] = {"Price": PriceFigure(), "Equity": EquityFigure(), "P&L": PnlFigure(),
                                        "Training": TrainingFigure()}
        self.canvases: dict[str, ThreadedCanvas] = {}
        self.visible = "Price"     # set by the Tk thread
        self.symbol = ""           # set by the Tk thread
        self.timeframe = ""        # set by the Tk thread: "" the bot's interval, else "240", "D"
        self.results: queue.Queue[tuple[str, np.ndarray]] = queue.Queue()
        self.render_ms: list[float] = []     # recent render durations, for the docs' figures
        self.frames = 0
        self.has_data: dict[str, bool] = {}   # did the last frame of each tab show data (tests read it)
        self._signatures: dict[str, Any] = {}
        self._wake = threading.Event()
        self._force = False
        self._last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ui-charts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self, *, force: bool = False) -> None:
        """Redraw soon (tab switch, resize, pair change); `force` redraws even if data is unchanged."""
        if force:
            self._force = True
        self._wake.set()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            # Data changes are drawn at most once per interval; a forced redraw (resize, tab) waits
            # only for a short settle so a resize drag does not render every intermediate size.
            wait = (0.05 if self._force else self.interval) - (time.monotonic() - last)
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                if self._draw_visible():
                    last = time.monotonic()
                self._last_error = ""
            except Exception as exc:
                # Once per distinct failure, not once a second while it lasts.
                if repr(exc) != self._last_error:
                    log.exception("chart %s could not be drawn", self.visible)
                self._last_error = repr(exc)
                last = time.monotonic()

    def _draw_visible(self) -> bool:
        key, symbol = self.visible, self.symbol
        canvas = self.canvases.get(key)
        if canvas is None:
            return False
        force, self._force = self._force, False
        canvas.apply_size()
        figure = self.figures[key]
        if key == "Price":
            engine = self.engine()
            tf = self.timeframe
            data = engine.chart_data(symbol, n=self._candles_for(tf)) if engine is not None and symbol else None
            signature: Any = (symbol, tf, _price_signature(data))
            if not force and signature == self._signatures.get(key):
                return False
            self.has_data[key] = figure.update(symbol, resample_chart(data, tf))
        else:
            h = self.history.copy()
            signature = h.version
            if not force and signature == self._signatures.get(key):
                return False
            self.has_data[key] = figure.update(h)
        figure.interact()
        started = time.perf_counter()
        pixels = canvas.render()
        self.render_ms = (self.render_ms + [(time.perf_counter() - started) * 1000])[-50:]
        self._signatures[key] = signature
        self.results.put((key, pixels))
        self.frames += 1
        return True


    def _candles_for(self, timeframe: str) -> int:
        """Candles at the bot's interval that make `self.candles` of `timeframe` (the engine keeps 2000)."""
        if not timeframe:
            return self.candles
        from bot.market.timeframes import ratio

        engine = self.engine()
        try:
            k = ratio(str(engine.settings.CANDLE_INTERVAL), timeframe) if engine is not None else 1
        except Exception:   # a timeframe below the bot's interval: the bot's candles as they are
            k = 1
        return min(2000, self.candles * k)


def _price_signature(data: Any) -> Any:
    if data is None:
        return None
    frame = getattr(data, "candles", None)
    if frame is None or len(frame) == 0:
        return 0
    return (len(frame), int(frame.index[-1]), float(frame["close"].iloc[-1]),
            repr(getattr(data, "markers", ()))[-300:], repr(getattr(data, "stop_loss", None)),
            repr(getattr(data, "take_profit", None)))


class ChartTabs(ttk.Notebook):
    """The notebook of chart tabs, with the pair selector on the Price tab."""

    def __init__(self, master: tk.Misc, renderer: ChartRenderer) -> None:
        super().__init__(master)
        self.renderer = renderer
        self.on_pair: Callable[[str], None] = lambda symbol: None
        self.on_tab: Callable[[str], None] = lambda name: None
        self.pages: dict[str, ttk.Frame] = {}
        self._pairs: list[str] = []
        for name in TAB_NAMES:
            page = ttk.Frame(self)
            if name == "Price":
                bar = ttk.Frame(page, padding=(4, 2))
                bar.pack(fill="x")
                ttk.Label(bar, text="Pair").pack(side="left")
                self.pair = tk.StringVar()
                self.pair_box = ttk.Combobox(bar, textvariable=self.pair, width=14, state="readonly")
                self.pair_box.pack(side="left", padx=6)
                self.pair_box.bind("<<ComboboxSelected>>", lambda _e: self.on_pair(self.pair.get()))
                ttk.Label(bar, text="Candles").pack(side="left", padx=(10, 0))
                self.timeframe = tk.StringVar(value=next(iter(TIMEFRAMES)))
                self.timeframe_box = ttk.Combobox(bar, textvariable=self.timeframe, width=12, state="readonly",
                                                  values=list(TIMEFRAMES))
                self.timeframe_box.pack(side="left", padx=6)
                self.timeframe_box.bind("<<ComboboxSelected>>", lambda _e: self.set_timeframe(self.timeframe.get()))
            if name in ("Price", "Equity"):
                hint = ttk.Frame(page, padding=(4, 0)) if name == "Equity" else bar
                if name == "Equity":
                    hint.pack(fill="x")
                ttk.Label(hint, text="wheel zoom, drag pan, double-click all",
                          foreground="#8a8f98").pack(side="left", padx=8)
            canvas = ThreadedCanvas(renderer.figures[name].figure, page, renderer, view=renderer.figures[name].view)
            canvas.get_tk_widget().pack(fill="both", expand=True)
            renderer.canvases[name] = canvas
            self.add(page, text=name)
            self.pages[name] = page
        self.bind("<<NotebookTabChanged>>", self._tab_changed)

    def _tab_changed(self, _event: Any) -> None:
        name = self.current_tab()
        self.renderer.visible = name
        self.renderer.wake(force=True)
        self.on_tab(name)

    def current_tab(self) -> str:
        try:
            return self.tab(self.select(), "text")
        except tk.TclError:
            return TAB_NAMES[0]

    def select_tab(self, name: str) -> None:
        if name in self.pages:
            self.select(self.pages[name])

    def set_pairs(self, symbols: list[str]) -> None:
        if symbols != self._pairs:
            self._pairs = list(symbols)
            self.pair_box.configure(values=symbols)

    def set_timeframe(self, label: str) -> None:
        """The Price tab's candles: the bot's interval, 4 h or 1 d (closed candles resampled)."""
        if label in TIMEFRAMES and self.timeframe.get() != label:
            self.timeframe.set(label)
        target = TIMEFRAMES.get(label, "")
        if self.renderer.timeframe != target:
            self.renderer.timeframe = target
            self.renderer.figures["Price"].view.push("reset")   # another timeframe: the whole range
            self.renderer.wake(force=True)

    def show_pair(self, symbol: str) -> None:
        if self.pair.get() != symbol:
            self.pair.set(symbol)
        if self.renderer.symbol != symbol:
            self.renderer.symbol = symbol
            self.renderer.figures["Price"].view.push("reset")   # another pair: its whole range
            self.renderer.wake(force=True)

    def paint_results(self, limit: int = 4) -> int:
        """Tk thread: show finished frames (the newest per tab); returns how many were painted."""
        latest: dict[str, np.ndarray] = {}
        try:
            for _ in range(64):
                key, pixels = self.renderer.results.get_nowait()
                latest[key] = pixels
        except queue.Empty:
            pass
        for key, pixels in list(latest.items())[:limit]:
            self.renderer.canvases[key].paint(pixels)
        return len(latest)
