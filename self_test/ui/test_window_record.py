"""The window's record survives a restart: equity in candle time from the first candle, and the
closed trades, P&L and wallet back before Start (issue 18, item 1; issue 16, item 7).

Real window under Xvfb, real clicks, the real engine replaying the seed's real candles (Bybit is
a closed loopback port). Set UI_DOCS_SHOTS=dir to keep the screenshots docs/ui.md shows.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from bot.ui.dialogs import CLOSE_ALL, ScriptedDialogs
from self_test.ui.test_window import click, close_window, pump_for, pump_until, session_settings
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


def shot(display: str, root, name: str) -> None:
    """Keep a screenshot for docs/ui.md when UI_DOCS_SHOTS names a folder (after the charts' next frame)."""
    folder = os.environ.get("UI_DOCS_SHOTS")
    if folder and shutil.which("xwd"):
        pump_for(root, 2.0)
        screenshot_png(display, Path(folder) / name)


def test_first_session_draws_equity_in_candle_time_and_a_restart_shows_the_record(
        display: str, open_window, tmp_path: Path) -> None:
    from bot.engine.app import assemble

    settings = session_settings(tmp_path, STRATEGY="sma", TRAINING_ENABLED=False)
    dialogs = ScriptedDialogs(stop=[CLOSE_ALL])
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=dialogs)
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               30, "the engine to load")
    pump_until(root, lambda: v.status.values["equity"].cget("text") == "1,000.00 USDT", 10,
               "a fresh paper wallet's start balance before Start")
    v.charts.select_tab("Equity")
    pump_for(root, 0.5)
    click(v.controls.start_button)
    pump_until(root, lambda: ctl.engine.running, 30, "the engine to start")

    # A first session: the equity line grows from the first replayed candle, in candle time.
    pump_until(root, lambda: ctl.engine.snapshot().metrics.get("candles", 0) >= 40, 60, "40 replayed candles")
    pump_until(root, lambda: len(ctl.history.copy().time_ms) >= 20 and ctl.renderer.has_data.get("Equity"), 30,
               lambda: f"20 equity points on the chart (have {len(ctl.history.copy().time_ms)})")
    h = ctl.history.copy()
    now_ms = time.time() * 1000
    assert all(t < now_ms - 86_400_000 for t in h.time_ms), "equity points carry wall-clock times, not candle times"
    assert list(h.time_ms) == sorted(set(h.time_ms))
    line = ctl.renderer.figures["Equity"].equity
    pump_until(root, lambda: len(line.get_xydata()) >= 20, 10, "the drawn equity line to reach 20 points")
    assert np.isfinite(line.get_xydata()).all()
    shot(display, root, "after_first_session_equity.png")

    # A manual buy (real clicks), then Stop -> close all: a closed round trip in the journal. The
    # bot is paused first, and what the strategy holds by then (under load it may hold something)
    # is closed with the window's own button, so the buy is not refused as a second position.
    click(v.controls.pause_button)
    pump_until(root, lambda: ctl.engine.snapshot().status == "Paused", 30, "the bot to pause")
    held = lambda: {p.symbol for p in ctl.engine.snapshot().positions}  # noqa: E731
    pump_until(root, lambda: set(v.orders.position_symbols()) == held(), 10, "the positions table to catch up")
    if v.orders.positions.get_children():
        v.orders.symbol.set("BTCUSDT")
        click(v.orders.close_button)
        pump_until(root, lambda: not v.orders.positions.get_children()
                   and str(v.orders.buy_button.cget("state")) == "normal", 30, "the strategy's position to close")
    v.orders.symbol.set("BTCUSDT")
    v.orders.amount.set("50")
    click(v.orders.buy_button)
    pump_until(root, lambda: "filled" in v.orders.result.cget("text"), 30,
               lambda: f"the manual buy (shown: {v.orders.result.cget('text')!r})")
    click(v.controls.start_button)
    pump_until(root, lambda: not ctl.engine.running, 60, "the engine to stop")
    pump_until(root, lambda: v.controls.start_button.cget("text") == "Start Bot", 10, "the Start Bot button")
    trades_before = len(v.orders.trades.get_children())
    assert trades_before >= 1
    equity_after = v.status.values["equity"].cget("text")
    close_window(ctl)

    # Restart: before Start, the wallet, the closed trades, the P&L tab and the equity curve are back.
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=ScriptedDialogs())
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.past is not None, 30, "the record to be read before Start")
    assert not ctl.engine.running
    pump_until(root, lambda: len(v.orders.trades.get_children()) == trades_before, 10,
               lambda: f"{trades_before} closed trades listed (shown: {len(v.orders.trades.get_children())})")
    assert v.status.values["equity"].cget("text") == equity_after != "0.00 USDT"
    assert ctl.past.replay and "replay" in ctl.past.where
    h = ctl.history.copy()
    assert len(h.time_ms) >= 20 and len(h.trades) == trades_before
    pump_until(root, lambda: ctl.renderer.has_data.get("Equity"), 30, "the equity curve before Start")
    shot(display, root, "after_restart_equity.png")
    v.charts.select_tab("P&L")
    pump_until(root, lambda: ctl.renderer.has_data.get("P&L"), 30, "the P&L tab before Start")
    close_window(ctl)


def test_a_snapshot_before_the_first_candle_does_not_hide_the_candles_that_follow(btc_hourly) -> None:
    """The first-session bug, without timing luck: a snapshot with money but no candle yet (time
    now, 2026) used to become the first point, and every replayed (2017) candle after it was
    dropped as older. Now points are candle times only."""
    from bot.engine.snapshot import EngineSnapshot
    from bot.ui.history import SessionHistory

    h = SessionHistory()
    now_ms = int(time.time() * 1000)
    assert not h.record(EngineSnapshot(equity=1000.0, balance=1000.0, time_ms=now_ms, last_candle_ms=0))
    times = [int(t) for t in btc_hourly.index[:30]]
    for i, t in enumerate(times):
        h.record(EngineSnapshot(equity=1000.0 + i, balance=1000.0, time_ms=now_ms + i, last_candle_ms=t,
                                last_prices={"BTCUSDT": float(btc_hourly["close"].iloc[i])}))
    copy = h.copy()
    assert list(copy.time_ms) == times and copy.equity[-1] == 1029.0
    assert np.isfinite(copy.buy_hold).all()
