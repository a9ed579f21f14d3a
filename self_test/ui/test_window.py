"""The desktop window under a real X server (Xvfb), driving the real engine on replayed real candles.

No stand-ins: the window assembles the bot as `ui.py` does (`bot.engine.app.assemble`); Bybit is a closed loopback port (the
engine falls back to REPLAY of the seed candles at once) or the loopback fake Bybit (the live
balance in the confirmation). Dialogs are answered by `ScriptedDialogs`.

Set UI_SCREENSHOT=path to also keep the running window's screenshot there (docs/screenshot.png).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bot.log_setup import setup_logging
from bot.ui.dialogs import CLOSE_ALL, ScriptedDialogs
from bot.ui.log_panel import QueueLogHandler
from bot.ui.prefs import UiPrefs, load_prefs, save_prefs
from self_test.conftest import make_settings
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


# ----------------------------------------------------------------------------------------------
# helpers

def closed_port() -> int:
    """A loopback port nobody listens on: Bybit 'fails' at once, the engine falls back to REPLAY."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_settings(tmp_path: Path, **overrides):
    base = dict(REPLAY_CANDLE_SECONDS=0.05, BYBIT_BASE_URL=f"http://127.0.0.1:{closed_port()}",
                BYBIT_TIMEOUT=1.0, FALLBACK_SYMBOLS=("BTCUSDT",), TOP_PAIRS_COUNT=1, CANDLE_INTERVAL="60")
    base.update(overrides)
    settings = make_settings(tmp_path, **base)
    setup_logging(log_file=settings.log_path, level="INFO", console=False)
    return settings


def pump_until(root, predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str]) -> None:
    """Run Tk's own event loop until `predicate()` holds (checked every 10 ms); fail naming
    `what` after `timeout` seconds. The real loop, not update() + sleep: what the user gets."""
    deadline = time.monotonic() + timeout
    done = {"ok": predicate()}

    def check() -> None:
        try:
            done["ok"] = bool(predicate())
        except Exception:
            root.quit()
            raise
        if done["ok"] or time.monotonic() >= deadline:
            root.quit()
        else:
            root.after(10, check)

    if not done["ok"]:
        root.after(10, check)
        root.mainloop()   # also returns when the window is destroyed
        done["ok"] = done["ok"] or bool(predicate())
    if not done["ok"]:
        raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


def pump_for(root, seconds: float) -> None:
    """Run Tk's event loop for `seconds`."""
    root.after(int(seconds * 1000), root.quit)
    root.mainloop()


def close_window(ctl) -> None:
    ctl.request_close()
    pump_until(ctl.root, lambda: ctl._destroyed, 60, "the window to close")


def click(widget) -> None:
    """A real mouse click through the X server when xdotool exists, else Tk's invoke()."""
    if shutil.which("xdotool") is None:
        widget.invoke()
        return
    widget.update_idletasks()
    x = widget.winfo_rootx() + widget.winfo_width() // 2
    y = widget.winfo_rooty() + widget.winfo_height() // 2
    # `mousemove --sync` waits for the pointer to move: when it is already there (a second click on
    # the same button) it would wait for ever, so it only moves when it has to.
    here = subprocess.run(["xdotool", "getmouselocation", "--shell"], check=True, timeout=20, capture_output=True,
                          text=True, env={**os.environ}).stdout
    move = [] if f"X={x}\nY={y}\n" in here else ["mousemove", "--sync", str(x), str(y)]
    subprocess.run(["xdotool", *move, "click", "1"], check=True, timeout=20, env={**os.environ})


# ----------------------------------------------------------------------------------------------
# no display needed

