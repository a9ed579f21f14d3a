"""Walk-forward evaluation on real candles: folds, baselines by hand, the agent never trains on
what it is tested on, the report files, and the `python -m bot train` command end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bot.agent.environment import MarketData
from bot.agent.self_learning import DQNConfig, SelfLearningBot
from bot.research.walk_forward import (
    Fold,
    evaluate_window,
    make_folds,
    record_trial,
    sma_actions,
    walk_forward,
)
from self_test.conftest import make_settings

TINY = DQNConfig(seed=2, n_envs=16, learning_starts=500, buffer_size=10_000)


def test_folds_cover_everything_after_the_date_without_overlap(btc_hourly):
    t = btc_hourly.index.to_numpy(np.int64)
    until = int(pd.Timestamp("2018-12-31 23:59:59", tz="UTC").value // 1_000_000)
    folds = make_folds(t, until, 3)
    assert t[folds[0].test_start] > until >= t[folds[0].test_start - 1]
    assert folds[-1].test_end == len(t) - 1
    for a, b in zip(folds[:-1], folds[1:], strict=True):
        assert b.test_start == a.test_end + 1
    with pytest.raises(ValueError, match="nothing to train on"):
        make_folds(t, int(t[0]) - 1, 3)
    with pytest.raises(ValueError, match="too few"):
        make_folds(t, int(t[-3]), 3)


def test_buy_and_hold_and_sma_pay_the_same_fees_by_hand(tmp_path, btc_hourly):
    s = make_settings(tmp_path, FEE_RATE=0.001, SLIPPAGE_BPS=5.0)
    frame = btc_hourly.iloc[:2000]
    data = MarketData.from_frames(frame, settings=s)
    fold = Fold(1, 1000, 1499, int(frame.index[1000]), int(frame.index[1499]))
    curves = evaluate_window(data, fold, settings=s, agent=None)
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    bh = curves["buy_and_hold"]
    entry = o[1000] * 1.0005                 # bought at the open of the first test candle
    assert len(bh.equity) == 501 and bh.equity[0] == 1.0
    assert bh.equity[-1] == pytest.approx(0.999 * c[1499] / entry, rel=1e-12)
    assert bh.fees == pytest.approx(0.001 + 0.0005, rel=1e-9) and bh.exposure.all()
    assert len(bh.trade_pnls) == 1          # still open at the end: counted at its marked value
    flat = curves["agent"]                  # no agent given: stays flat, pays nothing
    assert np.all(flat.equity == 1.0) and flat.fees == 0.0 and not flat.trade_pnls
    sma = curves["sma_cross"]
    changes = int(np.abs(np.diff(np.concatenate([[0], sma_actions(c, 20, 100)[999:1499]]))).sum())
    assert changes > 2 and len(sma.trade_pnls) == (changes + 1) // 2


def test_sma_baseline_is_causal(btc_hourly):
    c = btc_hourly["close"].to_numpy()[:3000]
    edited = c.copy()
    edited[2000:] = btc_hourly["close"].to_numpy()[15000:16000]   # another real stretch as "future"
    np.testing.assert_array_equal(sma_actions(c, 20, 100)[:2000], sma_actions(edited, 20, 100)[:2000])
    assert not np.array_equal(sma_actions(c, 20, 100)[2000:], sma_actions(edited, 20, 100)[2000:])


class RecordingAgent(SelfLearningBot):
    """The real agent, remembering the newest candle of every training call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen_until: list[int] = []

    def train(self, frames, steps, **kw):
        self.seen_until.append(int(frames.time_ms.max()))
        return super().train(frames, steps, **kw)


