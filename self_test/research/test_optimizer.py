"""The optimiser: grid coverage, a GA that finds a known optimum, resume after an interruption
(in process and by really killing the CLI), the fold objective on real candles, and the files."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.errors import ConfigError
from bot.research.objective import FoldObjective
from bot.research.optimizer import (
    Param,
    ParameterOptimizer,
    load_best_params,
    load_space,
    save_best_params,
)
from self_test.conftest import ROOT, wait_for

SPACE = [Param("fast", "int", low=4, high=16, step=4), Param("slow", "int", low=20, high=60, step=20),
         Param("atr_stop", "float", low=1.0, high=3.0, grid_points=3), Param("take_profit", "choice", values=(None, 4.0))]


def bowl(params: dict) -> float:
    """A known optimum for the search logic itself: fast=12, slow=40, atr_stop=2.2, take_profit=4."""
    return -((params["fast"] - 12) ** 2 + (params["slow"] - 40) ** 2 / 10 + 10 * (params["atr_stop"] - 2.2) ** 2
             + (0 if params["take_profit"] == 4.0 else 3))


@pytest.fixture(scope="module")
def search_frame(btc_hourly):
    i = int(np.searchsorted(btc_hourly.index, 1546300800000))  # 2019-01-01
    return btc_hourly.iloc[i:i + 2000]


def test_grid_visits_every_point_once():
    seen = []

    def objective(p):
        seen.append(tuple(p.values()))
        return bowl(p)

    res = ParameterOptimizer(SPACE, objective, method="grid", progress=False).run()
    grid = list(itertools.product(*(p.grid() for p in SPACE)))
    assert len(grid) == 4 * 3 * 3 * 2
    assert sorted(seen, key=repr) == sorted(grid, key=repr)   # every point, none twice
    assert res.n_trials == len(grid) and res.completed
    assert res.best.params == {"fast": 12, "slow": 40, "atr_stop": 2.0, "take_profit": 4.0}
    assert [t.score for t in res.trials] == sorted((t.score for t in res.trials), reverse=True)


def test_ga_finds_the_known_optimum_and_respects_types():
    space = [Param("fast", "int", low=2, high=30), Param("slow", "int", low=10, high=100, step=5),
             Param("atr_stop", "float", low=0.5, high=5.0, decimals=2), Param("take_profit", "choice", values=(None, 4.0, 8.0))]
    res = ParameterOptimizer(space, bowl, method="ga", population=30, generations=25, seed=3, progress=False).run()
    b = res.best.params
    assert abs(b["fast"] - 12) <= 1 and abs(b["slow"] - 40) <= 5 and abs(b["atr_stop"] - 2.2) < 0.3
    assert b["take_profit"] == 4.0
    for t in res.trials:
        assert isinstance(t.params["fast"], int) and 2 <= t.params["fast"] <= 30
        assert t.params["slow"] % 5 == 0 and 0.5 <= t.params["atr_stop"] <= 5.0
        assert t.params["take_profit"] in (None, 4.0, 8.0)
    assert res.history[-1]["best"] >= res.history[0]["best"]


def test_random_search_is_reproducible():
    a = ParameterOptimizer(SPACE, bowl, method="random", samples=25, seed=11, progress=False).run()
    b = ParameterOptimizer(SPACE, bowl, method="random", samples=25, seed=11, progress=False).run()
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_fold_objective_scores_real_backtests(settings, search_frame):
    obj = FoldObjective(settings, "sma", search_frame, folds=4)
    score, info = obj({"fast": 10, "slow": 40, "atr_stop": 2.0, "take_profit": None})
    assert len(info["fold_sharpes"]) == 4 and info["trades"] > 10
    assert score == pytest.approx(np.mean(info["fold_sharpes"]), abs=1e-3)
    with pytest.raises(ValueError, match="shorter than slow"):
        obj({"fast": 50, "slow": 20, "atr_stop": 2.0, "take_profit": None})
    # an invalid combination is a -inf trial, not a crash of the search
    res = ParameterOptimizer([Param("fast", "choice", values=(10, 50)), Param("slow", "choice", values=(20,))],
                             obj, method="grid", progress=False).run()
    assert res.trials[-1].score == float("-inf") and "error" in res.trials[-1].info


def test_interrupted_ga_resumes_to_the_same_result(tmp_path, settings, search_frame):
    obj = FoldObjective(settings, "sma", search_frame, folds=2)
    kw = dict(method="ga", population=10, generations=6, seed=5, progress=False)
    unbroken = ParameterOptimizer(SPACE, obj, **kw).run()
    ckpt = tmp_path / "ga.pkl"
    first = ParameterOptimizer(SPACE, obj, checkpoint=ckpt, **kw).run(stop_after=3)
    assert not first.completed and first.generations == 3
    assert pickle.loads(ckpt.read_bytes())["gen"] == 3
    calls = []

    def counting(p):
        calls.append(p)
        return obj(p)

    resumed = ParameterOptimizer(SPACE, counting, checkpoint=ckpt, **kw).run()
    assert resumed.completed and resumed.generations == 6
    assert [(t.params, t.score) for t in resumed.trials] == [(t.params, t.score) for t in unbroken.trials]
    assert 0 < len(calls) < unbroken.evaluations   # the first three generations were not recomputed
    # a checkpoint of another search is refused, not silently mixed in
    with pytest.raises(ConfigError, match="different search"):
        ParameterOptimizer(SPACE, obj, checkpoint=ckpt, **{**kw, "seed": 6}).run()


def test_parallel_search_gives_the_same_result(settings, search_frame):
    obj = FoldObjective(settings, "sma", search_frame, folds=2)
    kw = dict(method="ga", population=8, generations=2, seed=9, progress=False)
    one = ParameterOptimizer(SPACE, obj, jobs=1, **kw).run()
    two = ParameterOptimizer(SPACE, obj, jobs=2, **kw).run()
    assert [(t.params, t.score) for t in one.trials] == [(t.params, t.score) for t in two.trials]


def write_space(path: Path, **extra) -> Path:
    body = {"strategy": "sma", "symbol": "BTCUSDT", "interval": "60", "start": "2019-01-01", "end": "2019-04-01",
            "folds": 2, "holdout": 0.25,
            "params": {"fast": {"type": "int", "low": 4, "high": 20}, "slow": {"type": "int", "low": 25, "high": 80},
                       "atr_stop": {"type": "float", "low": 1.0, "high": 4.0}}, **extra}
    import yaml
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def test_space_file_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        load_space(write_space(tmp_path / "a.yaml", colour="blue"))
    bad = write_space(tmp_path / "b.yaml")
    bad.write_text(bad.read_text().replace("type: int", "type: integer", 1))
    with pytest.raises(ConfigError, match="integer"):
        load_space(bad)
    sp = load_space(ROOT / "examples" / "space_sma.yaml")
    assert sp.strategy == "sma" and {p.name for p in sp.params} >= {"fast", "slow", "atr_stop"}


def test_best_params_file_round_trips(tmp_path, settings):
    from bot.strategies import get_strategy
    p = save_best_params(tmp_path / "best.json", strategy="sma", params={"fast": 8, "slow": 50, "atr_stop": 2.5},
                         score=float("inf"))
    assert json.loads(p.read_text())["score"] is None   # JSON has no infinity
    name, opts = load_best_params(p)
    strat = get_strategy(name, settings, **opts)
    assert (strat.fast, strat.slow, strat.atr_stop) == (8, 50, 2.5)


def _cli(out: Path, space: Path, env: dict, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bot", "--env-file", str(out.parent / "none.env"), "optimize", "--space", str(space),
           "--method", "ga", "--population", "12", "--generations", "40", "--jobs", "2", "--seed", "4",
           "--out", str(out), "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_killed_cli_run_resumes_with_the_same_result(tmp_path):
    space = write_space(tmp_path / "space.yaml")
    env = {**os.environ, "HISTORICAL_DATA_PATH": str(tmp_path / "data"), "LOG_FILE": str(tmp_path / "bot.log")}
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    ckpt = killed_dir / "checkpoint.pkl"
    proc = _cli(killed_dir, space, env)

    def reached_gen2() -> bool:
        try:
            return pickle.loads(ckpt.read_bytes())["gen"] >= 2
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return False

    wait_for(reached_gen2, timeout=60, interval=0.005, message="generation 2 checkpoint")
    os.killpg(proc.pid, signal.SIGKILL)          # the CLI and its pool workers, mid-search
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    gen_at_kill = pickle.loads(ckpt.read_bytes())["gen"]
    assert 2 <= gen_at_kill < 40 and not (killed_dir / "best_params.json").exists()

    resumed = _cli(killed_dir, space, env)
    clean = _cli(clean_dir, space, env)
    out_resumed = resumed.communicate(timeout=120)[0].decode()
    out_clean = clean.communicate(timeout=120)[0].decode()
    assert resumed.returncode == 0, out_resumed
    assert clean.returncode == 0, out_clean
    assert "(resuming)" in out_resumed and "(resuming)" not in out_clean
    a = pd.read_csv(killed_dir / "results.csv")
    b = pd.read_csv(clean_dir / "results.csv")
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((killed_dir / "best_params.json").read_text()) == json.loads(
        (clean_dir / "best_params.json").read_text())
    assert "deflated Sharpe ratio" in out_clean and "holdout" in out_clean


def test_walk_forward_trades_each_winner_only_on_unseen_candles(settings, btc_hourly):
    from bot.research.objective import out_of_sample, walk_forward_search

    i = int(np.searchsorted(btc_hourly.index, 1546300800000))
    frame = btc_hourly.iloc[i:i + 3000]
    space = SPACE[:3]
    made = []

    def make(objective, k):
        made.append(objective)
        return ParameterOptimizer(space, objective, method="random", samples=6, seed=20 + k, progress=False)

    wf = walk_forward_search(settings, "sma", frame, make, splits=2, folds=2)
    assert [len(o.frame) for o in made] == [1000, 2000]          # anchored, growing search windows
    for r, obj in zip(wf["splits"], made, strict=True):
        assert r["test_start_ms"] == int(frame.index[r["train_candles"]])   # trades start after the search ends
        assert r["test_candles"] == 1000
        again = ParameterOptimizer(space, obj, method="random", samples=6, seed=19 + r["split"],
                                   progress=False).run()
        assert r["params"] == again.best.params                   # the split's winner, nothing else
        res, _ = out_of_sample(settings, "sma", r["params"], frame.iloc[:r["train_candles"]],
                               frame.iloc[r["train_candles"]:r["train_candles"] + 1000])
        assert r["test_trades"] == len(res.trades)
        assert r["test_return_pct"] == pytest.approx((res.equity[-1] / res.equity[0] - 1) * 100)
    assert wf["oos"]["trades"] == sum(r["test_trades"] for r in wf["splits"])
