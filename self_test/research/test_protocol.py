"""The research protocol on the real seed candles: validation spans before test spans, a fold that
never sees its own candles in training or validation (checked by changing them and finding the
fold's network and validation result unchanged), runs that repeat exactly, and the ensembles."""

from __future__ import annotations

import numpy as np
import pytest

from bot.market.seed import load_seed
from bot.research.protocol import DataSet, Job, plan_splits, run_job, training_frames
from self_test.conftest import make_settings

TINY = {"learning_starts": 300, "buffer_size": 6_000, "batch_size": 32}


def daily_set(frame=None) -> DataSet:
    """BTC daily with the ETH and LTC daily candles pooled into training, as the command builds it."""
    return DataSet("BTCUSDT daily", "BTCUSDT", "D", load_seed("BTCUSDT", "D") if frame is None else frame,
                   "2018-12-31", (load_seed("ETHUSDT", "D"), load_seed("LTCUSDT", "D")))


def job_for(ds: DataSet, settings, variant: str = "baseline", seed: int = 3) -> Job:
    splits = plan_splits(ds.frame.index.to_numpy(np.int64), ds.train_until, 3, min_train=210)
    return Job(ds, variant, seed, settings, tuple(splits), 1_200, 400, n_envs=8, evals_per_fold=2,
               config={"learner": "numpy", **TINY})


def test_each_validation_span_lies_between_training_and_its_test_span(btc_hourly):
    t = btc_hourly.index.to_numpy(np.int64)
    splits = plan_splits(t, "2018-12-31", 3, min_train=300)
    first_test = int(np.searchsorted(t, t[t <= 1546300799999][-1], side="right"))
    assert splits[0].test_start == first_test and splits[-1].test_end == len(t) - 1
    for a, b in zip(splits[:-1], splits[1:], strict=True):
        assert b.test_start == a.test_end + 1          # test windows are consecutive
    for sp in splits:
        n_test = sp.test_end - sp.test_start + 1
        assert sp.val_start < sp.test_start <= sp.test_end
        assert sp.test_start - sp.val_start == n_test   # a validation span as long as its fold
        assert sp.val_start_ms == t[sp.val_start] < sp.test_start_ms == t[sp.test_start]
    with pytest.raises(ValueError, match="training needs"):
        plan_splits(t, "2017-08-01", 3, min_train=300)


def test_training_frames_end_before_the_validation_span_in_every_pooled_set(tmp_path):
    ds = daily_set()
    job = job_for(ds, make_settings(tmp_path))
    for sp in job.splits:
        frames = training_frames(ds, sp)
        assert len(frames) == 3
        assert len(frames[0]) == sp.val_start
        for f in frames:
            assert f.index.max() < sp.val_start_ms


def test_a_fold_never_sees_its_own_candles_in_training_or_validation(tmp_path):
    """Change every candle from fold 2's test window on (in the set and in the pooled sets): the
    networks of folds 1 and 2 and fold 2's validation result stay exactly the same, while fold 2's
    test result changes (so the comparison can fail). Two clean runs agree exactly."""
    settings = make_settings(tmp_path)
    clean = run_job(job_for(daily_set(), settings))
    again = run_job(job_for(daily_set(), settings))
    sp2 = job_for(daily_set(), settings).splits[1]

    def scramble(f):
        f = f.copy()
        late = f.index >= sp2.test_start_ms
        rng = np.random.default_rng(0)
        k = np.exp(rng.normal(0, 0.2, late.sum()))
        for col in ("open", "high", "low", "close"):
            f.loc[late, col] = f.loc[late, col] * k
        f.loc[late, "high"] = f.loc[late, ["open", "high", "low", "close"]].max(axis=1)
        f.loc[late, "low"] = f.loc[late, ["open", "high", "low", "close"]].min(axis=1)
        return f

    ds = daily_set(scramble(load_seed("BTCUSDT", "D")))
    ds = DataSet(ds.name, ds.symbol, ds.interval, ds.frame, ds.train_until, tuple(scramble(p) for p in ds.pool))
    changed = run_job(job_for(ds, settings))
    for run in (again, changed):
        for f in (0, 1):
            for k, w in clean["folds"][f]["network"].items():
                assert np.array_equal(w, run["folds"][f]["network"][k]), (f, k)
        assert np.array_equal(clean["folds"][1]["val"].equity, run["folds"][1]["val"].equity)
    assert np.array_equal(clean["folds"][1]["test"].equity, again["folds"][1]["test"].equity)
    assert not np.array_equal(clean["folds"][1]["test"].equity, changed["folds"][1]["test"].equity)


def test_ensembles_are_built_from_the_trained_members_and_judged_like_seeds(tmp_path):
    from bot.research.study import run_research

    settings = make_settings(tmp_path)
    ds = DataSet("BTCUSDT daily", "BTCUSDT", "D", load_seed("BTCUSDT", "D"), "2018-12-31")
    rep = run_research([ds], settings=settings, variants=["baseline"], seeds=[1, 2, 3], folds=2,
                       steps=lambda d: (1_200, 400), ensembles=["baseline"], n_envs=8, evals_per_fold=2,
                       workers=1, progress=False, config={"learner": "numpy", **TINY})
    res = rep.datasets["BTCUSDT daily"]["results"]
    assert set(res) == {"baseline", "baseline+ens", "buy_and_hold", "sma_cross"}
    assert res["baseline"]["test"]["seeds"] == 3 and res["baseline+ens"]["test"]["seeds"] == 3
    assert res["buy_and_hold"]["test"]["seeds"] == 1
    # buy-and-hold over the glued test folds is the market's move less two fees per fold
    f = ds.frame
    sp = rep.datasets["BTCUSDT daily"]["splits"]
    move = f["close"].iloc[sp[-1]["test_end"]] / f["close"].iloc[sp[0]["test_start"] - 1]
    assert res["buy_and_hold"]["test"]["return_pct"]["mean"] == pytest.approx((move - 1) * 100, abs=3.0)
    assert rep.default == "baseline"
    assert "| baseline+ens |" in rep.tables() and "n/a: the analyst refuses daily candles" in rep.tables()


def test_replayed_positions_trade_like_the_baselines_and_the_analyst_sits_out_daily_candles(tmp_path, btc_hourly):
    """The analyst's positions are replayed by `replay_actions`: fed the SMA cross's signals it
    must give exactly the SMA curve of `evaluate_window` (same fills, fees, trades)."""
    from bot.agent.environment import MarketData
    from bot.research.protocol import analyst_curves, replay_actions
    from bot.research.walk_forward import evaluate_window, sma_actions

    settings = make_settings(tmp_path)
    frame = btc_hourly.iloc[-4000:]
    data = MarketData.from_frames(frame, settings=settings)
    sp = plan_splits(frame.index.to_numpy(np.int64), "2019-09-01", 1, min_train=250)[0]
    want = evaluate_window(data, sp.test_fold(), settings=settings, agent=None)["sma_cross"]
    got = replay_actions(data, sp.test_fold(), settings, sma_actions(data.close, 20, 100), "sma")
    np.testing.assert_allclose(got.equity, want.equity, rtol=1e-12)
    assert got.trade_pnls == pytest.approx(want.trade_pnls) and len(got.trade_pnls) > 3
    assert got.fees == pytest.approx(want.fees)
    assert analyst_curves(daily_set(), list(job_for(daily_set(), settings).splits), settings) is None
