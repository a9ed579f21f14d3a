"""A chart a trader can work with (issue 18, item 2): wheel zoom, drag pan, a crosshair with the
candle's time, OHLC and indicator values, the 4 h / 1 d switch (closed candles resampled), the
pair switch, and the equity tab the same, all with real pointer events through the X server
while the replay runs, and the Tk thread never stalls for 100 ms.

UI_DOCS_SHOTS=dir keeps the zoomed chart with its crosshair for docs/ui.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bot.ui.dialogs import CLOSE_ALL, ScriptedDialogs
from self_test.ui.test_window import click, close_window, pump_for, pump_until, session_settings
from self_test.xserver import screenshot_png

pytestmark = [pytest.mark.gui, pytest.mark.skipif(shutil.which("xdotool") is None,
                                                  reason="real pointer events need xdotool")]


ROOT_WINDOW: list = []


def xdo(*args: str) -> None:
    """xdotool while the window's own loop runs (a blocked Tk thread would count as a stall)."""
    proc = subprocess.Popen(["xdotool", *args], env={**os.environ})
    pump_until(ROOT_WINDOW[0], lambda: proc.poll() is not None, 20, f"xdotool {' '.join(args)}")
    assert proc.returncode == 0, f"xdotool {args} failed"


def at(widget, fx: float, fy: float) -> tuple[str, str]:
    widget.update_idletasks()
    return (str(widget.winfo_rootx() + int(widget.winfo_width() * fx)),
            str(widget.winfo_rooty() + int(widget.winfo_height() * fy)))


def test_zoom_pan_crosshair_timeframes_and_pairs_with_real_pointer_events(display: str, open_window,
                                                                         tmp_path: Path, capsys) -> None:
    from bot.engine.app import assemble

    settings = session_settings(tmp_path, STRATEGY="sma", TRAINING_ENABLED=False)
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=ScriptedDialogs(stop=[CLOSE_ALL]))
    root, v = ctl.root, ctl.view
    ROOT_WINDOW[:] = [root]
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               30, "the engine to load")
    pump_for(root, 0.5)
    click(v.controls.start_button)
    price = ctl.renderer.figures["Price"]
    pump_until(root, lambda: len(price.wicks.get_segments()) >= 120, 60, "120 replayed candles on the chart")
    ctl.engine.pause()   # (candles still arrive; a paused bot opens nothing new)
    canvas = ctl.renderer.canvases["Price"].get_tk_widget()
    ctl.stall.reset()

    # Crosshair: the pointer over the chart shows the candle's time, OHLC and indicators.
    xdo("mousemove", "--sync", *at(canvas, 0.6, 0.5))
    pump_until(root, lambda: " O " in price.crosshair.shown and "EMA21" in price.crosshair.shown, 10,
               lambda: f"the crosshair read-out (shown: {price.crosshair.shown!r})")
    text = price.crosshair.shown
    assert "UTC" in text and " H " in text and " L " in text and " C " in text and "BB " in text
    assert price.crosshair.vline.get_visible()

    # Wheel up three notches: the time span shrinks around the pointer, prices refit.
    span0 = np.diff(price.ax.get_xlim())[0]
    for _ in range(3):
        xdo("click", "4")
    pump_until(root, lambda: price.view.xlim is not None and np.diff(price.ax.get_xlim())[0] < span0 * 0.6, 10,
               lambda: f"the zoom (span {np.diff(price.ax.get_xlim())[0]:.3f} of {span0:.3f} days)")
    shot = os.environ.get("UI_DOCS_SHOTS")
    if shot and shutil.which("xwd"):
        pump_for(root, 1.5)
        longest_before_shot = ctl.stall.longest_ms
        screenshot_png(display, Path(shot) / "after_chart_zoom_crosshair.png")
        ctl.stall.reset()   # the screenshot itself holds this thread; it is not the window's doing
        ctl.stall.longest_ms = longest_before_shot

    # Drag right: earlier candles come into view.
    x0 = price.view.xlim[0]
    x, y = at(canvas, 0.4, 0.5)
    xdo("mousemove", "--sync", x, y, "mousedown", "1")
    xdo("mousemove", "--sync", str(int(x) + 150), y)
    xdo("mousemove", "--sync", str(int(x) + 250), y, "mouseup", "1")
    pump_until(root, lambda: price.view.xlim is not None and price.view.xlim[0] < x0, 10, "the pan to earlier candles")

    # Double-click: the whole range again.
    xdo("click", "--repeat", "2", "--delay", "80", "1")
    pump_until(root, lambda: price.view.xlim is None, 10, "the whole range after a double-click")

    # 4 h and 1 d: closed candles resampled from the hourly ones.
    for label, days in (("4 h", 4 / 24), ("1 d", 1.0)):
        v.charts.timeframe_box.set(label)
        v.charts.timeframe_box.event_generate("<<ComboboxSelected>>")
        pump_until(root, lambda d=days: len(price._times) > 3 and abs(np.median(np.diff(price._times)) - d) < 1e-6,
                   20, f"{label} candles on the chart")
        assert ("4 h candles" if label == "4 h" else "daily candles") in price.title.get_text()
    v.charts.timeframe_box.set("bot's interval")
    v.charts.timeframe_box.event_generate("<<ComboboxSelected>>")
    pump_until(root, lambda: abs(np.median(np.diff(price._times)) - 1 / 24) < 1e-6, 20, "hourly candles again")

    # Another pair (replay has no ETHUSDT candles: the chart says so), and back.
    ctl.choose_pair("ETHUSDT")
    pump_until(root, lambda: price.title.get_text() == "ETHUSDT: no data" or price.title.get_text() == "ETHUSDT",
               10, lambda: f"the ETHUSDT chart (title {price.title.get_text()!r})")
    ctl.choose_pair("BTCUSDT")
    pump_until(root, lambda: price.title.get_text().startswith("BTCUSDT "), 10, "the BTCUSDT chart again")

    # The equity tab: the same crosshair and zoom.
    v.charts.select_tab("Equity")
    equity = ctl.renderer.figures["Equity"]
    ecanvas = ctl.renderer.canvases["Equity"].get_tk_widget()
    pump_until(root, lambda: ctl.renderer.has_data.get("Equity"), 20, "the equity chart")
    xdo("mousemove", "--sync", *at(ecanvas, 0.5, 0.5))
    pump_until(root, lambda: "equity" in equity.crosshair.shown, 10,
               lambda: f"the equity read-out (shown: {equity.crosshair.shown!r})")
    xdo("click", "4")
    pump_until(root, lambda: equity.view.xlim is not None, 10, "the equity zoom")

    longest = ctl.stall.longest_ms
    with capsys.disabled():
        print(f"\nchart interactions: longest Tk stall {longest:.1f} ms over {ctl.stall.beats} heartbeats "
              f"(its own CPU in the longest gap {ctl.stall.longest_cpu_ms:.1f} ms, {ctl.stall.stalls_over_50ms} stalls > 50 ms)")
    # docs/ui.md, "Measured": with more runnable processes than twice the cores, the machine (not
    # the window) can hold the Tk thread off a core; then the window's own work between two
    # heartbeats is what can be asserted.
    overloaded = os.getloadavg()[0] > 2 * (os.cpu_count() or 1)
    if overloaded and longest >= 100:
        assert ctl.stall.longest_cpu_ms < 50, f"the Tk thread worked {ctl.stall.longest_cpu_ms:.0f} ms without a break"
    else:
        assert longest < 100, f"the window froze for {longest:.0f} ms"
    close_window(ctl)
