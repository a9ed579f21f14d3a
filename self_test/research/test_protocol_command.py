"""`python -m bot research` as a user types it, with tiny settings: the tables, JSON and PNG, the
seeds in worker processes, a file through --data, a bad variant refused in one line; then
`--make-model` writes the default checkpoint, and a DQN backtest starts from it and names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.market.seed import load_seed
from self_test.conftest import ROOT

TINY = ["--steps", "1200", "--evals", "2", "--envs", "8", "--option", "learning_starts=300",
        "--option", "buffer_size=6000", "--option", "batch_size=32"]


def bot(tmp_path: Path, *args: str, **env_values: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HISTORICAL_DATA_PATH=str(tmp_path / "data"), LOG_FILE=str(tmp_path / "bot.log"),
               BYBIT_BASE_URL="http://127.0.0.1:9", **env_values)
    return subprocess.run([sys.executable, "-m", "bot", "--env-file", str(tmp_path / "none.env"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_research_runs_seeds_in_worker_processes_and_writes_tables_json_and_png(tmp_path):
    out = tmp_path / "out"
    run = bot(tmp_path, "research", "--sets", "btcd", "--variants", "baseline,long_only", "--ensembles", "baseline",
              "--seeds", "2", "--folds", "3", "--workers", "2", "--learner", "autograd", "--out", str(out), *TINY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "### BTCUSDT daily: out of sample 2019-01-01 .. 2019-10-17, 3 folds, 2 seeds" in run.stdout
    assert "n/a: the analyst refuses daily candles" in run.stdout
    assert "Default chosen on validation spans only" in run.stdout
    rec = json.loads((out / "research.json").read_text())
    res = rec["datasets"]["BTCUSDT daily"]["results"]
    assert {"baseline", "long_only", "baseline+ens", "buy_and_hold", "sma_cross"} == set(res)
    assert res["long_only"]["test"]["seeds"] == 2 and len(res["long_only"]["per_seed"]["test"]) == 2
    assert rec["default"] in ("baseline", "long_only") and rec["settings"]["learner"] == "autograd"
    assert (out / "research.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "research.md").read_text().startswith("### BTCUSDT daily")


def test_research_takes_a_file_and_refuses_an_unknown_variant(tmp_path):
    csv = tmp_path / "ethusd_daily.csv"
    f = load_seed("ETHUSDT", "D")
    csv.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(
        f"{t},{o},{h},{lo},{c},{v}" for t, (o, h, lo, c, v) in
        zip(f.index, f[["open", "high", "low", "close", "volume"]].itertuples(index=False), strict=True)))
    run = bot(tmp_path, "research", "--data", str(csv), "--symbol", "ETHUSDT", "--variants", "baseline",
              "--ensembles", "", "--seeds", "1", "--folds", "3", "--workers", "1", "--no-plot", "--out",
              str(tmp_path / "out"), *TINY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "### ETHUSDT D (ethusd_daily.csv)" in run.stdout
    bad = bot(tmp_path, "research", "--sets", "ethd", "--variants", "baseline,nope", "--out", str(tmp_path / "o2"))
    assert bad.returncode == 2
    assert "unknown variant(s) ['nope']" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
    bad = bot(tmp_path, "research", "--sets", "ethd", "--option", "lerning_rate=0.1", "--out", str(tmp_path / "o3"))
    assert bad.returncode == 2 and "unknown DQN setting 'lerning_rate'; did you mean learning_rate?" in bad.stdout
    assert "research jobs" not in bad.stdout + bad.stderr          # refused before any work


def test_make_model_writes_the_default_and_a_dqn_backtest_starts_from_it(tmp_path):
    out = tmp_path / "out"
    run = bot(tmp_path, "research", "--sets", "btc1h", "--variants", "baseline", "--ensembles", "", "--seeds", "1",
              "--folds", "3", "--workers", "1", "--no-analyst", "--no-plot", "--out", str(out), *TINY)
    assert run.returncode == 0, run.stdout + run.stderr
    model = tmp_path / "data" / "models" / "dqn-default.pt"
    made = bot(tmp_path, "research", "--make-model", "--record", str(out / "research.json"), "--model", str(model))
    assert made.returncode == 0, made.stdout + made.stderr
    assert model.exists() and model.stat().st_size < 3_000_000
    bt = bot(tmp_path, "backtest", "--strategy", "dqn", "--start", "2019-09-01", "--end", "2019-09-10",
             "--no-plot", "--out", str(tmp_path / "bt"))
    assert bt.returncode == 0, bt.stdout + bt.stderr
    assert "dqn-default.pt" in bt.stdout + bt.stderr
    import torch
    meta = json.loads(torch.load(model, weights_only=True)["meta"])
    assert meta["variant"] == "baseline" and meta["walk_forward"]["dataset"] == "BTCUSDT 1h"
    assert len(meta["walk_forward"]["equity"]["equity"]) > 100


def test_a_later_run_merges_into_the_record_and_an_ensemble_default_ships_as_one_checkpoint(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--sets", "btcd", "--seeds", "2", "--folds", "3", "--workers", "1", "--no-plot", *TINY]
    run = bot(tmp_path, "research", "--variants", "long_only", "--ensembles", "", "--out", str(first), *common)
    assert run.returncode == 0, run.stdout + run.stderr
    record = first / "research.json"
    run = bot(tmp_path, "research", "--variants", "levels_long,filter_sma", "--ensembles", "levels_long",
              "--out", str(second), "--merge-into", str(record), *common)
    assert run.returncode == 0, run.stdout + run.stderr
    rec = json.loads(record.read_text())
    res = rec["datasets"]["BTCUSDT daily"]["results"]
    assert {"long_only", "levels_long", "levels_long+ens", "filter_sma", "buy_and_hold", "sma_cross"} == set(res)
    assert [r["command"].split()[-1] for r in rec["settings"]["runs"][1:]] == [TINY[-1]]
    assert "--merge-into" in rec["settings"]["runs"][-1]["command"]
    # levels and the filter cannot be served live: the default stays a design the bot can run
    assert rec["default"] == "long_only" and rec["settings"]["servable_default_candidates"] == ["long_only"]
    assert set(rec["selection"]) == {"long_only", "levels_long", "levels_long+ens", "filter_sma"}
    assert "| levels_long+ens |" in (first / "research.md").read_text()
    refused = bot(tmp_path, "research", "--variants", "long_only", "--ensembles", "", "--sets", "btcd", "--seeds", "1",
                  "--folds", "3", "--workers", "1", "--no-plot", "--out", str(tmp_path / "third"),
                  "--merge-into", str(record), *TINY)
    assert refused.returncode == 2 and "the runs differ in seed_list" in refused.stdout
    # an ensemble chosen as the default: make model trains its seeds and saves them as one checkpoint
    hourly = tmp_path / "hourly"
    run = bot(tmp_path, "research", "--sets", "btc1h", "--variants", "long_only", "--ensembles", "long_only",
              "--seeds", "2", "--folds", "3", "--workers", "2", "--no-analyst", "--no-plot", "--out", str(hourly),
              *TINY)
    assert run.returncode == 0, run.stdout + run.stderr
    rec = json.loads((hourly / "research.json").read_text())
    assert "long_only+ens" in rec["settings"]["servable_default_candidates"]
    rec["default"] = "long_only+ens"      # whichever won here: the ensemble path is what is tested
    ds = rec["datasets"]["BTCUSDT 1h"]
    ds["default_records"] = ds["candidate_records"].get("long_only+ens", ds.get("default_records"))
    (hourly / "research.json").write_text(json.dumps(rec))
    model = tmp_path / "data" / "models" / "dqn-default.pt"
    made = bot(tmp_path, "research", "--make-model", "--record", str(hourly / "research.json"), "--model", str(model))
    assert made.returncode == 0, made.stdout + made.stderr
    assert model.stat().st_size < 3_000_000
    import torch
    payload = torch.load(model, weights_only=True)
    assert payload["ensemble"] == 2
    meta = json.loads(payload["meta"])
    assert meta["variant"] == "long_only+ens" and meta["seeds"] == [1, 2]
    assert len(meta["walk_forward"]["equity"]["equity"]) > 100
    bt = bot(tmp_path, "backtest", "--strategy", "dqn", "--start", "2019-09-01", "--end", "2019-09-10",
             "--no-plot", "--out", str(tmp_path / "bt"))
    assert bt.returncode == 0, bt.stdout + bt.stderr
    assert "dqn-default.pt" in bt.stdout + bt.stderr
    from bot.strategies.dqn import DQNStrategy
    from self_test.conftest import make_settings
    strat = DQNStrategy(make_settings(tmp_path / "live", DQN_SHIPPED_MODEL=False), model_path=model)
    assert "dqn-default.pt" in strat.checkpoint_info()["summary"]
    assert "design long_only+ens seed 1" in strat.checkpoint_info()["summary"]