def test_prefs_are_written_atomically_and_a_damaged_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ui_prefs.json"
    assert load_prefs(path) == UiPrefs()
    save_prefs(path, UiPrefs(geometry="1300x820+15+30", pair="ETHUSDT", tab="Training"))
    assert load_prefs(path) == UiPrefs(geometry="1300x820+15+30", pair="ETHUSDT", tab="Training")
    assert [p.name for p in path.parent.iterdir()] == ["ui_prefs.json"]  # no temp file left behind
    path.write_text('{"geometry": "huge", "pair": "eth/usdt", "tab": "Nope"}')
    assert load_prefs(path) == UiPrefs()  # each bad value falls back to its default
    path.write_text('{"geometry": "1300x8')  # torn write from some other tool
    assert load_prefs(path) == UiPrefs()
    assert path.with_suffix(".json.bad").read_text() == '{"geometry": "1300x8'


def test_log_handler_redacts_secrets_and_counts_what_it_drops() -> None:
    from bot.log_setup import add_secrets

    add_secrets(["sup3r-s3cret-value"])
    handler = QueueLogHandler(maxsize=2)
    logger = logging.getLogger("test_ui.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("key is %s", "sup3r-s3cret-value")
        logger.info("second")
        logger.info("third, dropped: the queue holds two")
    finally:
        logger.removeHandler(handler)
    first = handler.queue.get_nowait()
    assert first[0] == logging.WARNING and "sup3r" not in first[1] and "***" in first[1]
    assert handler.dropped == 1


def test_launchers_run_ui_py_from_the_project_venv(tmp_path: Path) -> None:
    """The .desktop file -> start.command -> .venv/bin/python ui.py chain, in a copy of the
    launchers with a recording interpreter (nothing is installed; the chain itself is real)."""
    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "My Terminal"   # a space in the path, as on real desktops
    (project / ".venv" / "bin").mkdir(parents=True)
    for name in ("start.command", "AI-Trading-Terminal.desktop", "requirements.txt"):
        shutil.copy2(root / name, project / name)
    assert os.access(root / "start.command", os.X_OK), "start.command must be executable"
    (project / "ui.py").write_text("")
    python = project / ".venv" / "bin" / "python"
    python.write_text('#!/bin/sh\necho "$PWD" "$@" > launched.txt\n')
    python.chmod(0o755)
    time.sleep(0.01)
    (project / ".venv" / ".runtime").touch()   # the venv is set up and newer than requirements.txt

    entry: dict[str, str] = {}
    for line in (project / "AI-Trading-Terminal.desktop").read_text().splitlines()[1:]:
        key, _, value = line.partition("=")
        entry[key] = value
    assert entry["Type"] == "Application" and entry["Name"] == "AI Trading Terminal"
    exec_line = entry["Exec"].replace("%k", f"'{project / 'AI-Trading-Terminal.desktop'}'")
    subprocess.run(exec_line, shell=True, check=True, timeout=30, cwd=tmp_path)
    assert (project / "launched.txt").read_text().split() == [*str(project).split(), "ui.py"]

    bat = (root / "start.bat").read_bytes()
    assert b"\r\n" in bat and b".venv\\Scripts\\pythonw.exe\" ui.py" in bat


def test_installed_menu_entry_runs_start_command_by_absolute_path(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, str(root / "ui.py"), "--install-launcher"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    entry = tmp_path / "home" / ".local" / "share" / "applications" / "ai-trading-terminal.desktop"
    lines = dict(line.split("=", 1) for line in entry.read_text().splitlines()[1:] if "=" in line)
    assert lines["Exec"] == f'"{root / "start.command"}"' and lines["Path"] == str(root)
    assert lines["Name"] == "AI Trading Terminal"


def test_ui_check_flag_loads_settings_and_modules(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["HISTORICAL_DATA_PATH"] = str(tmp_path / "data")
    env["LOG_FILE"] = str(tmp_path / "bot.log")
    out = subprocess.run([sys.executable, str(root / "ui.py"), "--check"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok:") and str(tmp_path / "data") in out.stdout
    env["LEVERAGE"] = "1000"
    bad = subprocess.run([sys.executable, str(root / "ui.py"), "--check"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "LEVERAGE" in bad.stderr


# ----------------------------------------------------------------------------------------------
# the window

def test_window_builds_and_live_needs_keys_then_a_confirmation(display: str, open_window, tmp_path: Path,
                                                               fake_bybit) -> None:
    from bot.engine.app import assemble
    from bot.engine.trading_engine import TradingEngine
    from bot.ui import TITLE

    # Without keys: live is refused with a clear message and the mode stays PAPER.
    settings = session_settings(tmp_path / "nokeys")
    dialogs = ScriptedDialogs()
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=dialogs)
    root = ctl.root
    try:
        assert root.title() == TITLE == "AI Trading Terminal"
        pump_until(root, lambda: ctl.engine is not None, 30, "the engine to load")
        assert [ctl.view.charts.tab(t, "text") for t in ctl.view.charts.tabs()] == ["Price", "Equity", "P&L",
                                                                                    "Training", "Lessons"]
        assert ctl.view.status.values["mode"].cget("text") == "PAPER"
        ctl.view.controls.live_radio.invoke()
        pump_for(root, 0.2)
        assert dialogs.asked and dialogs.asked[-1][0] == "error" and "BYBIT_API_KEY" in dialogs.asked[-1][1]
        assert ctl.selected_mode == "PAPER" and ctl.view.controls.mode.get() == "PAPER"

        # The log panel: coloured by level, capped in length, newest last.
        from bot.ui.log_panel import LogPanel
        panel = LogPanel(root, QueueLogHandler(), max_lines=50)
        log = logging.getLogger("test_ui.panel")
        log.addHandler(panel.handler)
        try:
            for i in range(120):
                log.log(logging.WARNING if i % 10 == 0 else logging.INFO, "line %d", i)
        finally:
            log.removeHandler(panel.handler)
        assert panel.drain() == 120
        lines = panel.contents().splitlines()
        assert len(lines) == 50 and lines[-1].endswith("line 119") and lines[0].endswith("line 70")
        assert panel.text.tag_ranges("warning") and panel.text.tag_ranges("info")
        panel.destroy()

        # Engine errors and restarts reach the status bar (errors in red) and the log panel.
        from bot.events import EventKind
        ctl.engine.bus.emit(EventKind.ERROR, "Bybit answered 10006: too many visits", level="ERROR")
        message = ctl.view.status.message
        pump_until(root, lambda: "10006" in message.cget("text"), 10, "the engine error in the status bar")
        assert message.cget("foreground") == "#ff4d4f"
        pump_until(root, lambda: "too many visits" in ctl.view.log_panel.contents(), 10, "the error in the log")
        ctl.engine.bus.emit(EventKind.RESTART, "restart 1 after a critical error", level="WARNING")
        pump_until(root, lambda: message.cget("text").startswith("engine restarted: restart 1"), 10,
                   "the restart in the status bar")

        # An exception inside a Tk callback is logged and the window carries on.
        def broken() -> None:
            raise ValueError("a deliberately broken callback")
        root.after(0, broken)
        pump_until(root, lambda: "a deliberately broken callback" in ctl.view.log_panel.contents(), 10,
                   "the callback error in the log panel")
        beats = ctl.stall.beats
        pump_until(root, lambda: ctl.stall.beats > beats + 5, 5, "the heartbeat after the error")
    finally:
        close_window(ctl)

    # With keys (the loopback fake Bybit's): the confirmation states the balance and the sizing rule;
    # "no" keeps paper, "yes" stores the consent and selects LIVE.
    fake_bybit.book.wallet = 2345.67
    keys = {"BYBIT_API_KEY": fake_bybit.api_key, "BYBIT_API_SECRET": fake_bybit.api_secret}
    settings = make_settings(tmp_path / "keys", environ=keys, BYBIT_BASE_URL=fake_bybit.url,
                             FALLBACK_SYMBOLS=("BTCUSDT",))
    dialogs = ScriptedDialogs(live=[False, True], override=["OVERRIDE"])  # a fresh record: the gate is unmet
    engine = TradingEngine(settings)
    ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=engine), dialogs=dialogs)
    root = ctl.root
    try:
        pump_until(root, lambda: ctl.engine is not None, 30, "the engine to load")
        ctl.view.controls.live_radio.invoke()
        pump_until(root, lambda: any(k == "confirm_live" for k, _ in dialogs.asked), 30, "the live confirmation")
        message = dialogs.asked[-1][1]
        assert "2,345.67 USDT" in message, message
        assert "5 % of equity" in message and "at least 10 USDT" in message
        assert "[ ] closed trades: 0 (needs >= 30)" in message and "1 of 6 met" in message  # drawdown 0 % is met
        assert ctl.selected_mode == "PAPER" and not engine.has_live_consent()
        # issue 16, item 3: a position a close could not get out of (journaled unclosed) is red
        from bot.exchange.bybit import BybitExchange
        from bot.journal.store import Journal

        fake_bybit.set_price("BTCUSDT", 30_000.0)
        BybitExchange.from_settings(settings).create_order("BTCUSDT", "Buy", 0.002, client_order_id="held-1")
        fake_bybit.book.wallet = 2345.67    # the balance the user sees, not it less the fee
        journal = Journal(Path(settings.data_dir) / "state.db")
        journal.set_state("unclosed_BTCUSDT", {"time_ms": 1, "reason": "close-all", "error": "HTTP 502"})
        journal.close()
        ctl.view.controls.live_radio.invoke()
        pump_until(root, lambda: ctl.selected_mode == "LIVE", 30, "LIVE to be selected after consent")
        assert engine.has_live_consent()
        # issue 16, item 7: before Start the window shows the wallet it will trade: Bybit's, through the engine
        pump_until(root, lambda: ctl.view.status.values["equity"].cget("text") == "2,345.67 USDT", 30,
                   lambda: f"the Bybit balance before Start (shown: {ctl.view.status.values['equity'].cget('text')})")
        assert ctl.past is not None and ctl.past.mode == "LIVE" and ctl.past.where == "your Bybit account"
        assert ctl.view.status.values["mode"].cget("text") == "LIVE"
        assert ctl.view.status.values["mode"].cget("foreground") == "#ff4d4f"  # LIVE in red
        table = ctl.view.orders.positions
        pump_until(root, lambda: table.exists("BTCUSDT"), 30, "the Bybit position in the table")
        assert table.item("BTCUSDT", "tags") == ["unclosed"] or table.item("BTCUSDT", "tags") == ("unclosed",)
        assert table.item("BTCUSDT", "text") == "⚠ BTCUSDT"
        assert str(table.tag_configure("unclosed", "background")) == "#fbd3d3"
        assert str(table.tag_configure("unclosed", "foreground")) == "#b00020"
        if os.environ.get("UI_DOCS_SHOTS"):   # docs/ui.md's picture of it
            root.update()
            screenshot_png(display, Path(os.environ["UI_DOCS_SHOTS"]) / "after_unclosed_position.png")
    finally:
        close_window(ctl)


def test_paper_session_trades_draws_and_stops_without_freezing(display: str, open_window, tmp_path: Path,
                                                               capsys) -> None:
    from bot.engine.app import assemble

    settings = session_settings(tmp_path)
    dialogs = ScriptedDialogs(stop=[CLOSE_ALL])
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=dialogs)
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               30, "the engine to load")
    pump_for(root, 0.5)  # let the window map before a real click lands on it
    painted_before = ctl.renderer.canvases["Price"].painted

    click(v.controls.start_button)
    pump_until(root, lambda: ctl.engine.running, 30, "the engine to start")
    price = ctl.renderer.figures["Price"]
    pump_until(root, lambda: len(price.wicks.get_segments()) >= 50
               and ctl.renderer.canvases["Price"].painted > painted_before, 60,
               lambda: f"the price chart to show replayed candles (engine: {ctl.engine.snapshot().status}, "
                       f"errors {ctl.engine.snapshot().errors[-3:]}, chart frames {ctl.renderer.frames})")
    pump_until(root, lambda: "REPLAY" in v.log_panel.contents(), 30, "REPLAY lines in the log panel")
    pump_until(root, lambda: v.status.values["connection"].cget("text") == "Offline-REPLAY", 30,
               "the status bar to say Offline-REPLAY")
    pump_until(root, lambda: v.orders.rows_seen > 0, 60, "the bot's positions in the table")
    # the candles on screen are the seed's real candles (same closes, same times)
    from bot.market.seed import load_seed
    seed = load_seed("BTCUSDT", "60")
    cd = ctl.engine.chart_data("BTCUSDT", n=20)
    assert np.allclose(seed.loc[cd.candles.index, "close"].to_numpy(), cd.candles["close"].to_numpy())

    # A busy session: 20 replayed candles a second, the agent learning, charts redrawing. The
    # heartbeat measures the Tk thread's longest stall over it.
    ctl.stall.reset()
    candles_before = ctl.engine.snapshot().last_candle_ms
    frames_before = ctl.renderer.frames
    for tab in ("Equity", "P&L", "Training", "Price"):
        frames = ctl.renderer.frames
        v.charts.select_tab(tab)
        pump_until(root, lambda f=frames, t=tab: ctl.renderer.frames > f and ctl.renderer.visible == t, 30,
                   f"the {tab} chart to be drawn")
        pump_for(root, 1.0)
        if tab in ("Equity", "P&L", "Price"):  # the learner may not have stepped yet: Training can be empty
            # P&L needs a closed trade: the shipped ensemble holds its positions longer than one second of replay
            pump_until(root, lambda t=tab: ctl.renderer.has_data.get(t), 60, f"the {tab} chart to be drawn with data")
    assert ctl.engine.snapshot().last_candle_ms > candles_before, "the replay did not advance"
    assert ctl.renderer.frames >= frames_before + 4, "the visible charts were not redrawn"
    longest, beats = ctl.stall.longest_ms, ctl.stall.beats
    render = np.median(ctl.renderer.render_ms)
    with capsys.disabled():
        print(f"\nUI longest stall over a busy session: {longest:.1f} ms "
              f"({beats} heartbeats, {ctl.stall.stalls_over_50ms} stalls > 50 ms; "
              f"median chart render off the Tk thread {render:.0f} ms)")
    assert beats > 100
    assert longest < 100, f"the window froze for {longest:.0f} ms"

    # The running window, as a picture (a test artefact; UI_SCREENSHOT=docs/screenshot.png keeps it).
    if shutil.which("xwd") is None:  # CI installs x11-apps; elsewhere the rest still runs
        warnings.warn("xwd (x11-apps) is not installed: no screenshot of the running window", stacklevel=1)
    else:
        shot = tmp_path / "ui_running.png"
        rgb = screenshot_png(display, shot)
        assert rgb.shape[0] >= 700 and rgb.shape[1] >= 1100
        assert rgb.std() > 20 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200, "the screenshot is blank"
        if os.environ.get("UI_SCREENSHOT"):
            shutil.copy(shot, os.environ["UI_SCREENSHOT"])

    # The Lessons tab reads the journal the running engine uses: a replay session has its own.
    header = v.lessons.header
    v.charts.select_tab("Lessons")
    pump_until(root, lambda: header.cget("text").startswith("replay_state.db (the running session's journal)"),
               10, lambda: f"the Lessons tab on the replay journal (shown: {header.cget('text')!r})")
    v.charts.select_tab("Price")

    # Pause (no new decisions), then a manual Buy through the same executor: a position in the table.
    v.controls.pause_button.invoke()
    pump_until(root, lambda: ctl.engine.snapshot().status == "Paused", 30, "the engine to pause")
    # a decision already under way when Pause was pressed may still open a position: wait until two
    # more candles went by paused, so what is open now stays as it is
    seen = ctl.engine.snapshot().metrics.get("candles", 0)
    pump_until(root, lambda: ctl.engine.snapshot().metrics.get("candles", 0) >= seen + 2, 30,
               "two candles while paused")
    pump_until(root, lambda: str(v.orders.buy_button.cget("state")) == "normal", 10, "the order buttons")
    def order_buttons_free() -> bool:  # the form is disabled while an order is on its way
        return str(v.orders.buy_button.cget("state")) == "normal"

    def held() -> set:
        return {p.symbol for p in ctl.engine.snapshot().positions}

    # the table refreshes on the window's poll: let it catch up with what the paused engine holds
    pump_until(root, lambda: set(v.orders.position_symbols()) == held(), 10,
               lambda: f"the positions table to show {held()} (shows {v.orders.position_symbols()})")
    for sym in sorted(held()):
        v.orders.symbol.set(sym)
        v.orders.close_button.invoke()
        pump_until(root, lambda s=sym: s not in v.orders.position_symbols() and order_buttons_free(), 30,
                   f"{sym} to close")
    v.orders.symbol.set("BTCUSDT")
    v.orders.amount.set("fifty")            # bad input: named, nothing sent
    v.orders.buy_button.invoke()
    assert "'fifty' is not a number" in v.orders.result.cget("text")
    v.orders.amount.set("1")                # below the minimum order: the engine's risk checks refuse it
    v.orders.buy_button.invoke()
    pump_until(root, lambda: order_buttons_free() and not v.orders.result.cget("text").endswith("sent ..."), 30,
               lambda: f"the refusal of a 1 USDT order (shown: {v.orders.result.cget('text')!r})")
    refusal = v.orders.result.cget("text")
    assert "filled" not in refusal and str(v.orders.result.cget("foreground")) == "#b00020", refusal
    assert "BTCUSDT" not in v.orders.position_symbols(), (
        f"positions {ctl.engine.snapshot().positions}, status {ctl.engine.snapshot().status}, "
        f"log tail {v.log_panel.contents()[-1500:]}")
    with capsys.disabled():
        print(f"manual 1 USDT order: {refusal}")
    trades_before = set(v.orders.trades.get_children())
    v.orders.amount.set("50")
    v.orders.buy_button.invoke()
    pump_until(root, lambda: "filled" in v.orders.result.cget("text"), 30,
               lambda: f"the manual order's result (shown: {v.orders.result.cget('text')!r})")

    def manual_position_shown() -> bool:
        # Paused, the replay still runs (a candle every 50 ms): the position's own stop may close it
        # before the table is refreshed; then its round trip is what the window shows.
        if "BTCUSDT" in v.orders.position_symbols():
            return True
        new = set(v.orders.trades.get_children()) - trades_before
        return any(k.startswith("BTCUSDT|") and v.orders.trades.set(k, "side") == "long"
                   and v.orders.trades.set(k, "why") in ("stop-loss", "take-profit") for k in new)

    pump_until(root, manual_position_shown, 30, "the manual position (or its stopped-out round trip) in the window")
    if "BTCUSDT" in v.orders.position_symbols():
        assert v.orders.positions.item("BTCUSDT")["values"][0] == "long"

    text = v.log_panel.contents()
    assert "error in the window" not in text and "keeps running" not in text, "a window callback failed"

    # Stop -> "close all": nothing stays open, in the engine or in the table. (Paused, the replay
    # still runs and a stop-loss may have closed the manual position: then buy again first.)
    if not ctl.poller.latest.positions:
        pump_until(root, order_buttons_free, 30, "the order form")
        v.orders.buy_button.invoke()
        pump_until(root, lambda: bool(ctl.poller.latest.positions), 30, "a position before the stop")
    v.controls.start_button.invoke()
    assert dialogs.asked[-1][0] == "ask_stop"
    # (the count is what the window knew at that instant; a stop-loss may close one meanwhile)
    assert re.search(r"\b\d+ position\(s\) are open in the paper wallet", dialogs.asked[-1][1])
    pump_until(root, lambda: not ctl.engine.running, 60, "the engine to stop")
    pump_until(root, lambda: not v.orders.position_symbols(), 10, "the positions table to empty")
    assert ctl.engine.snapshot().positions == ()
    # (the button follows when the stop command's future is polled: up to a tick after the thread ends)
    pump_until(root, lambda: v.controls.start_button.cget("text") == "Start Bot", 10, "the Start Bot button")
    v.charts.select_tab("Lessons")  # stopped: the paper record again
    pump_until(root, lambda: header.cget("text").startswith("state.db (the paper record"), 10,
               lambda: f"the Lessons tab on state.db (shown: {header.cget('text')!r})")

    v.charts.select_tab("Training")
    ctl.choose_pair("BTCUSDT")
    root.geometry("1300x820+10+20")
    pump_for(root, 0.3)
    close_window(ctl)
    saved = json.loads((settings.data_dir / "ui_prefs.json").read_text())
    assert saved["tab"] == "Training" and saved["pair"] == "BTCUSDT" and saved["geometry"].startswith("1300x820")

    # The next window comes back where the last one was.
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=ScriptedDialogs())
    try:
        pump_for(ctl.root, 0.5)
        assert ctl.view.charts.current_tab() == "Training"
        assert ctl.pair == "BTCUSDT"
        assert ctl.root.geometry().startswith("1300x820")
    finally:
        close_window(ctl)


def test_live_session_asks_before_closing_the_window_and_closes_all(open_window, tmp_path: Path, fake_bybit) -> None:
    """LIVE against the loopback fake Bybit (real pybit, signed requests; its clock walks through the
    seed's real daily candles): consent in the window, a manual Buy reaches Bybit, and closing the
    window asks keep / close all; "close all" leaves nothing open on the exchange."""
    import pandas as pd

    from bot.engine.app import assemble
    from bot.engine.trading_engine import TradingEngine
    from bot.market.bybit_klines import BybitKlineSource
    from bot.market.seed import load_seed
    from self_test.fakes.priced_market import PricedMarket

    keys = {"BYBIT_API_KEY": fake_bybit.api_key, "BYBIT_API_SECRET": fake_bybit.api_secret}
    settings = make_settings(tmp_path, environ=keys, CANDLE_INTERVAL="D", FALLBACK_SYMBOLS="BTCUSDT",
                             TOP_PAIRS_COUNT=1, STRATEGY="sma", BYBIT_BASE_URL=fake_bybit.url,
                             MARKET_POLL_SECONDS=0.1, TRAINING_ENABLED=False, BYBIT_TIMEOUT=2.0)
    setup_logging(log_file=settings.log_path, level="INFO", console=False)
    fake_bybit.set_klines("BTCUSDT", "D", load_seed("BTCUSDT", "D"))
    now = pd.Timestamp("2018-02-01", tz="UTC").timestamp() + 60


    def make_engine() -> TradingEngine:
        source = BybitKlineSource.from_settings(settings)
        source.clock = lambda: now
        return TradingEngine(settings, market=PricedMarket(settings, source=source, clock=lambda: now, fake=fake_bybit))

    dialogs = ScriptedDialogs(live=[True], override=["OVERRIDE"], close=[CLOSE_ALL])
    ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=make_engine()), dialogs=dialogs)
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None, 60, "the engine to load")
    v.controls.live_radio.invoke()
    pump_until(root, lambda: ctl.selected_mode == "LIVE", 30, "LIVE to be selected")
    v.controls.start_button.invoke()
    pump_until(root, lambda: ctl.engine.running and ctl.engine.snapshot().status == "Running", 60,
               lambda: f"the live session (errors: {ctl.engine.snapshot().errors[-3:]})")
    pump_until(root, lambda: v.status.values["connection"].cget("text") == "Connected"
               and v.status.values["mode"].cget("text") == "LIVE", 10, "Connected / LIVE in the status bar")
    v.orders.symbol.set("BTCUSDT")
    v.orders.amount.set("50")
    v.orders.buy_button.invoke()
    pump_until(root, lambda: "BTCUSDT" in v.orders.position_symbols(), 30,
               lambda: f"the live position in the table (order result: {v.orders.result.cget('text')!r})")
    assert any(p["size"] > 0 for p in fake_bybit.book.positions.values()), "the order did not reach Bybit"

    ctl.request_close()
    pump_until(root, lambda: ctl._destroyed, 60, "the window to close")
    assert [kind for kind, _ in dialogs.asked] == ["confirm_live", "confirm_override", "ask_close_window"]
    assert "LIVE" in dialogs.asked[-1][1] and "1 open position" in dialogs.asked[-1][1]
    assert not ctl.engine.running
    assert all(p["size"] == 0 for p in fake_bybit.book.positions.values()), "a live position was left open"


