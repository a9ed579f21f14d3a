"""The research protocol: learning designs x seeds x walk-forward folds, judged out of sample.

For every data set the span after `train_until` is cut into equal test windows (folds). Before
each test window lies a validation span of the same length; the agent of fold k trains only on
candles before that validation span (other symbols' candles too, for a pooled data set, cut at
the same time), keeps the network that trades the validation span best (early stopping), and
then trades the test window greedily. Everything that is chosen (the early-stopping network,
which variant becomes the default) is chosen on validation spans; test spans are only reported.

    |------------- train -------------|--- validation ---|----- test (fold k) -----|
                                      ^ val_start        ^ test_start

One job = one (data set, variant, seed), all folds in order (an expanding window: the agent of
fold k+1 is the agent of fold k trained further). `run_job` is a top-level function of one
picklable argument, so any process pool (or a Ray map) can run the jobs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bot.research.walk_forward import Curve, Fold, evaluate_window

__all__ = ["DataSet", "Split", "Job", "plan_splits", "training_frames", "run_job", "until_ms", "job_list",
           "analyst_curves", "baseline_curves", "market_data", "THREAD_VARIABLES", "Proposals", "analyst_positions", "proposal_curves"]

# thread counts fixed in every worker (set before the worker imports numpy / torch): the same
# arithmetic in the same order on any machine of the same kind
THREAD_VARIABLES = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class DataSet:
    """Candles of one symbol and interval, and where its out-of-sample span starts.
    `pool`: other symbols' candles of the same interval an agent may also train on."""

    name: str
    symbol: str
    interval: str
    frame: pd.DataFrame
    train_until: str
    pool: tuple[pd.DataFrame, ...] = ()

    @property
    def hourly(self) -> bool:
        return self.interval == "60"


@dataclass(frozen=True)
class Split:
    """Rows of one fold: training uses rows < val_start (and pooled candles opened before
    `val_start_ms`), validation rows [val_start, test_start), test rows [test_start, test_end]."""

    fold: int
    val_start: int
    test_start: int
    test_end: int
    val_start_ms: int
    test_start_ms: int
    test_end_ms: int

    def test_fold(self) -> Fold:
        return Fold(self.fold, self.test_start, self.test_end, self.test_start_ms, self.test_end_ms)

    def val_fold(self, times: np.ndarray) -> Fold:
        return Fold(self.fold, self.val_start, self.test_start - 1, self.val_start_ms, int(times[self.test_start - 1]))


