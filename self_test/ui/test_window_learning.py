"""Learning carries over a restart (issue 18, item 4): the agent checkpoints every N learner steps
and on Stop; the next window shows its Training-tab curves before Start, says which checkpoint
the agent resumes from, and the agent starts with the same epsilon and step count.

Real window under Xvfb, real clicks, the real DQN agent (a small replay buffer so it learns within
seconds) on the seed's real candles replayed. UI_DOCS_SHOTS=dir keeps the restarted Training tab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from bot.ui.dialogs import KEEP, ScriptedDialogs
from self_test.ui.test_window import click, close_window, pump_for, pump_until, session_settings
from self_test.xserver import screenshot_png

pytestmark = pytest.mark.gui


def test_a_restart_resumes_epsilon_steps_and_curves_and_names_the_checkpoint(display: str, open_window,
                                                                             tmp_path: Path) -> None:
    from bot.agent.self_learning import DQNConfig, SelfLearningBot
    from bot.engine.app import assemble
    from bot.strategies.dqn import DQNStrategy

    settings = session_settings(tmp_path, STRATEGY="dqn", TRAINING_ENABLED=True, CHECKPOINT_EVERY=10,
                                REPLAY_CANDLE_SECONDS=0.02)
    agent = SelfLearningBot(settings, config=DQNConfig(seed=3, learning_starts=48, batch_size=16, train_every=1,
                                                       buffer_size=5_000, online_decay_steps=400))
    strategy = DQNStrategy(settings, agent=agent)
    ctl = open_window(settings, app_factory=lambda: assemble(settings, strategy=strategy),
                      dialogs=ScriptedDialogs(stop=[KEEP]))
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.engine is not None and str(v.controls.start_button.cget("state")) == "normal",
               60, "the engine to load")
    pump_for(root, 0.3)
    click(v.controls.start_button)
    pump_until(root, lambda: agent.gradient_steps >= 25 and len(ctl.history.copy().steps) >= 10, 120,
               lambda: f"25 learner steps (have {agent.gradient_steps}, env steps {agent.env_steps})")
    models = settings.data_dir / "models"
    assert list(models.glob("dqn-*.pt")), "no checkpoint every CHECKPOINT_EVERY learner steps"
    click(v.controls.start_button)   # Stop: keep positions; the stop writes a checkpoint
    pump_until(root, lambda: not ctl.engine.running, 60, "the engine to stop")
    steps, epsilon = agent.gradient_steps, agent.epsilon
    newest = sorted(models.glob("dqn-*.pt"))[-1].name
    curve = json.loads((models / "learner_curve.json").read_text())
    assert int(curve[-1][0]) == steps and len(curve) >= 10
    close_window(ctl)

    # The next window: before Start, the curves and the checkpoint; after Start, the same agent.
    ctl = open_window(settings, app_factory=lambda: assemble(settings, strategy="dqn"), dialogs=ScriptedDialogs())
    root, v = ctl.root, ctl.view
    pump_until(root, lambda: ctl.past is not None, 60, "the record before Start")
    label = v.controls.learner_label
    pump_until(root, lambda: label.cget("text") == f"resumes {newest}, {steps} learner steps, epsilon {epsilon:.3f}", 10,
               lambda: f"the checkpoint named before Start (shown: {label.cget('text')!r})")
    assert len(ctl.history.copy().steps) == len(curve)
    v.charts.select_tab("Training")
    pump_until(root, lambda: ctl.renderer.has_data.get("Training"), 30, "the Training curves before Start")
    if os.environ.get("UI_DOCS_SHOTS") and shutil.which("xwd"):
        pump_for(root, 1.5)
        screenshot_png(display, Path(os.environ["UI_DOCS_SHOTS"]) / "after_restart_training.png")
    click(v.controls.start_button)
    said = re.compile(rf"agent resumed from checkpoint {re.escape(newest)}: (\d+) learner steps, epsilon ([\d.]+)")
    pump_until(root, lambda: said.search(v.log_panel.contents()), 60,
               "the log to say which checkpoint the agent resumed from")
    got_steps, got_eps = said.search(v.log_panel.contents()).groups()
    assert int(got_steps) == steps and got_eps == f"{epsilon:.3f}"
    pump_until(root, lambda: ctl.engine.snapshot().learner.get("steps", 0) >= steps, 30,
               "the step count to carry on from the checkpoint")
    close_window(ctl)
