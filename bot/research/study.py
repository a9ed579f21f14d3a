"""One research run: the protocol's jobs over a process pool, the baselines and ensembles, the
default chosen on validation spans, the report (bot/research/protocol_report.py).

Seeds run in parallel processes (a local `ProcessPoolExecutor`, started with "spawn" so every
worker imports numpy and torch with the thread counts pinned to 1); `map_jobs` accepts any
`map(fn, jobs)` instead, e.g. a Ray backend's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from bot.research.protocol import (
    THREAD_VARIABLES,
    DataSet,
    Job,
    analyst_curves,
    analyst_positions,
    baseline_curves,
    job_list,
    make_agent,
    market_data,
    plan_splits,
    proposal_curves,
    run_job,
)
from bot.research.protocol_report import (
    ResearchReport,
    aggregate,
    choose_default,
    record_of,
    servable_candidates,
)
from bot.research.walk_forward import Curve, _chain, _iso, evaluate_window

__all__ = ["run_research", "local_map", "ENSEMBLE_SIZE"]

ENSEMBLE_SIZE = 5


def local_map(workers: int) -> Callable[[Callable[[Job], Any], list[Job]], Iterator[Any]]:
    """A `map` over a local process pool of `workers` (1: in this process), results in job order."""
    def mapper(fn: Callable[[Job], Any], jobs: list[Job]) -> Iterator[Any]:
        if workers <= 1:
            yield from (fn(j) for j in jobs)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
        os.environ.update(THREAD_VARIABLES)   # inherited by the spawned workers before they import numpy
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
                yield from pool.map(fn, jobs)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return mapper


def _ensembles(results: list[dict[str, Any]], ds: DataSet, variant: str, jobs: dict[tuple[str, str, int], Job],
               seeds: list[int], size: int) -> dict[int, dict[str, list[Curve]]]:
    """Rotating ensembles of `size` seeds' networks (seeds i .. i+size-1, wrapping): one per seed,
    so the spread over ensembles can be read like the spread over seeds (they share members)."""
    from bot.agent.variants import VARIANTS, EnsembleAgent

    by_seed = {r["seed"]: r for r in results if r["dataset"] == ds.name and r["variant"] == variant}
    if len(by_seed) < 2:
        return {}
    size = min(size, len(seeds))
    v = VARIANTS[variant]
    job = jobs[(ds.name, variant, seeds[0])]
    agent0, settings = make_agent(job)
    full = market_data(ds.frame, settings, v.timeframes, job.proposals)
    times = ds.frame.index.to_numpy(np.int64)
    out: dict[int, dict[str, list[Curve]]] = {}
    for i, seed in enumerate(seeds):
        members_seeds = [seeds[(i + k) % len(seeds)] for k in range(size)]
        spans: dict[str, list[Curve]] = {"val": [], "test": []}
        for f, sp in enumerate(job.splits):
            members = []
            for s in members_seeds:
                m, _ = make_agent(jobs[(ds.name, variant, s)])
                m.q.load_state_dict({k: _tensor(x) for k, x in by_seed[s]["folds"][f]["network"].items()})
                members.append(m)
            ens = EnsembleAgent(members)
            for span, fold in (("val", sp.val_fold(times)), ("test", sp.test_fold())):
                spans[span].append(evaluate_window(full, fold, settings=settings, agent=ens, sma=job.sma,
                                                   min_hold=agent0.config.min_hold)["agent"])
        out[seed] = spans
    return out


def _tensor(x: np.ndarray) -> Any:
    import torch
    return torch.from_numpy(np.asarray(x))


def run_research(datasets: list[DataSet], *, settings: Any, variants: list[str], seeds: list[int], folds: int,
                 steps: Callable[[DataSet], tuple[int, int]], ensembles: Iterable[str] = (), n_envs: int = 64,
                 evals_per_fold: int = 10, sma: tuple[int, int] = (20, 100), workers: int = 2,
                 map_jobs: Callable[[Callable[[Job], Any], list[Job]], Iterable[Any]] | None = None,
                 progress: bool = True, with_analyst: bool = True, config: dict[str, Any] | None = None
                 ) -> ResearchReport:
    """Run the protocol over `datasets` and return its report."""
    from tqdm import tqdm

    from bot.agent.variants import ENSEMBLE_SUFFIX, VARIANTS
    from bot.analysis import features as Fe

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    if len(seeds) < 1:
        raise ValueError("at least one seed is needed")
    min_train = Fe.warmup_length(settings.STATE_WINDOW, settings) + 10
    splits = {ds.name: plan_splits(ds.frame.index.to_numpy(np.int64), ds.train_until, folds, min_train=min_train)
              for ds in datasets}
    step_of = {ds.name: steps(ds) for ds in datasets}
    analyst: dict[str, Any] = {}
    if any(VARIANTS[v].proposals == "analyst" for v in variants):
        for ds in datasets:
            if ds.hourly:
                if progress:
                    print(f"{ds.name}: the analyst's proposals (one engine run over all its candles)", flush=True)
                analyst[ds.name] = analyst_positions(ds, settings)
    jobs = job_list(datasets, variants, seeds, settings=settings, splits=splits, steps=step_of, n_envs=n_envs,
                    evals_per_fold=evals_per_fold, sma=sma, config=dict(config or {}), analyst=analyst)
    by_key = {(j.dataset.name, j.variant, j.seed): j for j in jobs}
    mapper = map_jobs or local_map(workers)
    results: list[dict[str, Any]] = []
    with tqdm(total=len(jobs), desc="research jobs", unit="job", disable=not progress) as bar:
        for r in mapper(run_job, jobs):
            results.append(r)
            bar.update(1)
    ens_names = [v for v in ensembles if v in variants]
    n_trials = len(variants) + len(ens_names)
    balance = float(settings.PAPER_START_BALANCE)
    per_set: dict[str, dict[str, Any]] = {}
    all_curves: dict[str, dict[str, dict[int, Curve]]] = {}
    training = []
    for ds in datasets:
        curves: dict[str, dict[int, dict[str, list[Curve]]]] = {}
        for r in results:
            if r["dataset"] == ds.name:
                curves.setdefault(r["variant"], {})[r["seed"]] = {
                    span: [f[span] for f in r["folds"]] for span in ("val", "test")}
                training += [{"dataset": ds.name, "variant": r["variant"], "seed": r["seed"], "fold": f["fold"],
                              **f["training"]} for f in r["folds"]]
        if progress:
            print(f"{ds.name}: ensembles of {', '.join(ens_names) or 'none'}, then the baselines"
                  + (" and the analyst (one engine run)" if with_analyst and ds.hourly else ""), flush=True)
        for v in ens_names:
            ens = _ensembles(results, ds, v, by_key, seeds, ENSEMBLE_SIZE)
            if ens:
                curves[v + ENSEMBLE_SUFFIX] = ens
        base = baseline_curves(ds, splits[ds.name], settings, sma)
        for name, spans in base.items():
            curves[name] = {0: spans}
        if with_analyst:
            an = analyst_curves(ds, splits[ds.name], settings)
            if an is not None:
                curves["analyst"] = {0: an}
        if ds.name in analyst:   # what the analyst's trade filter is offered, all taken: its unfiltered twin
            curves["analyst_proposals"] = {0: proposal_curves(ds, splits[ds.name], settings, analyst[ds.name])}
        agg = aggregate(curves, interval=ds.interval, balance=balance, n_trials=n_trials)
        test_span = (f"{_iso(splits[ds.name][0].test_start_ms)[:10]} .. {_iso(splits[ds.name][-1].test_end_ms)[:10]}")
        per_set[ds.name] = {"symbol": ds.symbol, "interval": ds.interval, "train_until": ds.train_until,
                            "candles": len(ds.frame), "pooled_sets": len(ds.pool), "test_span": test_span,
                            "steps": list(step_of[ds.name]),
                            "splits": [{**s.__dict__, "val_start_iso": _iso(s.val_start_ms),
                                        "test_start_iso": _iso(s.test_start_ms), "test_end_iso": _iso(s.test_end_ms)}
                                       for s in splits[ds.name]],
                            "results": agg, "curves": curves}
        all_curves[ds.name] = {name: {seed: _chain(c["test"]) for seed, c in by_seed.items()}
                               for name, by_seed in curves.items()}
    # an ensemble ships as one checkpoint (EnsembleQ), so a servable design's ensemble can be chosen too
    candidates = servable_candidates(list(variants) + [v + ENSEMBLE_SUFFIX for v in ens_names])
    scored = {name: {k: v for k, v in d["results"].items()} for name, d in per_set.items()}
    hourly = [ds.name for ds in datasets if ds.hourly]
    default, _ = choose_default(scored, candidates or list(variants), hourly)
    _, selection = choose_default(scored, list(variants) + [v + ENSEMBLE_SUFFIX for v in ens_names], hourly)
    for d in per_set.values():
        curves = d.pop("curves")
        if default in curves:
            d["default_records"] = {str(seed): record_of(_chain(c["test"])) for seed, c in curves[default].items()}
        if d["interval"] == "60":   # the other candidates' curves too: a later run may choose one (merge_records)
            d["candidate_records"] = {name: {str(seed): record_of(_chain(c["test"])) for seed, c in curves[name].items()}
                                      for name in candidates if name in curves and name != default}
        for strat in ("buy_and_hold", "sma_cross", "analyst"):
            if strat in curves:
                d.setdefault("baseline_records", {})[strat] = record_of(_chain(curves[strat][0]["test"]))
    report_settings = {"variants": variants, "ensembles": [v + ENSEMBLE_SUFFIX for v in ens_names],
                       "ensemble_size": min(ENSEMBLE_SIZE, len(seeds)), "seeds": len(seeds), "seed_list": seeds, "folds": folds,
                       "n_envs": n_envs, "evals_per_fold": evals_per_fold, "sma": list(sma),
                       "fee_rate": settings.FEE_RATE, "slippage_bps": settings.SLIPPAGE_BPS, "n_trials": n_trials,
                       "servable_default_candidates": candidates, "learner": (config or {}).get("learner", "autograd"),
                       "judged_on": ", ".join(hourly) if hourly else "all sets",
                       "variant_descriptions": {v: VARIANTS[v].description for v in variants}}
    return ResearchReport(per_set, report_settings, default, selection, all_curves, training)