def until_ms(day: str) -> int:
    """The last millisecond of a YYYY-MM-DD day (UTC)."""
    return int(pd.Timestamp(day, tz="UTC").value // 1_000_000) + 86_400_000 - 1


def plan_splits(times: np.ndarray, train_until: str, n_folds: int, *, min_train: int) -> list[Split]:
    """Equal test windows after `train_until`; a validation span as long as the fold before each.
    `min_train`: rows the first training span needs at least (the feature warm-up and some)."""
    times = np.asarray(times, np.int64)
    first = int(np.searchsorted(times, until_ms(train_until), side="right"))
    n_test = len(times) - first
    if n_test < 4 * n_folds:
        raise ValueError(f"only {n_test} candles after {train_until}; too few for {n_folds} folds")
    edges = np.linspace(first, len(times), n_folds + 1).astype(int)
    splits = []
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        val_start = int(a - (b - a))
        if val_start < min_train:
            raise ValueError(f"fold {k + 1}: {val_start} candles before its validation span, fewer than the "
                             f"{min_train} training needs; choose a later --train-until or fewer folds")
        splits.append(Split(k + 1, val_start, int(a), int(b) - 1, int(times[val_start]), int(times[a]),
                            int(times[b - 1])))
    return splits


def training_frames(ds: DataSet, split: Split) -> list[pd.DataFrame]:
    """The candles fold `split` may train on: the set's rows before its validation span and the
    pooled sets' candles opened before the same moment."""
    own = ds.frame.iloc[: split.val_start]
    pooled = [f[f.index < split.val_start_ms] for f in ds.pool]
    return [own] + [f for f in pooled if len(f) > 0]


def market_data(frames: Any, settings: Any, timeframes: bool, proposals: Any = None) -> Any:
    """The environment's data over `frames`; `proposals(frame) -> sides` adds a rule strategy's
    proposals for the trade filter (bot/agent/variants.py's `with_proposals`)."""
    from bot.agent.environment import MarketData
    if timeframes:
        from bot.agent.timeframes import with_timeframes
        return with_timeframes(frames, settings=settings)
    data = MarketData.from_frames(frames, settings=settings)
    if proposals is not None:
        from bot.agent.variants import with_proposals
        parts = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
        data = with_proposals(data, np.concatenate([proposals(f) for f in parts]))
    return data


@dataclass(frozen=True)
class Proposals:
    """What a trade filter is offered, candle by candle: the SMA fast/slow cross's long/flat wish
    (bot/strategies/sma.py's `sma`, computed on each frame: closes up to the candle only), or the
    analyst's positions from one engine run over the data set (`analyst`: side by open time; an
    engine run decides each candle from the candles before it)."""

    source: str
    sma: tuple[int, int] = (20, 100)
    analyst: pd.Series | None = None

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        if self.source == "sma":
            from bot.strategies.sma import sma
            close = frame["close"].to_numpy(np.float64)
            fast, slow = sma(close, self.sma[0]), sma(close, self.sma[1])
            with np.errstate(invalid="ignore"):
                return np.where(np.isfinite(slow) & (fast > slow), 1.0, 0.0)
        if self.source == "analyst" and self.analyst is not None:
            return self.analyst.reindex(frame.index).fillna(0.0).to_numpy(np.float64)
        raise ValueError(f"no proposals from {self.source!r}")


def analyst_positions(ds: DataSet, settings: Any) -> pd.Series:
    """The analyst's position (-1, 0, +1) at each candle's close, from one engine run over the
    whole set (its own rules, stops and reviews; the engine decides on closed candles only)."""
    from bot.research.backtest import engine_backtest
    from bot.strategies.analyst import AnalystStrategy

    s = settings.replace(EXCHANGE_CATEGORY="linear")
    res = engine_backtest(s, AnalystStrategy(s), ds.frame, symbol=ds.symbol, interval=ds.interval, start=0)
    return pd.Series(np.sign(np.asarray(res.position, np.float64)), index=ds.frame.index)


@dataclass(frozen=True)
class Job:
    """One (data set, variant, seed): everything a worker process needs, picklable."""

    dataset: DataSet
    variant: str
    seed: int
    settings: Any
    splits: tuple[Split, ...]
    steps_first: int
    steps_per_fold: int
    n_envs: int = 64
    evals_per_fold: int = 10
    sma: tuple[int, int] = (20, 100)
    config: dict[str, Any] = field(default_factory=dict)
    proposals: Proposals | None = None      # the trade filter's proposer (filter variants)


def job_list(datasets: list[DataSet], variants: list[str], seeds: list[int], *, settings: Any,
             splits: dict[str, list[Split]], steps: dict[str, tuple[int, int]],
             analyst: dict[str, pd.Series] | None = None, **options: Any) -> list[Job]:
    """Every (data set, variant, seed) job; variants that cannot run on a set (multi-timeframe
    or the analyst's filter on daily candles) are left out. `analyst`: per set, the analyst's
    positions (`analyst_positions`) the analyst's trade filter needs."""
    from bot.agent.variants import VARIANTS
    jobs = []
    for ds in datasets:
        for v in variants:
            var = VARIANTS[v]
            if var.hourly_only and not ds.hourly:
                continue
            prop = None
            if var.proposals == "analyst":
                prop = Proposals("analyst", analyst=(analyst or {})[ds.name])
            elif var.proposals:
                prop = Proposals(var.proposals, sma=options.get("sma", (20, 100)))
            for s in seeds:
                jobs.append(Job(ds, v, s, settings, tuple(splits[ds.name]), *steps[ds.name], proposals=prop, **options))
    return jobs


def _pin_threads() -> None:
    for k, v in THREAD_VARIABLES.items():
        os.environ.setdefault(k, v)


def make_agent(job: Job, train_frames: list[pd.DataFrame] | None = None) -> tuple[Any, Any]:
    """The variant's agent (untrained) and the settings it runs under."""
    from bot.agent.self_learning import DQNConfig, SelfLearningBot
    from bot.agent.variants import VARIANTS
    from bot.analysis import features as Fe

    v = VARIANTS[job.variant]
    settings = job.settings.replace(SEED=job.seed, **v.settings) if v.settings else job.settings.replace(SEED=job.seed)
    cfg = DQNConfig().replace(seed=job.seed, n_envs=job.n_envs, **{"learner": "autograd", **v.config, **job.config})
    names = None
    if v.timeframes:
        from bot.agent.timeframes import timeframe_feature_names
        names = (list(Fe.market_feature_names(settings.STATE_WINDOW)) + timeframe_feature_names()
                 + list(Fe.position_feature_names()))
    n_actions = None
    if v.proposals:
        from bot.agent.variants import PROPOSAL_FEATURES, FilterEnv
        names = (list(Fe.market_feature_names(settings.STATE_WINDOW)) + list(PROPOSAL_FEATURES)
                 + list(Fe.position_feature_names()))
        n_actions = len(FilterEnv.FRACTIONS)
    elif v.levels:
        n_actions = len(v.levels)
    agent = SelfLearningBot(settings, config=cfg, feature_names=names, n_actions=n_actions)
    agent.trade_env = v.trade_env()
    agent.levels = v.levels if v.levels and not v.proposals else None
    return agent, settings


def run_job(job: Job) -> dict[str, Any]:
    """Train one variant with one seed fold after fold; per fold its validation and test curves
    (the baselines' too), the network (for ensembles) and what training did."""
    _pin_threads()
    import torch

    from bot.agent.variants import VARIANTS
    from bot.research.walk_forward import greedy_return

    torch.use_deterministic_algorithms(True)
    v = VARIANTS[job.variant]
    agent, settings = make_agent(job)
    ds = job.dataset
    times = ds.frame.index.to_numpy(np.int64)
    full = market_data(ds.frame, settings, v.timeframes, job.proposals)
    folds = []
    for sp in job.splits:
        steps = job.steps_first if sp.fold == 1 else job.steps_per_fold
        train = market_data(training_frames(ds, sp), settings, v.timeframes, job.proposals)
        seen = market_data(ds.frame.iloc[: sp.test_start], settings, v.timeframes, job.proposals)   # ends with the validation span
        n_val = sp.test_start - sp.val_start
        evaluate = lambda a, d=seen, n=n_val: greedy_return(a, d, candles=n)  # noqa: E731
        env = agent.make_env(train, env_class=v.env_class())
        t0 = time.perf_counter()
        res = agent.train(env, steps, progress=False, evaluate=evaluate,
                          eval_every=max(steps // job.evals_per_fold, 1), keep_best=True)
        val = evaluate_window(full, sp.val_fold(times), settings=settings, agent=agent, sma=job.sma,
                              min_hold=agent.config.min_hold)["agent"]
        test = evaluate_window(full, sp.test_fold(), settings=settings, agent=agent, sma=job.sma,
                               min_hold=agent.config.min_hold)["agent"]
        folds.append({"fold": sp.fold, "val": val, "test": test,
                      "network": {k: t.detach().numpy().copy() for k, t in agent.q.state_dict().items()},
                      "training": {"env_steps": res.env_steps, "seconds": round(time.perf_counter() - t0, 1),
                                   "episode_return": res.mean_episode_return, "loss": res.last_loss,
                                   "val_greedy_return": evaluate(agent)}})
    return {"dataset": ds.name, "variant": job.variant, "seed": job.seed, "folds": folds,
            "config": dict(agent.config.__dict__), "n_actions": agent.n_actions, "state_dim": agent.state_dim}


def baseline_curves(ds: DataSet, splits: list[Split], settings: Any, sma: tuple[int, int]
                    ) -> dict[str, dict[str, list[Curve]]]:
    """Buy-and-hold and the SMA cross on every fold's validation and test span."""
    from bot.agent.environment import MarketData
    full = MarketData.from_frames(ds.frame, settings=settings)
    times = ds.frame.index.to_numpy(np.int64)
    out: dict[str, dict[str, list[Curve]]] = {"buy_and_hold": {"val": [], "test": []},
                                              "sma_cross": {"val": [], "test": []}}
    for sp in splits:
        for span, fold in (("val", sp.val_fold(times)), ("test", sp.test_fold())):
            curves = evaluate_window(full, fold, settings=settings, agent=None, sma=sma)
            for name in out:
                out[name][span].append(curves[name])
    return out


def analyst_curves(ds: DataSet, splits: list[Split], settings: Any) -> dict[str, list[Curve]] | None:
    """The analyst's positions (from one engine run over the spans) replayed at full size through the
    same simulator as the agent, on every validation and test span; None on daily candles
    (the analyst refuses them: it needs 4 h setups under a daily trend)."""
    from bot.agent.environment import target_to_action
    from bot.research.backtest import engine_backtest
    from bot.strategies.analyst import AnalystStrategy

    if not ds.hourly:
        return None
    s = settings.replace(EXCHANGE_CATEGORY="linear")
    start = splits[0].val_start
    res = engine_backtest(s, AnalystStrategy(s), ds.frame, symbol=ds.symbol, interval=ds.interval, start=start)
    actions = np.zeros(len(ds.frame), np.int64)
    actions[start:] = target_to_action(np.asarray(res.position, np.int64))
    return _replay_spans(ds, splits, s, actions, "analyst")


def proposal_curves(ds: DataSet, splits: list[Split], settings: Any, sides: pd.Series) -> dict[str, list[Curve]]:
    """The proposals a trade filter sees (`analyst_positions`), every one taken at full size."""
    from bot.agent.environment import target_to_action
    s = settings.replace(EXCHANGE_CATEGORY="linear")
    actions = target_to_action(sides.to_numpy(np.int64))
    return _replay_spans(ds, splits, s, np.asarray(actions, np.int64), "analyst_proposals")


def _replay_spans(ds: DataSet, splits: list[Split], s: Any, actions: np.ndarray, name: str) -> dict[str, list[Curve]]:
    from bot.agent.environment import MarketData
    full = MarketData.from_frames(ds.frame, settings=s)
    times = ds.frame.index.to_numpy(np.int64)
    out: dict[str, list[Curve]] = {"val": [], "test": []}
    for sp in splits:
        for span, fold in (("val", sp.val_fold(times)), ("test", sp.test_fold())):
            out[span].append(replay_actions(full, fold, s, actions, name))
    return out


def replay_actions(data: Any, fold: Fold, settings: Any, actions: np.ndarray, name: str) -> Curve:
    """Trade a fold by a precomputed action per candle (decided at its close, filled at the next open)."""
    from bot.agent.environment import TradingEnv
    from bot.research.walk_forward import play_curve
    env = TradingEnv(data, settings=settings, n_envs=1, allow_short=True)
    return play_curve(env, fold, lambda state, t: actions[t: t + 1], name)
