"""The window: builds the Tk root and its panels, then hands them to the controller.

    status bar (connection, mode, bot state, UTC clock, equity, balance)
    control panel | centre tabs (Price, Equity, P&L, Training, Lessons) | manual order, positions, trades
    log panel

`build_app` is what `ui.py` and the tests call; it never blocks: the bot itself (the engine and
its Telegram notifier, `bot.engine.app`) is assembled on the command thread after the window is up.
"""

from __future__ import annotations

import logging
import sys
import tkinter as tk
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk
from typing import TYPE_CHECKING, Any

from bot.ui.charts import ChartRenderer, ChartTabs
from bot.ui.control_panel import ControlPanel
from bot.ui.controller import Controller
from bot.ui.dialogs import Dialogs, TkDialogs
from bot.ui.lessons_panel import LESSONS_TAB, LessonsPanel
from bot.ui.log_panel import LogPanel, QueueLogHandler
from bot.ui.orders_panel import OrdersPanel
from bot.ui.prefs import load_prefs, prefs_path
from bot.ui.status_bar import StatusBar

if TYPE_CHECKING:
    from bot.engine.app import App

__all__ = ["TerminalView", "build_app", "TITLE"]

TITLE = "AI Trading Terminal"
GIL_SWITCH_INTERVAL_S = 0.001
log = logging.getLogger("bot.ui")


def _styles(root: tk.Tk) -> None:
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")
    base = ("DejaVu Sans", 9)
    style.configure(".", font=base)
    style.configure("Treeview", rowheight=20, font=base)
    style.configure("Treeview.Heading", font=("DejaVu Sans", 9, "bold"))
    style.configure("TLabelframe.Label", font=("DejaVu Sans", 9, "bold"))
    style.configure("TNotebook.Tab", padding=(14, 4), font=("DejaVu Sans", 9, "bold"))
    for name, colour, active in (("Start", "#1f8f4e", "#23a55a"), ("Stop", "#c0392b", "#d94636"),
                                 ("Buy", "#1f8f4e", "#23a55a"), ("Sell", "#c0392b", "#d94636")):
        style.configure(f"{name}.TButton", foreground="white", background=colour,
                        font=("DejaVu Sans", 10 if name in ("Start", "Stop") else 9, "bold"))
        style.map(f"{name}.TButton", background=[("disabled", "#9aa0a6"), ("active", active)])


@dataclass
class TerminalView:
    """The panels of the window (widgets only)."""

    root: tk.Tk
    status: StatusBar
    controls: ControlPanel
    centre: ttk.Frame
    orders: OrdersPanel
    log_panel: LogPanel
    charts: Any = None
    lessons: Any = None

    def build_charts(self, renderer: ChartRenderer) -> None:
        self.charts = ChartTabs(self.centre, renderer)
        self.charts.pack(fill="both", expand=True)
        # The Lessons tab is a list, not a figure: the chart thread has no canvas for it, so it
        # draws nothing while it is the visible tab.
        self.lessons = LessonsPanel(self.charts)
        self.charts.add(self.lessons, text=LESSONS_TAB)
        self.charts.pages[LESSONS_TAB] = self.lessons


def _build_view(root: tk.Tk, settings: Any, handler: QueueLogHandler) -> TerminalView:
    status = StatusBar(root)
    status.pack(side="top", fill="x")
    panes = ttk.PanedWindow(root, orient="vertical")
    panes.pack(fill="both", expand=True)
    main = ttk.Frame(panes)
    controls = ControlPanel(main)
    controls.configure(width=230)
    controls.pack(side="left", fill="y")
    default_usdt = max(settings.MIN_ORDER_USDT, settings.PAPER_START_BALANCE * settings.POSITION_SIZE_PCT)
    orders = OrdersPanel(main, default_usdt=round(default_usdt, 2))
    orders.pack(side="right", fill="y")
    centre = ttk.Frame(main, padding=(0, 6, 0, 0))
    centre.pack(side="left", fill="both", expand=True)
    log_frame = ttk.LabelFrame(panes, text="Log", padding=2)
    log_panel = LogPanel(log_frame, handler)
    log_panel.pack(fill="both", expand=True)
    panes.add(main, weight=5)
    panes.add(log_frame, weight=1)
    return TerminalView(root=root, status=status, controls=controls, centre=centre, orders=orders,
                        log_panel=log_panel)


def _default_app_factory(settings: Any) -> Callable[[], App]:
    def make() -> App:
        # the engine and its parts: imported on the command thread, not while the window opens
        from bot.engine.app import assemble

        app = assemble(settings)
        if settings.DASHBOARD_ENABLED:   # the web dashboard on the window's engine; the app's shutdown stops it
            from bot.dashboard.server import start_dashboard
            from bot.errors import ConfigError

            try:
                start_dashboard(app)
            except ConfigError as exc:
                log.error("the web dashboard did not start: %s", exc)
        return app
    return make


def build_app(settings: Any, *, app_factory: Callable[[], App] | None = None,
              dialogs: Dialogs | None = None, root: tk.Tk | None = None,
              chart_interval: float = 1.0) -> Controller:
    """Build the window and its controller, and start polling. Run `controller.root.mainloop()`.
    `app_factory`: builds the bot (`bot.engine.app.App`: the engine and its notifier) on the
    command thread; default `assemble(settings)`."""
    # The Tk thread retakes the GIL after every Tcl call; with the engine thread busy, each retake
    # may wait one switch interval (5 ms by default). 1 ms keeps the window's worst case short
    # for a small cost in engine throughput; the old value comes back when the window closes.
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(old_interval, GIL_SWITCH_INTERVAL_S))
    root = root or tk.Tk()
    root.title(TITLE)
    root.minsize(1100, 700)
    _styles(root)

    handler = QueueLogHandler()
    logging.getLogger().addHandler(handler)

    def report(exc: type[BaseException], value: BaseException, tb: Any) -> None:
        # Tk calls this for an exception in any callback: log it and carry on.
        log.error("error in the window: %s\n%s", value, "".join(traceback.format_exception(exc, value, tb)))

    root.report_callback_exception = report
    path = prefs_path(settings)
    prefs = load_prefs(path)
    root.geometry(prefs.geometry)
    view = _build_view(root, settings, handler)
    controller = Controller(root, settings, view, dialogs=dialogs or TkDialogs(root),
                            app_factory=app_factory or _default_app_factory(settings),
                            prefs=prefs, prefs_file=path, chart_interval=chart_interval)
    controller.log_handler = handler

    def remove_handler(_event: Any = None) -> None:
        logging.getLogger().removeHandler(handler)
        sys.setswitchinterval(old_interval)

    root.bind("<Destroy>", lambda e: remove_handler() if e.widget is root else None, add="+")
    controller.start()
    return controller