def test_walk_forward_trains_only_on_the_past_and_writes_the_report(tmp_path, btc_hourly):
    s = make_settings(tmp_path)
    frame = btc_hourly.iloc[:5200]
    agents = []

    def factory():
        agents.append(RecordingAgent(s, config=TINY))
        return agents[-1]

    rep = walk_forward(frame, settings=s, symbol="BTCUSDT", interval="60", train_until="2017-12-15", folds=2,
                       agent_factory=factory, steps_first=2_000, steps_per_fold=500, n_trials=4, progress=False)
    assert len(agents) == 1 and len(rep.folds) == 2
    for fold, seen in zip(rep.folds, agents[0].seen_until, strict=True):
        assert seen < fold.start_ms, "the agent must never train on its test window"
    assert set(rep.rows) == {"fold 1", "fold 2", "overall"}
    for period in rep.rows.values():
        assert set(period) == {"agent", "buy_and_hold", "sma_cross"}
        for row in period.values():
            for key in ("return_pct", "sharpe", "sortino", "max_drawdown_pct", "trades", "win_rate_pct",
                        "profit_factor", "fees", "deflated_sharpe"):
                assert key in row
    r1, r2 = (rep.rows[f"fold {k}"]["buy_and_hold"]["return_pct"] / 100 for k in (1, 2))
    assert rep.rows["overall"]["buy_and_hold"]["return_pct"] / 100 == pytest.approx((1 + r1) * (1 + r2) - 1, abs=1e-5)
    assert rep.rows["overall"]["agent"]["n_trials"] == 4 and rep.rows["overall"]["buy_and_hold"]["n_trials"] == 1
    paths = rep.write(tmp_path / "reports")
    data = json.loads(paths["json"].read_text())
    assert data["results"]["overall"]["agent"]["trades"] == rep.rows["overall"]["agent"]["trades"]
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "| overall | buy_and_hold |" in rep.table()


def test_trial_registry_counts_distinct_configurations(tmp_path):
    assert record_trial(tmp_path, "BTCUSDT", "aaa") == 1
    assert record_trial(tmp_path, "BTCUSDT", "aaa") == 1
    assert record_trial(tmp_path, "BTCUSDT", "bbb") == 2
    assert record_trial(tmp_path, "ETHUSDT", "aaa") == 1


def test_train_command_end_to_end(tmp_path, monkeypatch, capsys):
    from bot.__main__ import main

    monkeypatch.setenv("HISTORICAL_DATA_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_FILE", str(tmp_path / "logs" / "bot.log"))
    code = main(["--env-file", str(tmp_path / "none.env"), "train", "--symbol", "BTCUSDT",
                 "--train-until", "2018-12-31", "--folds", "2", "--steps", "1500", "--steps-per-fold", "500",
                 "--envs", "16", "--out", str(tmp_path / "reports")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| overall | agent |" in out and "| overall | sma_cross |" in out
    report = json.loads((tmp_path / "reports" / "walk_forward_BTCUSDT_60.json").read_text())
    assert report["train_until"] == "2018-12-31" and len(report["folds"]) == 2
    assert report["folds"][0]["start"].startswith("2019-01-01")
    assert (tmp_path / "reports" / "walk_forward_BTCUSDT_60.png").exists()
    assert list((tmp_path / "data" / "models").glob("dqn-*.pt")), "the trained agent is saved"
    # judged by the walk-forward gate live trading with the DQN asks for (this tiny run does not pass it)
    gate = json.loads((tmp_path / "data" / "models" / "walk_forward_gate.json").read_text())
    (verdict,) = gate.values()
    assert "walk-forward gate" in out and verdict["passed"] == ("walk-forward gate PASSED" in out)
    assert main(["--env-file", str(tmp_path / "none.env"), "train", "--train-until", "not-a-date"]) == 2


def test_validation_candles_are_held_out_of_training(tmp_path, btc_hourly):
    s = make_settings(tmp_path)
    frame = btc_hourly.iloc[:5200]
    agents = []

    def factory():
        agents.append(RecordingAgent(s, config=TINY))
        return agents[-1]

    rep = walk_forward(frame, settings=s, symbol="BTCUSDT", interval="60", train_until="2017-12-15", folds=2,
                       agent_factory=factory, steps_first=1_500, steps_per_fold=500, progress=False,
                       validation=0.25)
    for fold, seen in zip(rep.folds, agents[0].seen_until, strict=True):
        held_out = int(0.25 * fold.test_start)
        assert seen == int(frame.index[fold.test_start - held_out - 1])
    assert rep.settings["validation"] == 0.25
