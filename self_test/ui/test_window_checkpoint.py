"""The Training tab names the checkpoint the agent runs and draws its walk-forward record
(issue 14, item 6): the shipped default model, out of sample next to buy-and-hold, from the
engine's snapshot. Real window under Xvfb, real clicks, the real DQN strategy on replayed candles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.ui.dialogs import KEEP, ScriptedDialogs
from self_test.ui.test_window import click, close_window, pump_for, pump_until, session_settings
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


def test_training_tab_shows_the_checkpoint_in_use_and_its_walk_forward_equity(display: str, open_window,
                                                                               tmp_path: Path) -> None:
    from bot.engine.app import assemble

    settings = session_settings(tmp_path, STRATEGY="dqn", TRAINING_ENABLED=False)
    ctl = open_window(settings, app_factory=lambda: assemble(settings), dialogs=ScriptedDialogs(stop=[KEEP]))
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               60, "the engine to load")
    v.charts.select_tab("Training")
    click(v.controls.start_button)
    pump_until(root, lambda: (ctl.history.copy().checkpoint or {}).get("name") == "dqn-default.pt", 60,
               lambda: f"the shipped checkpoint in the snapshot (have {ctl.history.copy().checkpoint!r:.80})")
    fig = ctl.renderer.figures["Training"]
    pump_until(root, lambda: len(fig.wf_line.get_xydata()) >= 100, 30, "the walk-forward equity drawn")
    assert "dqn-default.pt: walk-forward BTCUSDT 1h" in fig.wf.get_title(loc="left")
    y = fig.wf_line.get_xydata()[:, 1]
    assert y[0] == pytest.approx(1.0) and len(fig.wf_bh.get_xydata()) == len(y)
    if os.environ.get("UI_DOCS_SHOTS"):
        pump_for(root, 1.5)   # the drawn figure reaches the Tk canvas
        screenshot_png(display, Path(os.environ["UI_DOCS_SHOTS"]) / "after_training_checkpoint.png")
    click(v.controls.start_button)
    pump_until(root, lambda: not ctl.engine.running, 60, "the engine to stop")
    close_window(ctl)
