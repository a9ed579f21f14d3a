"""The window's Lessons tab under a real X server: a real journal, a real lesson learnt by the
review pipeline from two real months of BTC (2018), announced on the engine's bus, listed with its
date and text, switched off and on again through the tab's button.

Helpers come from the window tests (Xvfb, pumping Tk's real loop, real clicks) and the lessons
tests (the analyst trading May-June 2018 through the review pipeline).
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from bot.strategies.lessons import lessons_text, parse_lessons
from bot.ui.dialogs import ScriptedDialogs
from self_test.strategies.test_lessons import _trade_two_months
from self_test.ui.test_window import click, close_window, pump_until, session_settings
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


def test_lessons_tab_lists_a_learnt_lesson_and_switches_it_off_and_on(display: str, open_window, tmp_path: Path,
                                                                     btc_hourly) -> None:
    from bot.engine.app import assemble
    from bot.engine.trading_engine import TradingEngine
    from bot.journal.store import Journal
    from bot.strategies.review import ReviewPipeline
    from bot.ui.lessons_panel import LESSONS_TAB

    settings = session_settings(tmp_path)
    journal = Journal.for_settings(settings)      # the paper record, state.db
    engine = TradingEngine(settings, journal=journal)
    ctl = open_window(settings, app_factory=lambda: assemble(settings, engine=engine), dialogs=ScriptedDialogs())
    root, v = ctl.root, ctl.view
    panel, keeper = v.lessons, ctl.lessons
    try:
        pump_until(root, lambda: ctl.engine is not None, 30, "the engine to load")
        assert [v.charts.tab(t, "text") for t in v.charts.tabs()][-1] == LESSONS_TAB
        v.charts.select_tab(LESSONS_TAB)
        pump_until(root, lambda: panel.shown is not None and keeper.reads >= 1, 10, "the first read of the journal")
        assert panel.lines() == [] and "state.db (the paper record" in panel.header.cget("text")
        assert str(panel.toggle_button.cget("state")) == "disabled"

        # From now on only the engine's announcement can bring the lesson in (no timed refresh).
        keeper.period_s = 3600.0
        reads = keeper.reads
        with cf.ThreadPoolExecutor(1) as pool:   # the pipeline works off the Tk thread, as in the engine
            trading = pool.submit(_trade_two_months, btc_hourly, settings, journal,
                                  ReviewPipeline(settings, journal=journal, bus=engine.bus))
            pump_until(root, trading.done, 60, "the analyst's two months of 2018 through the review pipeline")
            trading.result()
        (lesson,) = [lz for lz in parse_lessons(journal.lessons()) if lz.rule["kind"] == "tighten"]
        line = lessons_text([lesson])[0]
        pump_until(root, lambda: line in panel.lines(), 10,
                   lambda: f"the learnt lesson in the tab (rows {panel.lines()})")
        assert keeper.event_reads >= 1 and keeper.reads > reads
        assert re.match(rf"#{lesson.id} \[active\] 2018-0[5-6]-\d\d: short pullbacks in a choppy regime: \d+% win "
                        r"rate, -\d\.\d\d R on average over \d+ trades; require ADX > 25 and confidence >= 55$",
                        line), line
        assert "1 lesson(s), 1 active" in panel.header.cget("text")

        # Off through the tab's button (a real click): the journal's active lessons lose it.
        panel.select(lesson.id)
        pump_until(root, lambda: str(panel.toggle_button.cget("state")) == "normal"
                   and panel.toggle_button.cget("text") == "Switch off", 5, "the Switch off button")
        assert panel.detail.cget("text") == line
        click(panel.toggle_button)
        pump_until(root, lambda: lesson.id not in {r["id"] for r in journal.lessons(active_only=True)}, 10,
                   "the lesson to be switched off in the journal")
        off_line = lessons_text(parse_lessons(journal.lessons(active_only=False)), include_inactive=True)[0]
        assert off_line.startswith(f"#{lesson.id} [off] 2018-0")
        pump_until(root, lambda: panel.lines() == [off_line] and panel.toggle_button.cget("text") == "Switch on",
                   10, lambda: f"the tab to show it off (rows {panel.lines()})")
        assert "off" in panel.tree.item(str(lesson.id), "tags")
        assert f"lesson #{lesson.id} switched off" in panel.result.cget("text")
        assert "1 lesson(s), 0 active" in panel.header.cget("text")

        if shutil.which("xwd") is None:
            warnings.warn("xwd (x11-apps) is not installed: no screenshot of the Lessons tab", stacklevel=1)
        else:
            root.update_idletasks()   # Tk repaints in idle callbacks: let it show what was asserted
            rgb = screenshot_png(display, tmp_path / "ui_lessons.png")
            assert rgb.std() > 20 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50, "the screenshot is blank"

        # And on again: the analyst and the reviewers apply it from the next review on.
        pump_until(root, lambda: str(panel.toggle_button.cget("state")) == "normal", 5, "the Switch on button")
        click(panel.toggle_button)
        pump_until(root, lambda: lesson.id in {r["id"] for r in journal.lessons(active_only=True)}, 10,
                   "the lesson to be switched on again")
        pump_until(root, lambda: panel.lines() == [line], 10, lambda: f"the tab to show it active (rows {panel.lines()})")
    finally:
        close_window(ctl)
        journal.close()