def test_the_status_bar_shows_the_bybit_stream_down_and_back(display: str, open_window, tmp_path: Path) -> None:
    """A paper session on LIVE candles pushed by the fake Bybit's kline WebSocket: a stalled stream
    reads Polling-REST in amber in the status bar, with the warning in the log panel; then Connected."""
    import pandas as pd

    from bot.engine.app import assemble
    from bot.engine.trading_engine import TradingEngine
    from bot.market.bybit_klines import BybitKlineSource
    from bot.market.feeds import BybitMarket
    from bot.market.seed import load_seed
    from self_test.fakes.bybit_server import FakeBybit
    from self_test.fakes.bybit_ws import FakeBybitStream

    frame = load_seed("BTCUSDT", "D")
    now = [pd.Timestamp("2018-02-01", tz="UTC").timestamp() + 60]
    with FakeBybit(clock=lambda: now[0]) as rest, FakeBybitStream(rest) as ws:
        rest.set_klines("BTCUSDT", "D", frame)
        settings = session_settings(tmp_path, CANDLE_INTERVAL="D", STRATEGY="sma", TRAINING_ENABLED=False,
                                    BYBIT_BASE_URL=rest.url, BYBIT_WS_URL=ws.url, BYBIT_WS_PING_SECONDS=0.5,
                                    BYBIT_WS_STALL_SECONDS=2.0, MARKET_POLL_SECONDS=0.2)

        def make_engine() -> TradingEngine:
            source = BybitKlineSource.from_settings(settings)
            source.clock = lambda: now[0]
            return TradingEngine(settings, market=BybitMarket(settings, source=source, clock=lambda: now[0]))

        ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=make_engine()))
        root, v = ctl.root, ctl.view
        pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
                   30, "the engine to load")
        v.controls.start_button.invoke()
        conn = v.status.values["connection"]
        pump_until(root, lambda: ws.subscribed("kline.D.BTCUSDT") and conn.cget("text") == "Connected", 30,
                   "Connected in the status bar, the kline stream subscribed")
        ws.stall()
        pump_until(root, lambda: conn.cget("text") == "Polling-REST", 30, "Polling-REST in the status bar")
        assert conn.cget("foreground") == "#f0b429"                                    # amber
        pump_until(root, lambda: "stream down" in v.log_panel.contents(), 10, "the warning in the log panel")
        if shutil.which("xwd") is not None:
            rgb = screenshot_png(display, tmp_path / "ui_stream_down.png")
            assert rgb.std() > 20, "the screenshot is blank"
            if os.environ.get("UI_STREAM_SCREENSHOT"):
                shutil.copy(tmp_path / "ui_stream_down.png", os.environ["UI_STREAM_SCREENSHOT"])
        pump_until(root, lambda: conn.cget("text") == "Connected", 30, "Connected again")
        close_window(ctl)


def test_the_status_bar_shows_the_private_stream_of_a_live_session(display: str) -> None:
    """Live: the account stream (fills, positions, wallet) beside the market's; down = amber."""
    import tkinter as tk

    from bot.engine.snapshot import EngineSnapshot
    from bot.ui.status_bar import StatusBar

    root = tk.Tk()
    try:
        bar = StatusBar(root)
        bar.pack()
        conn = bar.values["connection"]
        bar.update_from(EngineSnapshot(mode="LIVE", connection="Connected", account_stream="Connected"), running=True)
        assert conn.cget("text") == "Connected · account Connected" and conn.cget("foreground") == "#3ddc84"
        bar.update_from(EngineSnapshot(mode="LIVE", connection="Connected", account_stream="Polling-REST"),
                        running=True)
        assert conn.cget("text") == "Connected · account Polling-REST" and conn.cget("foreground") == "#f0b429"
        bar.update_from(EngineSnapshot(mode="PAPER", connection="Connected"), running=True)
        assert conn.cget("text") == "Connected"                       # paper: no private stream
    finally:
        root.destroy()
