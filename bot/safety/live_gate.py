"""No untrained agent with real money: the walk-forward gate a DQN checkpoint must pass before
it may trade live.

`python -m bot train` judges the agent it saves on its out-of-sample walk-forward result
(`judge`) and records the verdict next to the checkpoint (`record_verdict`, in
models/walk_forward_gate.json, keyed by the checkpoint's file name and content hash, so a
checkpoint that learned on afterwards, online in paper, is a different agent that has not
passed). Live trading with the DQN asks `dqn_live_refusal` first and refuses with its one-line
reason; the analyst and the SMA baseline need no gate.

The gate: over all test windows together, after fees, the agent made money, made more than
buy-and-hold of the same windows, and its deflated Sharpe ratio (the chance its Sharpe beats
the best of the configurations tried; bot/analysis/metrics.py) is at least 0.95.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from bot.atomic import atomic_write_text

__all__ = ["judge", "record_verdict", "dqn_live_refusal", "GATE_FILE", "MIN_DEFLATED_SHARPE"]

GATE_FILE = "walk_forward_gate.json"
MIN_DEFLATED_SHARPE = 0.95


def judge(rows: dict[str, dict[str, dict[str, float]]]) -> tuple[bool, str]:
    """(passed, why) from a walk-forward report's rows ("overall" -> strategy -> metrics)."""
    overall = rows.get("overall", {})
    agent, hold = overall.get("agent"), overall.get("buy_and_hold")
    if not agent or not hold:
        return False, "the walk-forward report has no overall agent / buy-and-hold result"
    ret, hold_ret = float(agent["return_pct"]), float(hold["return_pct"])
    dsr = float(agent.get("deflated_sharpe", 0.0))
    if ret <= 0:
        return False, f"the agent lost money out of sample ({ret:+.1f} % after fees)"
    if ret <= hold_ret:
        return False, f"the agent ({ret:+.1f} %) did not beat buy-and-hold ({hold_ret:+.1f} %) out of sample"
    if not dsr >= MIN_DEFLATED_SHARPE:
        return False, (f"the agent's deflated Sharpe ratio {dsr:.2f} is below {MIN_DEFLATED_SHARPE} "
                       f"(its edge may be luck among the configurations tried)")
    return True, (f"out of sample {ret:+.1f} % after fees vs buy-and-hold {hold_ret:+.1f} %, deflated Sharpe "
                  f"{dsr:.2f}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verdicts(models_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((models_dir / GATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_verdict(checkpoint: Path, passed: bool, why: str, *, symbol: str = "", interval: str = "") -> None:
    """Write the gate's verdict on `checkpoint` into its folder's GATE_FILE (atomically)."""
    checkpoint = Path(checkpoint)
    verdicts = _verdicts(checkpoint.parent)
    verdicts[checkpoint.name] = {"sha256": _digest(checkpoint), "passed": bool(passed), "why": why,
                                 "symbol": symbol, "interval": interval, "time_ms": int(time.time() * 1000)}
    atomic_write_text(checkpoint.parent / GATE_FILE, json.dumps(verdicts, indent=2, sort_keys=True))


def dqn_live_refusal(settings: Any) -> str | None:
    """Why the DQN may not trade live (one line), or None when its newest checkpoint passed the gate."""
    from bot.agent.checkpoints import SHIPPED_MODEL, CheckpointStore

    models = Path(settings.data_dir) / "models"
    # the checkpoint the DQN strategy would load: the folder's newest, else the shipped default
    shipped = SHIPPED_MODEL if getattr(settings, "DQN_SHIPPED_MODEL", True) else None
    latest = CheckpointStore(models, fallback=shipped).latest()
    train = "train one with `python -m bot train --symbol BTCUSDT --train-until YYYY-MM-DD`"
    if latest is None:
        return f"live trading with the DQN needs a trained checkpoint that passed the walk-forward gate: none in {models}; {train}"
    verdict = _verdicts(models).get(latest.name)
    if not isinstance(verdict, dict) or verdict.get("sha256") != _digest(latest):
        return (f"live trading with the DQN refused: its checkpoint {latest.name} has not passed the walk-forward "
                f"gate (it was not judged by `python -m bot train`, or it learned on since); {train}")
    if not verdict.get("passed"):
        return f"live trading with the DQN refused: checkpoint {latest.name} failed the walk-forward gate: {verdict.get('why')}"
    return None
