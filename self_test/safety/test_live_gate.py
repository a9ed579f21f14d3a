"""No untrained agent with real money: the walk-forward gate on DQN checkpoints."""

from __future__ import annotations

from pathlib import Path

from bot.agent.checkpoints import CheckpointStore
from bot.safety.live_gate import dqn_live_refusal, judge, record_verdict
from self_test.conftest import make_settings


def rows(agent: float, hold: float, dsr: float) -> dict:
    return {"overall": {"agent": {"return_pct": agent, "deflated_sharpe": dsr},
                        "buy_and_hold": {"return_pct": hold, "deflated_sharpe": 0.5}}}


def test_the_gate_wants_profit_above_buy_and_hold_and_a_deflated_sharpe_of_095() -> None:
    assert judge(rows(12.0, 5.0, 0.97))[0]
    assert "lost money" in judge(rows(-1.0, -5.0, 0.99))[1]
    assert "did not beat buy-and-hold" in judge(rows(4.0, 5.0, 0.99))[1]
    assert "deflated Sharpe ratio 0.60" in judge(rows(12.0, 5.0, 0.6))[1]
    assert not judge({})[0]


def test_live_dqn_needs_the_newest_checkpoint_to_have_passed(tmp_path: Path) -> None:
    s = make_settings(tmp_path, DQN_SHIPPED_MODEL=False)     # a user's folder with no model at all
    assert "needs a trained checkpoint" in dqn_live_refusal(s)
    shipped = make_settings(tmp_path / "shipped")               # the shipped default: never judged by train
    assert "dqn-default.pt has not passed the walk-forward gate" in dqn_live_refusal(shipped)
    store = CheckpointStore(Path(s.data_dir) / "models")
    ckpt = store.save({"format": 1, "weights": [1.0, 2.0]}, 1000)
    assert "has not passed the walk-forward gate" in dqn_live_refusal(s)          # never judged
    record_verdict(ckpt, False, "the agent lost money out of sample (-3.0 % after fees)")
    assert "failed the walk-forward gate: the agent lost money" in dqn_live_refusal(s)
    record_verdict(ckpt, True, "out of sample +9.0 %")
    assert dqn_live_refusal(s) is None
    store.save({"format": 1, "weights": [1.5, 2.0]}, 2000)                   # learned on since: not judged
    assert "has not passed the walk-forward gate" in dqn_live_refusal(s)
